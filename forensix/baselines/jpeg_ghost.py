"""JPEG ghosts (Farid 2009): a region once saved at quality q0 changes least when resaved at q0.

The image is resaved at a range of qualities; for each quality the squared difference is averaged
over a local window. Each pixel's curve over qualities is divided by its own mean (cancelling image
content), and compared with the image's median curve. A ghost is a dip below the median curve:
the map is the largest such dip over qualities, so a region whose difference minimum sits at a
different quality than the rest of the image stands out.

Example:
    >>> import numpy as np
    >>> img = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    >>> JPEGGhost(qualities=(60, 80, 95)).localize(img).heatmap.shape
    (32, 32)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter

from forensix.baselines._jpeg import jpeg_roundtrip
from forensix.baselines.base import Localization, check_image, to_localization

__all__ = ["JPEGGhost"]


@dataclass
class JPEGGhost:
    """JPEG ghost detector.

    Args:
        qualities: resave qualities to scan.
        window: side (pixels) of the local averaging window.

    Example:
        >>> JPEGGhost().name
        'jpeg-ghost'
    """

    qualities: tuple[int, ...] = (50, 55, 60, 65, 70, 75, 80, 85, 90, 95)
    window: int = 16
    name: str = "jpeg-ghost"

    def difference_curves(self, image: np.ndarray) -> np.ndarray:
        """Content-normalised local difference, shape ``[len(qualities), H, W]``."""
        image = check_image(image)
        src = image.astype(np.float64)
        win = max(3, min(self.window, *image.shape[:2]))
        curves = np.stack(
            [
                uniform_filter(((src - jpeg_roundtrip(image, q)) ** 2).mean(axis=2), win, mode="reflect")
                for q in self.qualities
            ]
        )
        return curves / (curves.mean(axis=0, keepdims=True) + 1e-3)

    def raw_map(self, image: np.ndarray) -> np.ndarray:
        """Largest dip of each pixel's curve below the image's median curve."""
        curves = self.difference_curves(image)
        median_curve = np.median(curves.reshape(len(self.qualities), -1), axis=1)
        return np.maximum(median_curve[:, None, None] - curves, 0.0).max(axis=0)

    def localize(self, image: np.ndarray) -> Localization:
        """Localize JPEG ghosts."""
        return to_localization(self.raw_map(image))
