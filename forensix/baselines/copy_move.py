"""Copy-move detection by block matching with shift-vector voting.

Every ``block x block`` window (stride ``stride``) of the luma is described by its lowest zig-zag
DCT coefficients, quantised by ``q_step`` (robust to JPEG and noise). Windows are sorted
lexicographically by the quantised features and each is compared with its next ``neighbors`` in
that order; pairs closer than ``max_dist`` in feature space and at least ``min_shift`` pixels apart
vote for their shift vector. Shifts whose 3x3 neighbourhood collects ``min_votes`` votes are
accepted, and both the source and the target windows of their pairs are marked. Nearly flat
windows (std below ``min_std``) are skipped: sky and walls match everywhere.

``heatmap`` is 0 off the marked area and ``0.5 + 0.5 * coverage`` on it (coverage = fraction of
the windows covering a pixel that were matched), so ``heatmap >= 0.5`` is the mask.
``score = n / (n + 2 * min_votes)`` with ``n`` the number of accepted pairs.

Example:
    >>> import numpy as np
    >>> img = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    >>> img[40:56, 40:56] = img[4:20, 8:24]
    >>> loc = CopyMove(min_votes=20).localize(img)
    >>> int(loc.mask[44:52, 44:52].min()), int(loc.mask[8:16, 12:20].min())
    (1, 1)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.fft import dct
from scipy.ndimage import uniform_filter

from forensix.baselines._jpeg import luminance
from forensix.baselines.base import Localization, check_image

__all__ = ["CopyMove"]


def _dct_matrix(n: int) -> np.ndarray:
    return dct(np.eye(n), axis=0, norm="ortho")


@dataclass
class CopyMove:
    """Block-matching copy-move detector.

    Args:
        block: window side in pixels.
        stride: step between windows.
        n_features: number of zig-zag DCT coefficients (DC included) per window.
        q_step: quantisation step of the features used for sorting.
        max_dist: largest feature distance (in units of ``q_step``) of a matching pair.
        neighbors: how many following windows in sorted order each window is compared with.
        min_shift: smallest shift length (pixels) of a pair.
        min_votes: votes a shift (with its 3x3 neighbours) needs to be accepted.
        min_std: windows with a luma std below this are skipped.

    Example:
        >>> CopyMove().name
        'copy-move'
    """

    block: int = 8
    stride: int = 1
    n_features: int = 9
    q_step: float = 6.0
    max_dist: float = 1.0
    neighbors: int = 6
    min_shift: int = 16
    min_votes: int = 40
    min_std: float = 3.0
    name: str = "copy-move"

    def _features(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from forensix.baselines.dct import ZIGZAG

        b, s = self.block, self.stride
        win = sliding_window_view(gray, (b, b))[::s, ::s]
        gy, gx = win.shape[:2]
        blocks = win.reshape(-1, b, b)
        d = _dct_matrix(b)
        zz = [(i, j) for i, j in ZIGZAG if i < b and j < b][: self.n_features]
        rows = np.array([i for i, _ in zz])
        cols = np.array([j for _, j in zz])
        # coefficient (i, j) = d[i] @ block @ d[j]
        feats = np.einsum("ni,kij,nj->kn", d[rows], blocks, d[cols], optimize=True) / self.q_step
        ys, xs = np.meshgrid(np.arange(gy) * s, np.arange(gx) * s, indexing="ij")
        keep = blocks.std(axis=(1, 2)) >= self.min_std
        return feats[keep], ys.ravel()[keep], xs.ravel()[keep]

    def matched_pairs(self, image: np.ndarray) -> np.ndarray:
        """Accepted pairs as rows ``(y1, x1, y2, x2)`` of window top-left corners."""
        gray = luminance(check_image(image, min_size=self.block))
        feats, ys, xs = self._features(gray)
        if len(feats) < 2:
            return np.zeros((0, 4), np.int64)
        order = np.lexsort(np.rint(feats).T[::-1])
        f, y, x = feats[order], ys[order], xs[order]
        pairs = []
        for k in range(1, min(self.neighbors, len(f) - 1) + 1):
            close = np.linalg.norm(f[k:] - f[:-k], axis=1) <= self.max_dist
            dy, dx = y[k:] - y[:-k], x[k:] - x[:-k]
            far = dy * dy + dx * dx >= self.min_shift**2
            idx = np.nonzero(close & far)[0]
            pairs.append(np.stack([y[idx], x[idx], y[idx + k], x[idx + k]], axis=1))
        pairs = np.concatenate(pairs)
        if len(pairs) == 0:
            return pairs
        dy, dx = pairs[:, 2] - pairs[:, 0], pairs[:, 3] - pairs[:, 1]
        flip = (dy < 0) | ((dy == 0) & (dx < 0))
        pairs[flip] = pairs[flip][:, [2, 3, 0, 1]]
        dy, dx = np.abs(dy), np.where(flip, -dx, dx)
        h, w = gray.shape
        votes = np.zeros((h + 2, 2 * w + 2))
        np.add.at(votes, (dy + 1, dx + w + 1), 1.0)
        votes = uniform_filter(votes, 3, mode="constant") * 9.0
        return pairs[votes[dy + 1, dx + w + 1] >= self.min_votes - 0.5]

    def localize(self, image: np.ndarray) -> Localization:
        """Mark the source and target regions of duplicated content."""
        image = check_image(image, min_size=self.block)
        h, w = image.shape[:2]
        pairs = self.matched_pairs(image)
        corners = np.zeros((h, w))
        np.add.at(corners, (pairs[:, 0], pairs[:, 1]), 1.0)
        np.add.at(corners, (pairs[:, 2], pairs[:, 3]), 1.0)
        corners = np.minimum(corners, 1.0)
        b = self.block
        # sum over the windows whose top-left lies in [y-b+1, y] x [x-b+1, x]
        padded = np.pad(corners, ((b - 1, 0), (b - 1, 0)))
        cover = uniform_filter(padded, b, mode="constant", origin=(b // 2 - 1 + b % 2, b // 2 - 1 + b % 2))
        cover = cover[b - 1 :, b - 1 :] * (b * b) / ((b / self.stride) ** 2)
        mask = (cover > 1e-6).astype(np.uint8)
        heat = np.where(mask == 1, 0.5 + 0.5 * np.clip(cover, 0.0, 1.0), 0.0).astype(np.float32)
        n = float(len(pairs))
        return Localization(heat, mask, n / (n + 2.0 * self.min_votes))
