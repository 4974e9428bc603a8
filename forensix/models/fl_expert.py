"""FL-Expert, the forgery localization expert: patch/prompt similarity across layers -> mask logits.

For each chosen vision layer, patch tokens fused with the forgery-trace tokens are projected into
the prompt space and compared (cosine / temperature, softmax over the two states) with the
object-agnostic prompts, giving an authentic/forged similarity map per layer. A light U-Net style
decoder fuses those maps with the trace branch's deepest features and climbs back through the trace
branch's skip features, one level per entry of ``decoder_channels`` after the first (five entries
reach full resolution; the small preset stops at 1/4, where the blob-like forged regions are
already resolved, and saves most of the decoder's cost). The logits are bilinearly upsampled to
the input resolution.

Hook points: ``fl_expert.similarity.{i}`` ``[B, 2, gh, gw]`` (one per feature layer, in order),
``fl_expert.mask_logits`` ``[B, 1, H, W]``.

Example:
    >>> import torch
    >>> from forensix.config import get_config
    >>> cfg = get_config("tiny")
    >>> expert = FLExpert(cfg.localizer, width=32, n_layers=2, trace_channels=cfg.trace.channels)
    >>> feats = [torch.rand(1, c, 64 // 2**i, 64 // 2**i) for i, c in enumerate(cfg.trace.channels)]
    >>> expert([torch.rand(1, 16, 32)] * 2, torch.rand(2, 16), feats, grid=(4, 4)).shape
    torch.Size([1, 1, 64, 64])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from forensix.config import LocalizerConfig
from forensix.errors import BadConfigError
from forensix.hooks import HookPoint
from forensix.models.trace import conv_block


class FLExpert(nn.Module):
    """Multi-layer prompt similarity maps + decoder with skip connections -> mask logits."""

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
        self.bottleneck = conv_block(2 * n_layers + skips[0], dec[0])
        self.up = nn.ModuleList(conv_block(dec[i] + skips[i + 1], dec[i + 1]) for i in range(len(dec) - 1))
        self.head = nn.Conv2d(dec[-1], 1, 1)
        self.hook_mask_logits = HookPoint("fl_expert.mask_logits")

    def similarity(self, patches: torch.Tensor, prompts: torch.Tensor, index: int, grid: tuple[int, int]) -> torch.Tensor:
        """Softmax over (authentic, forged) of cosine similarity / temperature, as ``[B, 2, gh, gw]``."""
        feats = F.normalize(self.project[index](patches), dim=-1)
        probs = (feats @ prompts.T / self.cfg.temperature).softmax(dim=-1)
        maps = probs.transpose(1, 2).reshape(probs.shape[0], 2, *grid)
        return self.hook_similarity[index](maps)

    def forward(
        self, layer_patches: list[torch.Tensor], prompts: torch.Tensor, trace_features: list[torch.Tensor],
        grid: tuple[int, int],
    ) -> torch.Tensor:
        maps = [self.similarity(p, prompts, i, grid) for i, p in enumerate(layer_patches)]
        skips = list(reversed(trace_features))
        sims = F.interpolate(torch.cat(maps, dim=1), size=skips[0].shape[-2:], mode="bilinear", align_corners=False)
        x = self.bottleneck(torch.cat([sims, skips[0]], dim=1))
        for block, skip in zip(self.up, skips[1:]):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        logits = self.head(x)
        if logits.shape[-2:] != trace_features[0].shape[-2:]:
            logits = F.interpolate(logits, size=trace_features[0].shape[-2:], mode="bilinear", align_corners=False)
        return self.hook_mask_logits(logits)


def mask_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 0.0, dice_weight: float = 1.0) -> torch.Tensor:
    """BCE (focal when ``gamma`` > 0) + soft dice on forged images (dice skipped for empty targets).

    Example:
        >>> t = torch.zeros(2, 1, 8, 8); t[:, :, 2:5, 2:5] = 1
        >>> bool(mask_loss(t * 20 - 10, t) < mask_loss(-t * 20 + 10, t))
        True
    """
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_true = torch.exp(-bce)
    pixel = ((1 - p_true) ** gamma * bce).mean()  # plain BCE when gamma == 0
    probs = logits.sigmoid().flatten(1)
    flat = target.flatten(1)
    has_region = flat.sum(1) > 0
    if not has_region.any():
        return pixel
    inter = (probs * flat).sum(1)
    dice = 1 - (2 * inter + 1) / (probs.sum(1) + flat.sum(1) + 1)
    return pixel + dice_weight * dice[has_region].mean()
