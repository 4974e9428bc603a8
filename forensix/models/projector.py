"""Projector: pooled fused patch tokens -> image tokens in the language model's width.

The fused (semantic + trace) patch grid is average-pooled to ``grid x grid`` tokens, then a two-layer
MLP (LLaVA-1.5 style) maps them to the language model's embedding width.

Hook point: ``projector.out`` ``[B, grid^2, d_lm]``.

Example:
    >>> import torch
    >>> proj = Projector(width=32, lm_width=48, grid=2)
    >>> proj(torch.rand(3, 16, 32), source_grid=(4, 4)).shape
    torch.Size([3, 4, 48])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from forensix.hooks import HookPoint


class Projector(nn.Module):
    """Adaptive average pool to ``grid x grid`` then Linear-GELU-Linear."""

    def __init__(self, width: int, lm_width: int, grid: int) -> None:
        super().__init__()
        self.grid = grid
        self.mlp = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, lm_width), nn.GELU(), nn.Linear(lm_width, lm_width))
        self.hook_out = HookPoint("projector.out")

    def forward(self, patches: torch.Tensor, source_grid: tuple[int, int]) -> torch.Tensor:
        b, _, d = patches.shape
        maps = patches.transpose(1, 2).reshape(b, d, *source_grid)
        pooled = F.adaptive_avg_pool2d(maps, self.grid).flatten(2).transpose(1, 2)
        return self.hook_out(self.mlp(pooled))
