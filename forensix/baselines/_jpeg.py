"""JPEG round trips and luminance helpers shared by the baselines.

Example:
    >>> import numpy as np
    >>> jpeg_roundtrip(np.zeros((16, 16, 3), np.uint8), 90).shape
    (16, 16, 3)
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

__all__ = ["jpeg_roundtrip", "luminance"]


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode a uint8 RGB image as JPEG at ``quality`` (4:4:4) and decode it again.

    Example:
        >>> jpeg_roundtrip(np.full((8, 8, 3), 128, np.uint8), 75)[0, 0].tolist()
        [128, 128, 128]
    """
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=int(quality), subsampling=0)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def luminance(image: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma (the JPEG Y channel) as float64 in ``[0, 255]``.

    Example:
        >>> float(luminance(np.full((2, 2, 3), 255, np.uint8))[0, 0])
        255.0
    """
    rgb = image.astype(np.float64)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
