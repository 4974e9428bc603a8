"""Choose the mask threshold on validation data: the one with the best mean pixel F1 on forged images.

A localizer early in training ranks pixels well (pixel AUROC) while every probability is still below
0.5, so the fixed threshold 0.5 marks nothing; later, 0.5 may be near the best. Calibrating on the
validation split (photos the model never trains on, and never the held-out test photos) gives the
binary masks that ``analyze`` reports and the held-out pixel F1/IoU a threshold that suits the model.
The objective is the evaluation's own: mean per-image F1 over forged images.

Example:
    >>> import numpy as np
    >>> gt = np.zeros((8, 8), np.uint8); gt[:4] = 1
    >>> probs = np.where(gt == 1, 0.3, 0.1)
    >>> best_threshold([probs], [gt]).threshold
    0.3
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from forensix.errors import ForensixError
from forensix.metrics import pixel_f1

#: Thresholds tried, 0.05 to 0.95 in steps of 0.05.
THRESHOLD_GRID: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 20))


@dataclass
class ThresholdCalibration:
    """The chosen threshold, the mean F1 at every threshold tried, and how many forged images decided it."""

    threshold: float
    f1_by_threshold: dict[float, float]
    n_images: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (threshold keys as strings)."""
        return {"mask_threshold": self.threshold, "n_images": self.n_images,
                "f1_by_threshold": {f"{t:.2f}": round(f, 4) for t, f in self.f1_by_threshold.items()}}


def best_threshold(
    probs: Sequence[np.ndarray], masks: Sequence[np.ndarray], grid: Sequence[float] = THRESHOLD_GRID
) -> ThresholdCalibration:
    """The threshold of ``grid`` with the best mean pixel F1 over the image pairs (ties: nearest 0.5).

    Example:
        >>> gt = np.array([[1, 0], [0, 0]], np.uint8)
        >>> result = best_threshold([np.array([[0.9, 0.6], [0.2, 0.1]])], [gt], grid=(0.5, 0.7))
        >>> result.threshold, {t: round(f, 3) for t, f in result.f1_by_threshold.items()}
        (0.7, {0.5: 0.667, 0.7: 1.0})
    """
    if len(probs) != len(masks) or not probs:
        raise ForensixError(f"best_threshold: got {len(probs)} probability maps and {len(masks)} masks; "
                            "pass the same number, at least one")
    scores = {float(t): float(np.mean([pixel_f1(p, m, t) for p, m in zip(probs, masks)])) for t in grid}
    threshold = min(scores, key=lambda t: (-scores[t], abs(t - 0.5)))
    return ThresholdCalibration(threshold=threshold, f1_by_threshold=scores, n_images=len(probs))


def calibrate_mask_threshold(model, samples: Sequence[Any], batch_size: int = 16) -> ThresholdCalibration:
    """Best threshold for ``model``'s mask probabilities on the forged ``samples`` (``Sample`` objects).

    Sets nothing: assign ``model.config.mask_threshold = result.threshold`` to use it.
    """
    forged = [s for s in samples if s.record.is_fake]
    if not forged:
        raise ForensixError("calibrate_mask_threshold: no forged samples among the validation samples; "
                            "pass a split with forgeries")
    probs = []
    for start in range(0, len(forged), batch_size):
        probs.extend(model.mask_probabilities([s.image for s in forged[start : start + batch_size]]))
    return best_threshold(probs, [s.mask for s in forged])


__all__ = ["THRESHOLD_GRID", "ThresholdCalibration", "best_threshold", "calibrate_mask_threshold"]
