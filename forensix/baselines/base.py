"""The localizer protocol shared by classical baselines and the learned model.

A localizer has a ``name`` and ``localize(image) -> Localization``. :func:`to_localization` turns
a raw anomaly map (any scale, larger = more suspicious) into a :class:`Localization` with one
documented rule, so that every baseline is normalised, thresholded and scored the same way.

Example:
    >>> import numpy as np
    >>> raw = np.zeros((32, 32)); raw[8:16, 8:16] = 5.0
    >>> loc = to_localization(raw + np.random.default_rng(0).normal(0, 0.1, raw.shape))
    >>> int(loc.mask[8:16, 8:16].mean() > 0.9), loc.heatmap.dtype.name
    (1, 'float32')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from skimage.filters import threshold_otsu

from forensix.errors import BadImageError

__all__ = ["Localization", "Detector", "check_image", "to_localization", "resize_map"]


@dataclass
class Localization:
    """What a localizer returns for one image.

    Attributes:
        heatmap: float32 ``H x W`` in ``[0, 1]``; larger = more likely manipulated.
        mask: uint8 ``H x W`` in ``{0, 1}``; the localizer's binary decision.
        score: image-level manipulation score in ``[0, 1]``.

    Example:
        >>> import numpy as np
        >>> Localization(np.zeros((2, 2), np.float32), np.zeros((2, 2), np.uint8), 0.0).score
        0.0
    """

    heatmap: np.ndarray
    mask: np.ndarray
    score: float


@runtime_checkable
class Detector(Protocol):
    """Anything with a ``name`` and ``localize(image_uint8_rgb) -> Localization``.

    Example:
        >>> from forensix.baselines import get_detector
        >>> isinstance(get_detector("ela"), Detector)
        True
    """

    name: str

    def localize(self, image: np.ndarray) -> Localization:
        """Localize manipulations in a uint8 ``H x W x 3`` RGB image."""
        ...


def check_image(image: np.ndarray, arg: str = "image", min_size: int = 8) -> np.ndarray:
    """Validate a uint8 RGB image and return it as ``H x W x 3``; a 2-D gray image is stacked.

    Example:
        >>> check_image(np.zeros((9, 9), np.uint8)).shape
        (9, 9, 3)
    """
    if not isinstance(image, np.ndarray):
        raise BadImageError(f"{arg}: expected a numpy uint8 array H x W x 3, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise BadImageError(
            f"{arg}: expected dtype uint8, got {image.dtype}; convert with (img * 255).round().astype(np.uint8)"
        )
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise BadImageError(f"{arg}: expected shape H x W x 3 (RGB), got {image.shape}; drop alpha or stack gray")
    if min(image.shape[:2]) < min_size:
        raise BadImageError(f"{arg}: image {image.shape[:2]} is smaller than {min_size} px on a side")
    return image


def resize_map(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinearly resize a 2-D float map to ``shape`` (H, W).

    Example:
        >>> resize_map(np.ones((4, 4)), (7, 9)).shape
        (7, 9)
    """
    from skimage.transform import resize

    return resize(values.astype(np.float64), shape, order=1, mode="edge", anti_aliasing=False)


def to_localization(
    raw: np.ndarray,
    *,
    low_pct: float = 1.0,
    high_pct: float = 99.5,
    threshold: float | str = "otsu",
    top_frac: float = 0.02,
    z_scale: float = 6.0,
) -> Localization:
    """Turn a raw anomaly map (larger = more suspicious) into a :class:`Localization`.

    Rule (shared by every baseline):

    * **Threshold** ``t`` on the raw map: Otsu's threshold of the map clipped to its
      ``[low_pct, high_pct]`` percentiles, or a float ``q`` in ``[0, 1]`` meaning the
      ``q``-quantile of the map.
    * **Heatmap**: piecewise-linear percentile scaling with ``p_low -> 0``, ``t -> 0.5``,
      ``p_high -> 1`` (clipped), so ``heatmap >= 0.5`` is exactly the mask.
    * **Score**: robust z of the top-``top_frac`` mean, ``z = (mean(top) - median) / (1.4826 MAD)``,
      mapped to ``[0, 1)`` by ``z / (z + z_scale)`` (0 for a flat map). It ranks images by how far
      their most suspicious pixels stand out; it is not a calibrated probability.

    Example:
        >>> loc = to_localization(np.zeros((8, 8)))
        >>> float(loc.heatmap.max()), int(loc.mask.sum()), loc.score
        (0.0, 0, 0.0)
    """
    raw = np.nan_to_num(np.asarray(raw, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    p_low, p_high = np.percentile(raw, [low_pct, high_pct])
    med = float(np.median(raw))
    mad = float(np.median(np.abs(raw - med))) * 1.4826
    spread = max(p_high - p_low, 1e-12)
    if p_high - p_low <= 1e-9 * max(1.0, abs(p_high)):
        zeros = np.zeros(raw.shape, np.float32)
        return Localization(zeros, zeros.astype(np.uint8), 0.0)
    clipped = np.clip(raw, p_low, p_high)
    if threshold == "otsu":
        t = float(threshold_otsu(clipped))
    elif isinstance(threshold, (int, float)) and 0.0 <= float(threshold) <= 1.0:
        t = float(np.quantile(raw, float(threshold)))
    else:
        raise ValueError(f"threshold: expected 'otsu' or a quantile in [0, 1], got {threshold!r}")
    t = min(max(t, p_low + 1e-6 * spread), p_high - 1e-6 * spread)
    heat = np.where(
        clipped < t,
        0.5 * (clipped - p_low) / (t - p_low),
        0.5 + 0.5 * (clipped - t) / (p_high - t),
    )
    heat = np.clip(heat, 0.0, 1.0).astype(np.float32)
    mask = (heat >= 0.5).astype(np.uint8)
    k = max(1, int(round(top_frac * raw.size)))
    top = float(np.mean(np.partition(raw.ravel(), raw.size - k)[raw.size - k :]))
    z = max(0.0, (top - med) / max(mad, 1e-12 * max(1.0, abs(med)), spread * 1e-3))
    return Localization(heat, mask, float(z / (z + z_scale)))
