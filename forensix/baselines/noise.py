"""Noise-residual inconsistency: local statistics of high-pass residuals that deviate from the image.

The image is high-pass filtered with SRM-style residual kernels (first-order, second-order and the
5x5 "KV" kernel); in windows (stride half a window) the log noise level (MAD / 0.6745, robust to
edges) and the log kurtosis of each residual are measured; each feature is turned into a robust z-score against its image-wide median/MAD and
the map is the root mean square of those z-scores. Spliced regions usually carry a different
camera/processing noise level than their host.

Example:
    >>> import numpy as np
    >>> img = np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    >>> NoiseResidual(window=8, use_kurtosis=True).localize(img).mask.shape
    (40, 40)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import convolve

from forensix.baselines._jpeg import luminance
from forensix.baselines.base import Localization, check_image, resize_map, to_localization

__all__ = ["NoiseResidual", "SRM_KERNELS"]

SRM_KERNELS: dict[str, np.ndarray] = {
    "first_h": np.array([[0, 0, 0], [0, -1, 1], [0, 0, 0]], np.float64),
    "second_v": np.array([[0, 1, 0], [0, -2, 0], [0, 1, 0]], np.float64) / 2.0,
    "kv": np.array(
        [[-1, 2, -2, 2, -1], [2, -6, 8, -6, 2], [-2, 8, -12, 8, -2], [2, -6, 8, -6, 2], [-1, 2, -2, 2, -1]],
        np.float64,
    )
    / 12.0,
}


def _robust_z(values: np.ndarray) -> np.ndarray:
    med = np.median(values)
    mad = np.median(np.abs(values - med)) * 1.4826
    return (values - med) / max(mad, 1e-6)


@dataclass
class NoiseResidual:
    """Noise-residual inconsistency detector.

    Args:
        window: side (pixels) of the sliding window for local statistics.
        clip: residuals are clipped to ``[-clip, clip]`` (as in SRM features) before statistics.
        use_kurtosis: also use the local kurtosis of each residual, not only its spread.
        min_sigma: floor of the noise level (flat or clipped areas would dominate otherwise).

    Example:
        >>> NoiseResidual().name
        'noise'
    """

    window: int = 32
    clip: float = 32.0
    use_kurtosis: bool = False
    min_sigma: float = 0.5
    name: str = "noise"

    def block_features(self, image: np.ndarray) -> np.ndarray:
        """Per-window features ``[gy, gx, n_features]``: log MAD noise level (and log kurtosis) per kernel."""
        gray = luminance(check_image(image))
        win = max(4, min(self.window, *gray.shape))
        step = max(1, win // 2)
        feats = []
        for kernel in SRM_KERNELS.values():
            res = np.clip(convolve(gray, kernel, mode="reflect"), -self.clip, self.clip)
            blocks = sliding_window_view(res, (win, win))[::step, ::step]
            sigma = np.median(np.abs(blocks), axis=(2, 3)) / 0.6745
            feats.append(np.log(np.maximum(sigma, self.min_sigma)))
            if self.use_kurtosis:
                c = blocks - blocks.mean(axis=(2, 3), keepdims=True)
                var = np.maximum((c * c).mean(axis=(2, 3)), self.min_sigma**2)
                feats.append(np.log((c**4).mean(axis=(2, 3)) / (var * var) + 1e-2))
        return np.stack(feats, axis=-1)

    def raw_map(self, image: np.ndarray) -> np.ndarray:
        """RMS robust z-score of the window features, resized to the image."""
        image = check_image(image)
        feats = self.block_features(image)
        z_sq = sum(_robust_z(feats[..., k]) ** 2 for k in range(feats.shape[-1]))
        return resize_map(np.sqrt(z_sq / feats.shape[-1]), image.shape[:2])

    def localize(self, image: np.ndarray) -> Localization:
        """Localize regions whose residual noise statistics deviate from the rest of the image."""
        return to_localization(self.raw_map(image))
