"""Semantic vision encoder: a ``transformers`` ViT or CLIP vision model with hook points inside.

Hook points: ``vision.embed`` (patch + position embeddings), ``vision.blocks.{i}.attn.pattern``
``[batch, heads, q, k]`` (fires when the hooked attention backend is on, see
:func:`forensix.hooks.attention_implementation`) and ``vision.blocks.{i}.out`` ``[batch, tokens, d]``.

Example:
    >>> import torch
    >>> from forensix.config import get_config
    >>> enc = VisionEncoder(get_config("tiny").vision)
    >>> out = enc(torch.rand(2, 3, 64, 96))
    >>> out.grid, out.tokens.shape
    ((4, 6), torch.Size([2, 25, 32]))
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, CLIPVisionModel, ViTConfig, ViTModel

from forensix.config import VisionConfig
from forensix.errors import ModelNotAvailableError
from forensix.hooks import add_output_hook_point, find_blocks, install_block_hooks

_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class VisionOutput:
    """Tokens of the last block (``[B, 1 + N, d]``, CLS first), the FL-Expert's layers' patch tokens, and the grid."""

    tokens: torch.Tensor
    layer_patches: list[torch.Tensor]
    grid: tuple[int, int]

    @property
    def patches(self) -> torch.Tensor:
        """Patch tokens of the last block, ``[B, N, d]``."""
        return self.tokens[:, 1:]


def _build_backbone(cfg: VisionConfig) -> nn.Module:
    if cfg.source is None:
        config = ViTConfig(
            image_size=cfg.image_size, patch_size=cfg.patch_size, hidden_size=cfg.hidden_size,
            num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads,
            intermediate_size=cfg.intermediate_size, attn_implementation="sdpa",
        )
        return ViTModel(config, add_pooling_layer=False)
    try:
        config = AutoConfig.from_pretrained(cfg.source)
        if getattr(config, "model_type", "") == "clip":
            return CLIPVisionModel.from_pretrained(cfg.source, attn_implementation="sdpa")
        return AutoModel.from_pretrained(cfg.source, attn_implementation="sdpa")
    except (OSError, ValueError) as err:
        raise ModelNotAvailableError(
            f"vision source {cfg.source!r} could not be loaded ({err}); give a local directory saved with "
            "save_pretrained, or set vision.source=None to train a vision encoder from scratch"
        ) from err


class VisionEncoder(nn.Module):
    """Normalises ``[B, 3, H, W]`` images in ``[0, 1]`` and runs the backbone, any size (positions interpolated)."""

    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.model = _build_backbone(cfg)
        is_clip = getattr(self.model.config, "model_type", "") in {"clip", "clip_vision_model"}
        mean, std = (_CLIP_MEAN, _CLIP_STD) if is_clip else ((0.5,) * 3, (0.5,) * 3)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.patch_size = self.model.config.patch_size
        self.width = self.model.config.hidden_size
        add_output_hook_point(self.model.embeddings, "vision.embed")
        install_block_hooks(self.model, "vision.blocks")

    @property
    def num_layers(self) -> int:
        return len(find_blocks(self.model))

    def forward(self, images: torch.Tensor) -> VisionOutput:
        height, width = images.shape[-2:]
        grid = (height // self.patch_size, width // self.patch_size)
        pixel_values = (images - self.mean) / self.std
        out = self.model(pixel_values=pixel_values, output_hidden_states=True, interpolate_pos_encoding=True)
        hidden = out.hidden_states  # embeddings, then one per block
        layer_patches = [hidden[i + 1][:, 1:] for i in self.cfg.feature_layers]
        return VisionOutput(tokens=hidden[-1], layer_patches=layer_patches, grid=grid)
