"""Mask encoder (ForgeryTalker's region prompter): a mask and its region's features -> K language tokens.

:func:`region_features` summarises a mask over the patch tokens: the mean feature inside the region,
the mean outside it, mask statistics (area, peak, confidence) and the mask pooled to a coarse
``layout x layout`` grid, which carries *where* the region is. :class:`MaskEncoder` maps that summary
to ``num_tokens`` embeddings in the language model's width.

Hook points: ``mask_encoder.region`` ``[B, F]``, ``mask_encoder.tokens`` ``[B, K, d_lm]``.

Example:
    >>> import torch
    >>> enc = MaskEncoder(width=32, lm_width=48, num_tokens=2, layout=2, hidden=32)
    >>> feats = region_features(torch.rand(3, 1, 64, 64), torch.rand(3, 16, 32), grid=(4, 4), layout=2)
    >>> enc(feats).shape
    torch.Size([3, 2, 48])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from forensix.hooks import HookPoint

N_STATS = 4


def top_mean(values: torch.Tensor, fraction: float = 0.01) -> torch.Tensor:
    """Mean of the highest ``fraction`` (at least one) of each image's values, ``[B, ...] -> [B]``.

    On mask probabilities it is the localizer's own detection score, one of the mask statistics.

    Example:
        >>> top_mean(torch.tensor([[[0.25, 0.75], [0.5, 0.0]]]), fraction=0.5).tolist()
        [0.625]
    """
    flat = values.flatten(1)
    k = max(1, int(flat.shape[1] * fraction + 1e-9))  # the epsilon keeps 1100 * 0.01 at 11
    return flat.topk(k, dim=1).values.mean(1)


def region_features(mask: torch.Tensor, patches: torch.Tensor, grid: tuple[int, int], layout: int) -> torch.Tensor:
    """``[inside mean (d), outside mean (d), stats (4), layout grid (layout^2)]`` per image."""
    weights = F.adaptive_avg_pool2d(mask, grid).flatten(1)  # [B, N]
    inside = (weights.unsqueeze(-1) * patches).sum(1) / (weights.sum(1, keepdim=True) + 1e-4)
    outside = ((1 - weights).unsqueeze(-1) * patches).sum(1) / ((1 - weights).sum(1, keepdim=True) + 1e-4)
    flat = mask.flatten(1)
    stats = torch.stack([flat.mean(1), flat.amax(1), top_mean(flat), (flat > 0.5).float().mean(1)], dim=1)
    grid_layout = F.adaptive_avg_pool2d(mask, (layout, layout)).flatten(1)
    return torch.cat([inside, outside, stats, grid_layout], dim=1)


class MaskEncoder(nn.Module):
    """MLP from :func:`region_features` to ``num_tokens`` tokens of the language model's width."""

    def __init__(self, width: int, lm_width: int, num_tokens: int, layout: int, hidden: int) -> None:
        super().__init__()
        self.num_tokens = num_tokens
        self.lm_width = lm_width
        in_dim = 2 * width + N_STATS + layout * layout
        self.mlp = nn.Sequential(
            nn.LayerNorm(in_dim), nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, num_tokens * lm_width)
        )
        self.position = nn.Parameter(torch.zeros(num_tokens, lm_width))
        self.hook_region = HookPoint("mask_encoder.region")
        self.hook_tokens = HookPoint("mask_encoder.tokens")

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        tokens = self.mlp(self.hook_region(features)).view(-1, self.num_tokens, self.lm_width)
        return self.hook_tokens(tokens + self.position)
