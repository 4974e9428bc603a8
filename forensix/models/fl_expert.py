"""FL-Expert, the forgery localization expert: patch/prompt similarity across layers -> mask logits.

For each chosen vision layer, patch tokens fused with the forgery-trace tokens are projected into
the prompt space and compared (cosine / temperature, softmax over the two states) with the
object-agnostic prompts, giving an authentic/forged similarity map per layer. A light U-Net style
decoder fuses those maps with the trace branch's deepest features and climbs back through the trace
branch's skip features, one level per entry of ``decoder_channels`` after the first (five entries
reach full resolution; the small preset stops at 1/4, where the blob-like forged regions are
already resolved, and saves most of the decoder's cost). The logits are bilinearly upsampled to
the input resolution. With ``correlation_topk`` a :class:`~forensix.models.correlation.SelfCorrelation`
layer adds copy-move evidence at the finest decoder level; with ``deep_supervision`` every coarser
level gets a 1x1 head of its own (its logits are in :attr:`LocalizerOutput.levels`). With
``semantic_maps`` off the maps are still computed (their hook points fire, the prompts keep their
meaning for the mask-text stages) but the decoder reads the trace evidence only. The training
objective is in :mod:`forensix.models.objectives`.

Hook points: ``fl_expert.similarity.{i}`` ``[B, 2, gh, gw]`` (one per feature layer, in order),
``fl_expert.mask_logits`` ``[B, 1, H, W]``.

Example:
    >>> import torch
    >>> from forensix.config import get_config
    >>> cfg = get_config("tiny")
    >>> expert = FLExpert(cfg.localizer, width=32, n_layers=2, trace_channels=cfg.trace.channels)
    >>> feats = [torch.rand(1, c, 64 // 2**i, 64 // 2**i) for i, c in enumerate(cfg.trace.channels)]
    >>> expert([torch.rand(1, 16, 32)] * 2, torch.rand(2, 16), feats, grid=(4, 4)).logits.shape
    torch.Size([1, 1, 64, 64])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from forensix.config import LocalizerConfig
from forensix.errors import BadConfigError
from forensix.hooks import HookPoint
from forensix.models.correlation import SelfCorrelation
from forensix.models.objectives import LocalizerOutput
from forensix.models.trace import conv_block


class FLExpert(nn.Module):
    """Multi-layer prompt similarity maps + decoder with skip connections -> :class:`LocalizerOutput`."""

    def __init__(self, cfg: LocalizerConfig, width: int, n_layers: int, trace_channels: tuple[int, ...]) -> None:
        super().__init__()
        self.cfg = cfg
        self.project = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(width), nn.Linear(width, cfg.prompt_dim)) for _ in range(n_layers)
        )
        self.hook_similarity = nn.ModuleList(HookPoint(f"fl_expert.similarity.{i}") for i in range(n_layers))
        skips = list(reversed(trace_channels))  # deepest first
        dec = list(cfg.decoder_channels)
        if not 1 <= len(dec) <= len(skips):
            raise BadConfigError(
                f"localizer.decoder_channels: {len(dec)} entries for {len(skips)} trace levels; give 1 to {len(skips)}"
            )
        if cfg.correlation_topk < 0:
            raise BadConfigError(f"localizer.correlation_topk={cfg.correlation_topk}: give 0 (off) or a positive count")
        k = cfg.correlation_topk
        # self-correlation reads the skip features of the finest level the decoder reaches
        self.correlation = SelfCorrelation(skips[len(dec) - 1], k) if k else None
        extra = [0] * (len(dec) - 1) + [k]  # correlation maps join the last decoder level's input
        n_maps = 2 * n_layers if cfg.semantic_maps else 0
        self.bottleneck = conv_block(n_maps + skips[0] + (k if len(dec) == 1 else 0), dec[0])
        self.up = nn.ModuleList(
            conv_block(dec[i] + skips[i + 1] + extra[i + 1], dec[i + 1]) for i in range(len(dec) - 1)
        )
        self.head = nn.Conv2d(dec[-1], 1, 1)
        self.level_heads = (nn.ModuleList(nn.Conv2d(c, 1, 1) for c in dec[:-1])
                            if cfg.deep_supervision > 0 else None)
        self.hook_mask_logits = HookPoint("fl_expert.mask_logits")

    def similarity(self, patches: torch.Tensor, prompts: torch.Tensor, index: int, grid: tuple[int, int],
                   record: bool = True) -> torch.Tensor:
        """Softmax over (authentic, forged) of cosine similarity / temperature, as ``[B, 2, gh, gw]``."""
        feats = F.normalize(self.project[index](patches), dim=-1)
        probs = (feats @ prompts.T / self.cfg.temperature).softmax(dim=-1)
        maps = probs.transpose(1, 2).reshape(probs.shape[0], 2, *grid)
        return self.hook_similarity[index](maps) if record else maps

    def forward(
        self, layer_patches: list[torch.Tensor], prompts: torch.Tensor, trace_features: list[torch.Tensor],
        grid: tuple[int, int], record: bool = True,
    ) -> LocalizerOutput:
        """``record=False`` skips the hook points (a second pass, such as the copy's in ``resolution="multiscale"``)."""
        maps = [self.similarity(p, prompts, i, grid, record) for i, p in enumerate(layer_patches)]
        skips = list(reversed(trace_features))[: len(self.up) + 1]
        inputs = [skips[0]] + skips[1:]
        if self.correlation is not None:
            inputs[-1] = torch.cat([inputs[-1], self.correlation(inputs[-1], record)], dim=1)
        if self.cfg.semantic_maps:
            sims = F.interpolate(torch.cat(maps, dim=1), size=skips[0].shape[-2:], mode="bilinear", align_corners=False)
            inputs[0] = torch.cat([sims, inputs[0]], dim=1)
        x = self.bottleneck(inputs[0])
        levels = []
        for i, (block, skip) in enumerate(zip(self.up, inputs[1:])):
            if self.level_heads is not None:
                levels.append(self.level_heads[i](x))
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        logits = self.head(x)
        if logits.shape[-2:] != trace_features[0].shape[-2:]:
            logits = F.interpolate(logits, size=trace_features[0].shape[-2:], mode="bilinear", align_corners=False)
        return LocalizerOutput(logits=self.hook_mask_logits(logits) if record else logits, levels=levels, features=x)
