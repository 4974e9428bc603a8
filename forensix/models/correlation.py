"""Self-correlation for copy-move: how strongly each position matches its best partners elsewhere in the image.

A copied region is, by construction, like another part of the *same* photo; no amount of anomaly
evidence shows it (its noise is the photo's own noise). BusterNet's answer is to correlate every
position's features with every other position and keep the sorted top-k scores: a copied region and
its source light up together, flat areas light up weakly everywhere, and the decoder learns which is
which. Features are standardised per image first (so the shared content of the image does not make
every pair similar), positions within ``exclude`` cells of each other are ignored (a neighbour is
always similar), and the grid is pooled to at most ``max_grid`` cells on its longer side so that the
cost stays bounded at any resolution.

Example:
    >>> import torch
    >>> layer = SelfCorrelation(channels=4, topk=3)
    >>> x = torch.randn(1, 4, 16, 16)
    >>> x[..., 2:5, 2:5] = x[..., 10:13, 9:12]  # a copied 3 x 3 patch
    >>> maps = layer(x)
    >>> maps.shape, bool(maps[0, 0, 3, 3] > maps[0, 0, 7, 7])
    (torch.Size([1, 3, 16, 16]), True)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from forensix.hooks import HookPoint


class SelfCorrelation(nn.Module):
    """``[B, C, h, w]`` features -> ``[B, topk, h, w]`` sorted best-match cosine scores (hook ``fl_expert.correlation``)."""

    def __init__(self, channels: int, topk: int, exclude: int = 2, max_grid: int = 32) -> None:
        super().__init__()
        self.topk, self.exclude, self.max_grid = topk, exclude, max_grid
        self.project = nn.Conv2d(channels, channels, 1)
        self.hook_out = HookPoint("fl_expert.correlation")

    def forward(self, features: torch.Tensor, record: bool = True) -> torch.Tensor:
        height, width = features.shape[-2:]
        scale = max(1.0, max(height, width) / self.max_grid)
        grid = (max(1, round(height / scale)), max(1, round(width / scale)))
        x = self.project(F.adaptive_avg_pool2d(features, grid) if grid != (height, width) else features)
        std, mean = torch.std_mean(x, dim=(2, 3), keepdim=True)
        x = F.normalize(((x - mean) / (std + 1e-4)).flatten(2), dim=1)  # [B, C, N]
        scores = x.transpose(1, 2) @ x  # [B, N, N] cosine
        rows = torch.arange(grid[0], device=x.device).repeat_interleave(grid[1])
        cols = torch.arange(grid[1], device=x.device).repeat(grid[0])
        near = ((rows[:, None] - rows[None]).abs() <= self.exclude) & ((cols[:, None] - cols[None]).abs() <= self.exclude)
        scores = scores.masked_fill(near, -1.0)
        k = min(self.topk, scores.shape[-1])
        best = scores.topk(k, dim=-1).values  # [B, N, k], sorted
        if k < self.topk:
            best = F.pad(best, (0, self.topk - k), value=-1.0)
        maps = best.transpose(1, 2).reshape(x.shape[0], self.topk, *grid)
        if grid != (height, width):
            maps = F.interpolate(maps, size=(height, width), mode="bilinear", align_corners=False)
        return self.hook_out(maps) if record else maps


__all__ = ["SelfCorrelation"]
