"""The localizer at the photo's own pixels: the whole image at once, or overlapping native tiles stitched.

Forensic traces (noise residuals, the JPEG grid, resampling) live in the photo's own pixels, and a
shrunk photo loses them. In ``resolution="native"`` mode the FL-Expert and the trace branch read the
photo itself (the semantic ViT reads a resized copy, as it was trained), and the mask comes back at the
photo's size. A photo of at most ``tile x tile`` pixels runs whole; a larger one is cut into
``tile x tile`` windows overlapping by ``overlap`` pixels, each run as an image of its own, and their
logits are blended with a window that falls to zero at tile edges that lie inside the photo, so seams
do not show. Memory is bounded by one tile plus two float32 accumulators of the photo's size, so a
24-megapixel photo runs in well under 4 GB.

Example:
    >>> import torch
    >>> windows = tile_windows(300, 500, tile=256, overlap=64)
    >>> len(windows), windows[0], windows[-1]
    (6, (0, 0, 256, 256), (44, 244, 300, 500))
    >>> logits = stitched(lambda x: x[:, :1] * 0 + 1.0, torch.rand(1, 3, 300, 500), tile=256, overlap=64)
    >>> logits.shape, float(logits.min()), float(logits.max())
    (torch.Size([1, 1, 300, 500]), 1.0, 1.0)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from forensix.errors import BadConfigError

if TYPE_CHECKING:
    from forensix.models.forensix_model import ForensixModel

RESOLUTIONS = ("native", "resize")


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    return starts + [length - tile]


def tile_windows(height: int, width: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """``(y0, x0, y1, x1)`` windows of at most ``tile`` pixels a side covering the image, neighbours overlapping by at least ``overlap``."""
    if tile < 32 or not 0 <= overlap < tile // 2:
        raise BadConfigError(f"native_tile={tile}, native_overlap={overlap}: use a tile of at least 32 pixels "
                             "and an overlap below half of it")
    return [(y, x, min(y + tile, height), min(x + tile, width))
            for y in _starts(height, tile, overlap) for x in _starts(width, tile, overlap)]


def _ramp(length: int, overlap: int, fade_start: bool, fade_end: bool) -> torch.Tensor:
    weight = torch.ones(length)
    if overlap > 0:
        rise = (torch.arange(overlap, dtype=torch.float32) + 0.5) / overlap
        if fade_start:
            weight[:overlap] = torch.minimum(weight[:overlap], rise)
        if fade_end:
            weight[-overlap:] = torch.minimum(weight[-overlap:], rise.flip(0))
    return weight


def stitched(localize: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, tile: int, overlap: int) -> torch.Tensor:
    """Mask logits ``[1, 1, H, W]`` of ``image`` ``[1, 3, H, W]``: ``localize`` on the whole image, or on tiles blended.

    ``localize`` maps ``[1, 3, h, w]`` pixels to ``[1, 1, h, w]`` logits. The image may live on the CPU
    while ``localize`` runs elsewhere: each tile is moved to ``localize``'s device by the caller's function.
    """
    _, _, height, width = image.shape
    windows = tile_windows(height, width, tile, overlap)
    if len(windows) == 1:
        return localize(image).float().cpu()
    total = torch.zeros(height, width)
    weights = torch.zeros(height, width)
    for y0, x0, y1, x1 in windows:
        logits = localize(image[..., y0:y1, x0:x1]).float().cpu()[0, 0]
        w = (_ramp(y1 - y0, overlap, y0 > 0, y1 < height)[:, None] * _ramp(x1 - x0, overlap, x0 > 0, x1 < width)[None])
        total[y0:y1, x0:x1] += logits * w
        weights[y0:y1, x0:x1] += w
    return (total / weights.clamp_min(1e-6))[None, None]


def native_probabilities(model: ForensixModel, vis: Any, photos: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """``model``'s localizer probabilities (CPU) on each photo's own pixels ``[1, 3, H, W]``, sharing the ViT
    output ``vis`` of this pass when the photo runs whole (tiles run as images of their own)."""
    maps = []
    tile, overlap = model.config.native_tile, model.config.native_overlap
    for i, x in enumerate(photos):
        if len(tile_windows(*x.shape[-2:], tile, overlap)) == 1:
            trace = model.trace(x.to(model.device), vis.grid)
            logits = model.fl_expert([p[i : i + 1] + trace.tokens for p in vis.layer_patches], model.prompts(),
                                     trace.features, vis.grid).logits
        else:
            logits = stitched(lambda t: model.localizer_logits(t.to(model.device)), x, tile, overlap)
        maps.append(logits.float().sigmoid().cpu())
    return maps


def pooled(masks: Sequence[torch.Tensor], size: int) -> torch.Tensor:
    """Native probability maps pooled (area) to ``[B, 1, size, size]``: what the mask encoder and the region words read.

    Example:
        >>> pooled([torch.ones(1, 1, 30, 50)], 8).shape
        torch.Size([1, 1, 8, 8])
    """
    return torch.cat([F.adaptive_avg_pool2d(m, (size, size)) for m in masks])


__all__ = ["RESOLUTIONS", "native_probabilities", "pooled", "stitched", "tile_windows"]
