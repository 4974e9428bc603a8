"""Pixel evidence for the clue head: how the pixels inside a (soft) mask differ from those outside it.

Each clue word names a measurable difference: a *colour shift* moves the mean colour, *lighting* the
mean luma, *noise* and *blur* the high-pass residual and the gradient energy, *sharpening* the
Laplacian, a *JPEG grid misalignment* the share of the gradient on the 8 x 8 grid, an *edge halo* or
an *unnatural boundary* the gradient along the mask's border, and *duplicated texture* how closely the
region's patches match patches elsewhere in the image. :func:`pixel_contrast` measures these
inside-vs-outside contrasts on the model's copy of the image, weighted by the mask the language side
reads, so the clue head (ForgeryTalker's forgery prompter) reads evidence, not only learned tokens.
On an authentic photo the predicted mask is faint and spread out, and every contrast is near 0.

Example:
    >>> import torch
    >>> images = torch.rand(2, 3, 64, 64)
    >>> mask = torch.zeros(2, 1, 64, 64); mask[:, :, 16:40, 16:40] = 1
    >>> pixel_contrast(images, mask).shape == (2, len(CONTRASTS))
    True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

#: The contrasts :func:`pixel_contrast` returns, in order.
CONTRASTS = (
    "red", "green", "blue", "|red|", "|green|", "|blue|", "luma", "|luma|", "saturation",
    "residual", "gradient", "laplacian", "jpeg grid", "border gradient", "self-similarity",
)
_EPS = 1e-4
_LUMA = (0.299, 0.587, 0.114)
_BLOCK = 8
_BORDER_PRIOR = 16.0


def _weighted_means(maps: Tensor, weights: Tensor) -> tuple[Tensor, Tensor]:
    """Means of ``maps`` ``[B, C, H, W]`` inside and outside ``weights`` ``[B, 1, H, W]`` in [0, 1]: two ``[B, C]``."""
    inside = (maps * weights).sum((2, 3)) / (weights.sum((2, 3)) + _EPS)
    outside = (maps * (1 - weights)).sum((2, 3)) / ((1 - weights).sum((2, 3)) + _EPS)
    return inside, outside


def _log_ratio(maps: Tensor, weights: Tensor) -> Tensor:
    inside, outside = _weighted_means(maps, weights)
    return torch.log((inside + _EPS) / (outside + _EPS))


def _texture_maps(luma: Tensor) -> Tensor:
    """``[B, 1, H, W]`` luma -> ``[B, 4, H, W]``: |high-pass residual|, gradient magnitude, |Laplacian|, on-grid gradient."""
    blurred = F.avg_pool2d(F.pad(luma, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    residual = (luma - blurred).abs()
    dx = F.pad((luma[..., :, 1:] - luma[..., :, :-1]).abs(), (0, 1, 0, 0))
    dy = F.pad((luma[..., 1:, :] - luma[..., :-1, :]).abs(), (0, 0, 0, 1))
    kernel = luma.new_tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
    laplacian = F.conv2d(F.pad(luma, (1, 1, 1, 1), mode="replicate"), kernel).abs()
    h, w = luma.shape[-2:]
    on_grid_x = (torch.arange(w, device=luma.device) % _BLOCK == _BLOCK - 1).to(luma.dtype)
    on_grid_y = (torch.arange(h, device=luma.device) % _BLOCK == _BLOCK - 1).to(luma.dtype)
    grid = dx * on_grid_x.view(1, 1, 1, w) + dy * on_grid_y.view(1, 1, h, 1)
    return torch.cat([residual, dx + dy, laplacian, grid], dim=1)


def _self_similarity(luma: Tensor, weights: Tensor) -> Tensor:
    """Per image: how much better the region's 8 x 8 patches match a distant patch than the rest's do ``[B]``."""
    patches = F.unfold(luma, _BLOCK, stride=_BLOCK // 2)  # [B, 64, N]
    patches = patches - patches.mean(1, keepdim=True)
    patches = patches / (patches.norm(dim=1, keepdim=True) + 1e-3)
    similarity = patches.transpose(1, 2) @ patches  # [B, N, N]
    h, w = luma.shape[-2:]
    rows, cols = (h - _BLOCK) // (_BLOCK // 2) + 1, (w - _BLOCK) // (_BLOCK // 2) + 1
    ys, xs = torch.meshgrid(torch.arange(rows, device=luma.device), torch.arange(cols, device=luma.device), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    near = ((ys[:, None] - ys[None, :]).abs() <= 2) & ((xs[:, None] - xs[None, :]).abs() <= 2)
    best = similarity.masked_fill(near, -1.0).amax(2)  # [B, N]
    patch_weights = F.adaptive_avg_pool2d(weights, (rows, cols)).flatten(1)
    inside = (best * patch_weights).sum(1) / (patch_weights.sum(1) + _EPS)
    outside = (best * (1 - patch_weights)).sum(1) / ((1 - patch_weights).sum(1) + _EPS)
    return inside - outside


def pixel_contrast(images: Tensor, mask: Tensor) -> Tensor:
    """The :data:`CONTRASTS` of ``images`` ``[B, 3, H, W]`` in [0, 1] inside vs outside ``mask`` ``[B, 1, h, w]``
    (probabilities, resized to the images): signed colour and luma differences, log ratios of texture energies,
    the border's gradient against the whole image's, and the region's self-similarity margin. ``[B, 15]``.

    Example:
        >>> images = torch.full((1, 3, 32, 32), 0.5); images[:, 0, 8:24, 8:24] = 0.9
        >>> mask = torch.zeros(1, 1, 32, 32); mask[:, :, 8:24, 8:24] = 1
        >>> round(float(pixel_contrast(images, mask)[0, 0]), 2)  # the red channel, inside minus outside
        0.4
    """
    images = images.float()
    weights = F.interpolate(mask.float(), size=images.shape[-2:], mode="bilinear", align_corners=False).clamp(0, 1)
    luma = sum(c * images[:, i : i + 1] for i, c in enumerate(_LUMA))
    colour_in, colour_out = _weighted_means(torch.cat([images, luma], dim=1), weights)
    colour = colour_in - colour_out  # [B, 4]: r, g, b, luma
    saturation = images.amax(1, keepdim=True) - images.amin(1, keepdim=True)
    textures = _texture_maps(luma)
    texture = _log_ratio(torch.cat([saturation, textures], dim=1), weights)  # [B, 5]
    band = (F.max_pool2d(weights, 5, stride=1, padding=2) + F.max_pool2d(-weights, 5, stride=1, padding=2)).clamp(0, 1)
    gradient = textures[:, 1:2]
    overall = gradient.mean((2, 3))
    # the border's mean gradient, drawn towards the whole image's by a prior of _BORDER_PRIOR pixels: a faint or
    # uniform mask has no border to speak of, and then the contrast is 0
    along = ((gradient * band).sum((2, 3)) + _BORDER_PRIOR * overall) / (band.sum((2, 3)) + _BORDER_PRIOR)
    border = torch.log((along + _EPS) / (overall + _EPS))
    return torch.cat([colour[:, :3], colour[:, :3].abs(), colour[:, 3:], colour[:, 3:].abs(), texture, border,
                      _self_similarity(luma, weights)[:, None]], dim=1)


__all__ = ["CONTRASTS", "pixel_contrast"]
