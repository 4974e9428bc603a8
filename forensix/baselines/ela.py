"""Error level analysis (ELA): resave as JPEG and look at where the error is unusual.

Regions whose compression history differs from the rest (e.g. pasted from an uncompressed or
differently compressed source) change by a different amount when the image is saved again.

Example:
    >>> import numpy as np
    >>> loc = ELA(quality=90).localize(np.zeros((32, 32, 3), np.uint8))
    >>> loc.heatmap.shape
    (32, 32)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from forensix.baselines._jpeg import jpeg_roundtrip
from forensix.baselines.base import Localization, check_image, to_localization

__all__ = ["ELA"]


@dataclass
class ELA:
    """Error level analysis.

    Args:
        quality: JPEG quality of the resave.
        sigma: Gaussian smoothing (pixels) of the per-pixel error.

    Example:
        >>> ELA(quality=85).name
        'ela'
    """

    quality: int = 90
    sigma: float = 3.0
    name: str = "ela"

    def raw_map(self, image: np.ndarray) -> np.ndarray:
        """Smoothed mean absolute error over RGB between the image and its resave."""
        image = check_image(image)
        diff = np.abs(image.astype(np.float64) - jpeg_roundtrip(image, self.quality)).mean(axis=2)
        return gaussian_filter(diff, self.sigma, mode="reflect")

    def localize(self, image: np.ndarray) -> Localization:
        """Localize regions with an unusual error level."""
        return to_localization(self.raw_map(image))
