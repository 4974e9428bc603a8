"""The localizer at the photo's own pixels: the whole image at once, or overlapping native tiles stitched.

Forensic traces (noise residuals, the JPEG grid, resampling) live in the photo's own pixels, and a
shrunk photo loses them. In ``resolution="native"`` mode the FL-Expert and the trace branch read the
photo itself (the semantic ViT reads a resized copy, as it was trained), and the mask comes back at the
photo's size. A photo of at most ``tile x tile`` pixels runs whole; a larger one is cut into the fewest
windows of at most ``tile`` pixels a side that overlap by at least ``overlap`` pixels, spread evenly and
started on the 8-pixel JPEG grid (a 12-megapixel photo is read 1.3 times, not 1.75 times as by
fixed-size tiles), each run as an image of its own, and their
logits are blended with a window that falls to zero at tile edges that lie inside the photo, so seams
do not show. Memory is bounded by one tile plus two float32 accumulators of the photo's size, so a
24-megapixel photo runs in well under 4 GB.

``resolution="multiscale"`` reads the photo at both scales: the native map and the map of the
model-size copy (upsampled back) are averaged (:func:`multiscale`). The localizer was trained on
crops at the model's size, so each scale sees what the other misses: the native pixels keep the
traces, the copy keeps the forged region's extent at the scale of training (``benchmarks/native.py``
measures all three).

Example:
    >>> import torch
    >>> windows = tile_windows(300, 500, tile=256, overlap=64)
    >>> len(windows), windows[0], windows[-1]
    (6, (0, 0, 192, 216), (104, 280, 300, 500))
    >>> logits = stitched(lambda x: x[:, :1] * 0 + 1.0, torch.rand(1, 3, 300, 500), tile=256, overlap=64)
    >>> logits.shape, float(logits.min()), float(logits.max())
    (torch.Size([1, 1, 300, 500]), 1.0, 1.0)
    >>> multiscale(torch.zeros(1, 1, 300, 500), torch.full((1, 1, 64, 64), 0.5)).unique().tolist()
    [0.25]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from forensix.errors import BadConfigError
from forensix.models.modes import channels_last

if TYPE_CHECKING:
    from forensix.models.forensix_model import ForensixModel

RESOLUTIONS = ("native", "resize", "multiscale")


#: Tiles start on the JPEG grid, so that the DCT stream reads each tile's 8 x 8 blocks as the file stored them.
GRID = 8


def _ceil_grid(n: float) -> int:
    return int(-(-n // GRID) * GRID)


def _starts(length: int, tile: int, overlap: int) -> tuple[list[int], int]:
    """Starts (on the grid) and the tile length along one side: the fewest tiles of at most ``tile`` pixels,
    each as short as an even spread allows, so the photo is read about once plus its overlaps."""
    if length <= tile:
        return [0], length
    n = 2
    while (size := _ceil_grid((length + (n - 1) * (overlap + GRID)) / n)) + GRID - 1 > tile:
        n += 1
    span = (length - size) / (n - 1)
    return [int(i * span) // GRID * GRID for i in range(n)], size


def tile_windows(height: int, width: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """``(y0, x0, y1, x1)`` windows of at most ``tile`` pixels a side covering the image, neighbours overlapping
    by at least ``overlap``, every start a multiple of :data:`GRID`; the last window of a row or column ends
    at the image's edge."""
    if tile < 32 or not 0 <= overlap < tile // 2:
        raise BadConfigError(f"native_tile={tile}, native_overlap={overlap}: use a tile of at least 32 pixels "
                             "and an overlap below half of it")
    (ys, h), (xs, w) = _starts(height, tile, overlap), _starts(width, tile, overlap)
    return [(y, x, height if y == ys[-1] else y + h, width if x == xs[-1] else x + w) for y in ys for x in xs]


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


def native_logits(model: ForensixModel, photo: torch.Tensor, vis: Any = None, index: int = 0) -> torch.Tensor:
    """``model``'s localizer logits (CPU) on a photo's own pixels ``[1, 3, H, W]``: whole, or, when a side exceeds
    ``config.native_tile``, tiles stitched (their convolutions in channels-last layout, which is faster at that size).

    A photo that runs whole may share the ViT output ``vis`` of a batched pass (``index``: its row there);
    tiles run as images of their own.
    """
    tile, overlap = model.config.native_tile, model.config.native_overlap
    if len(tile_windows(*photo.shape[-2:], tile, overlap)) > 1:
        with channels_last(model.trace, model.fl_expert):
            return stitched(lambda t: model.localizer_logits(t.to(model.device)), photo, tile, overlap)
    if vis is None:
        return model.localizer_logits(photo.to(model.device)).float().cpu()
    trace = model.trace(photo.to(model.device), vis.grid)
    return model.fl_expert([p[index : index + 1] + trace.tokens for p in vis.layer_patches], model.prompts(),
                           trace.features, vis.grid).logits.float().cpu()


def native_probabilities(model: ForensixModel, vis: Any, photos: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """``model``'s localizer probabilities (CPU) on each photo's own pixels ``[1, 3, H, W]``, sharing the ViT
    output ``vis`` of this pass when the photo runs whole."""
    return [native_logits(model, x, vis, i).sigmoid() for i, x in enumerate(photos)]


def multiscale(native: torch.Tensor, copy: torch.Tensor) -> torch.Tensor:
    """The mean of a native probability map ``[1, 1, H, W]`` and the model-size copy's map ``[1, 1, s, s]``
    upsampled (bilinear) to ``H x W``: what ``resolution="multiscale"`` reports."""
    up = F.interpolate(copy.float().cpu(), size=native.shape[-2:], mode="bilinear", align_corners=False)
    return (native + up) / 2


def pooled(masks: Sequence[torch.Tensor], size: int) -> torch.Tensor:
    """Native probability maps pooled (area) to ``[B, 1, size, size]``: what the mask encoder and the region words read.

    Example:
        >>> pooled([torch.ones(1, 1, 30, 50)], 8).shape
        torch.Size([1, 1, 8, 8])
    """
    return torch.cat([F.adaptive_avg_pool2d(m, (size, size)) for m in masks])


__all__ = ["GRID", "RESOLUTIONS", "multiscale", "native_logits", "native_probabilities", "pooled", "stitched", "tile_windows"]
