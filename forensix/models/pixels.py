"""Images and masks in, tensors out (and mask logits back to per-image probability maps).

Example:
    >>> import numpy as np
    >>> x = as_pixels(np.zeros((30, 40, 3), np.uint8))
    >>> tuple(resized(x, 16).shape), [m.shape for m in probability_maps(torch.zeros(1, 1, 16, 16), [(30, 40)])]
    ((1, 3, 16, 16), [(30, 40)])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from forensix.data.io import as_image_array, as_mask_array
from forensix.errors import BadImageError, BadMaskError


def image_arrays(images: Any) -> list[np.ndarray]:
    """Images (arrays, PIL, paths, tensors, or a list of them) -> ``uint8`` arrays, with clear errors."""
    if isinstance(images, torch.Tensor) and images.ndim == 4:
        items = list(images)
    elif isinstance(images, (list, tuple)):
        items = list(images)
    else:
        items = [images]
    if not items:
        raise BadImageError("images: got an empty batch; pass at least one image")
    return [as_image_array(x, name=f"images[{i}]") for i, x in enumerate(items)]


def as_pixels(array: np.ndarray) -> torch.Tensor:
    """``H x W x 3`` uint8 -> ``[1, 3, H, W]`` float in [0, 1] (CPU)."""
    return torch.from_numpy(np.array(array, copy=True)).permute(2, 0, 1)[None].float() / 255.0


def resized(pixels: torch.Tensor, size: int) -> torch.Tensor:
    """``[B, 3, H, W]`` -> ``[B, 3, size, size]`` (antialiased bilinear; unchanged when already that size)."""
    if pixels.shape[-2:] == (size, size):
        return pixels
    return F.interpolate(pixels, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def mask_tensor(masks: Sequence[Any], sizes: Sequence[tuple[int, int]], size: int) -> torch.Tensor:
    """Masks, one per image of the given ``sizes``, -> ``[B, 1, size, size]`` in {0, 1} (nearest; CPU)."""
    listed = isinstance(masks, (Sequence, np.ndarray, torch.Tensor)) and not isinstance(masks, str)
    if not listed or len(masks) != len(sizes):
        got = len(masks) if listed else type(masks).__name__
        raise BadMaskError(f"masks: expected a list of {len(sizes)} masks, one per image, got {got}")
    out = []
    for i, (mask, shape) in enumerate(zip(masks, sizes)):
        x = torch.from_numpy(as_mask_array(mask, tuple(shape), name=f"masks[{i}]")).float()[None, None]
        out.append(x if x.shape[-2:] == (size, size) else F.interpolate(x, size=(size, size), mode="nearest"))
    return torch.cat(out)


def probability_maps(mask_logits: torch.Tensor, sizes: Sequence[tuple[int, int]]) -> list[np.ndarray]:
    """``[B, 1, S, S]`` mask logits -> one float32 probability map per image, bilinearly resized to its own size."""
    probs = mask_logits.float().sigmoid()
    return [F.interpolate(p[None], size=size, mode="bilinear", align_corners=False)[0, 0].cpu().numpy().astype(np.float32)
            for p, size in zip(probs, sizes)]


__all__ = ["as_pixels", "image_arrays", "mask_tensor", "probability_maps", "resized"]
