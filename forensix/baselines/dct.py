"""Block-DCT quantisation consistency (aligned single / double JPEG compression map).

A decoded JPEG's 8x8 block-DCT coefficients sit near multiples of the quantisation step, so their
histogram is periodic; after a second compression the histogram of the quantised indices shows a
second periodic pattern (double-quantisation peaks and gaps). A region pasted from elsewhere
(uncompressed, compressed once less, or off the 8x8 grid) breaks the pattern.

For each of the first ``n_coeffs`` zig-zag AC frequencies, in two stages (raw rounded values, then
the quantised indices ``round(c / Q)`` with ``Q`` the detected lattice step) the histogram's period
``p`` is found by a phase-0 comb test (the zero bin excluded; no period -> no evidence). A value
``v`` then scores ``log((h_p(v) + 1) / (h(v) + 1))`` with ``h_p`` the histogram box-smoothed over one
period: positive where the value falls in a gap of the pattern (evidence of tampering), negative on
a peak. Per-block sums over frequencies and stages are smoothed over 3x3 blocks. The 8x8 grid is
assumed to start at pixel (0, 0), as in an uncropped JPEG.

Example:
    >>> import numpy as np
    >>> img = np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8)
    >>> BlockDCT().localize(img).heatmap.shape
    (40, 48)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.fft import dctn
from scipy.ndimage import uniform_filter

from forensix.baselines._jpeg import luminance
from forensix.baselines.base import Localization, check_image, to_localization

__all__ = ["BlockDCT", "block_dct", "ZIGZAG"]

ZIGZAG: tuple[tuple[int, int], ...] = tuple(
    sorted(((i, j) for i in range(8) for j in range(8)), key=lambda ij: (ij[0] + ij[1], ij[1] if (ij[0] + ij[1]) % 2 else ij[0]))
)


def block_dct(gray: np.ndarray) -> np.ndarray:
    """Orthonormal 8x8 block DCT (JPEG's) of a level-shifted gray image, ``[H//8, W//8, 8, 8]``.

    The image is edge-padded to a multiple of 8.

    Example:
        >>> block_dct(np.full((16, 16), 128.0)).shape
        (2, 2, 8, 8)
    """
    h, w = gray.shape
    ph, pw = (-h) % 8, (-w) % 8
    padded = np.pad(gray, ((0, ph), (0, pw)), mode="edge") - 128.0
    blocks = padded.reshape(padded.shape[0] // 8, 8, padded.shape[1] // 8, 8).transpose(0, 2, 1, 3)
    return dctn(blocks, axes=(2, 3), norm="ortho")


def _period(hist: np.ndarray, center: int, max_period: int, min_ratio: float) -> int:
    """Smallest comb period within 85% of the best phase-0 comb ratio; 1 if none is periodic."""
    counts = hist.astype(np.float64).copy()
    counts[center] = 0.0
    mean = counts.sum() / max(len(counts) - 1, 1)
    if mean <= 0:
        return 1
    offsets = np.arange(len(counts)) - center
    ratios = {}
    for p in range(2, max_period + 1):
        on = (offsets % p == 0) & (offsets != 0)
        ratios[p] = counts[on].mean() / mean if on.any() else 0.0
    best = max(ratios.values(), default=0.0)
    if best < min_ratio:
        return 1
    return min(p for p, r in ratios.items() if r >= 0.85 * best)


def _periodic_llr(values: np.ndarray, radius: int, max_period: int, min_ratio: float) -> tuple[np.ndarray, int]:
    """Per-value tampering log-likelihood ratio against the histogram's periodic pattern."""
    v = np.clip(np.rint(values), -radius, radius).astype(np.int64) + radius
    hist = np.bincount(v.ravel(), minlength=2 * radius + 1).astype(np.float64)
    p = _period(hist, radius, max_period, min_ratio)
    if p == 1:
        return np.zeros(values.shape), 1
    smooth = uniform_filter(hist, p, mode="constant")
    llr = np.log((smooth + 1.0) / (hist + 1.0))
    return np.clip(llr[v], -3.0, 3.0), p


@dataclass
class BlockDCT:
    """Block-DCT double-compression / quantisation-consistency detector.

    Args:
        n_coeffs: number of zig-zag AC frequencies used.
        radius: histogram range ``[-radius, radius]`` of rounded coefficients.
        max_period: largest quantisation period considered.
        min_ratio: comb ratio needed to call a histogram periodic.

    Example:
        >>> BlockDCT().name
        'dct'
    """

    n_coeffs: int = 15
    radius: int = 60
    max_period: int = 24
    min_ratio: float = 1.6
    name: str = "dct"

    def block_map(self, image: np.ndarray) -> np.ndarray:
        """Per-8x8-block tampering evidence (sum of log-likelihood ratios), ``[ceil(H/8), ceil(W/8)]``."""
        coeffs = block_dct(luminance(check_image(image)))
        total = np.zeros(coeffs.shape[:2])
        for i, j in ZIGZAG[1 : 1 + self.n_coeffs]:
            c = coeffs[:, :, i, j]
            llr, step = _periodic_llr(c, self.radius, self.max_period, self.min_ratio)
            total += llr
            if step > 1:
                total += _periodic_llr(c / step, self.radius, self.max_period, self.min_ratio)[0]
        return uniform_filter(total, 3, mode="nearest")

    def raw_map(self, image: np.ndarray) -> np.ndarray:
        """Block evidence expanded to pixels."""
        image = check_image(image)
        blocks = self.block_map(image)
        return np.repeat(np.repeat(blocks, 8, axis=0), 8, axis=1)[: image.shape[0], : image.shape[1]]

    def localize(self, image: np.ndarray) -> Localization:
        """Localize blocks inconsistent with the image's JPEG quantisation pattern."""
        return to_localization(self.raw_map(image))
