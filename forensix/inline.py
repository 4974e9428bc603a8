"""Inline pictures for HTML: PNG data URIs, the one heatmap colour ramp, mask overlays and the colour
of a signed score. Every HTML view in forensix (``Analysis``, explanation results, the demo report,
the explorers' snapshots) draws with these, so a heatmap means the same colours everywhere.

Example:
    >>> import numpy as np
    >>> heat_rgb(np.array([[0.0, 1.0]])).shape, heat_png_uri(np.zeros((2, 2))).startswith("data:image/png;base64,")
    ((1, 2, 3), True)
    >>> score_colour(1.0, 2.0), score_colour(-2.0, 2.0)
    ('rgba(220,40,40,0.425)', 'rgba(40,90,220,0.850)')
"""

from __future__ import annotations

import base64
import functools
import io

import numpy as np

__all__ = ["HEAT_COLORSCALE", "png_data_uri", "heat_rgb", "heat_png_uri", "overlay_mask", "score_colour"]

#: The heatmap ramp (matplotlib's and plotly's name for it): dark purple (0) to pale yellow (1).
HEAT_COLORSCALE = "inferno"


def png_data_uri(image: np.ndarray) -> str:
    """An inline ``data:image/png;base64`` URI for an ``H x W x 3`` (or ``H x W``) uint8 image."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@functools.cache
def _heat_table() -> np.ndarray:
    from matplotlib import colormaps

    return (colormaps[HEAT_COLORSCALE](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)


def heat_rgb(heat: np.ndarray) -> np.ndarray:
    """A ``[0, 1]`` heatmap (NaN as 0, clipped) as an ``H x W x 3`` uint8 image in :data:`HEAT_COLORSCALE`."""
    h = np.clip(np.nan_to_num(np.asarray(heat, np.float32)), 0, 1)
    return _heat_table()[(h * 255).round().astype(np.int64)]


def heat_png_uri(heat: np.ndarray, image: np.ndarray | None = None, alpha: float = 0.55) -> str:
    """Inline PNG of a ``[0, 1]`` heatmap, blended over ``image`` (same height and width) when given."""
    rgb = heat_rgb(heat).astype(np.float32)
    if image is not None and image.shape[:2] == rgb.shape[:2]:
        rgb = (1 - alpha) * image.astype(np.float32) + alpha * rgb
    return png_data_uri(rgb.clip(0, 255).astype(np.uint8))


def overlay_mask(image: np.ndarray, mask: np.ndarray, color: tuple[int, int, int] = (255, 40, 40), alpha: float = 0.35) -> np.ndarray:
    """Tint ``mask`` pixels and draw their outline on a copy of ``image``."""
    from scipy.ndimage import binary_erosion

    out = image.astype(np.float32).copy()
    region = mask.astype(bool)
    out[region] = (1 - alpha) * out[region] + alpha * np.array(color, np.float32)
    edge = region & ~binary_erosion(region, iterations=max(1, min(image.shape[:2]) // 128))
    out[edge] = color
    return out.clip(0, 255).astype(np.uint8)


def score_colour(value: float, vmax: float) -> str:
    """CSS colour of a signed score: red for positive, blue for negative, alpha ∝ ``|value| / vmax``."""
    if not np.isfinite(value) or vmax <= 0:
        return "transparent"
    a = min(1.0, abs(float(value)) / vmax) * 0.85
    return f"rgba(220,40,40,{a:.3f})" if value >= 0 else f"rgba(40,90,220,{a:.3f})"
