"""Choose the mask threshold on validation data: the one with the best mean pixel F1 on forged images.

A localizer early in training ranks pixels well (pixel AUROC) while every probability is still below
0.5, so the fixed threshold 0.5 marks nothing; later, 0.5 may be near the best. Calibrating on the
validation split (photos the model never trains on, and never the held-out test photos) gives the
binary masks that ``analyze`` reports and the held-out pixel F1/IoU a threshold that suits the model.
The objective is the evaluation's own: mean per-image F1 over forged images. The relative read-out is
chosen with it: an image's map is cut at ``max(threshold, relative * its max probability)``
(:func:`image_threshold`), so a confident map marks only its peak region, not every pixel above a
global level; ``relative=0`` (tried too) is the plain global threshold.

After stage 3, :func:`calibrate_detection` fits Platt scaling of the FakeScope margin on the same
split, so that ``p_fake`` means what it says (an authentic photo gets a low one): the ranking, hence
the image AUROC, is unchanged; the accuracy at 0.5 and the expected calibration error are what move.

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
from forensix.eval.metrics import pixel_f1

#: Thresholds tried, 0.05 to 0.95 in steps of 0.05.
THRESHOLD_GRID: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 20))

#: Relative read-outs tried (a share of each image's maximum probability); 0 is the plain global threshold.
RELATIVE_GRID: tuple[float, ...] = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def image_threshold(probs: np.ndarray, threshold: float, relative: float = 0.0) -> float:
    """Where one image's probability map is cut: ``max(threshold, relative * probs.max())``.

    Example:
        >>> image_threshold(np.array([0.9, 0.4, 0.1]), 0.3, relative=0.5), image_threshold(np.array([0.2]), 0.3, 0.5)
        (0.45, 0.3)
    """
    return max(float(threshold), float(relative) * float(np.max(probs))) if relative else float(threshold)


@dataclass
class ThresholdCalibration:
    """The chosen threshold and relative read-out, the mean F1 at every threshold tried (at the chosen
    relative) and at every relative tried (at the chosen threshold), and how many forged images decided it."""

    threshold: float
    f1_by_threshold: dict[float, float]
    n_images: int
    relative: float = 0.0
    f1_by_relative: dict[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (threshold keys as strings)."""
        return {"mask_threshold": self.threshold, "mask_relative": self.relative, "n_images": self.n_images,
                "f1_by_threshold": {f"{t:.2f}": round(f, 4) for t, f in self.f1_by_threshold.items()},
                "f1_by_relative": {f"{r:.2f}": round(f, 4) for r, f in (self.f1_by_relative or {}).items()}}


def best_threshold(
    probs: Sequence[np.ndarray], masks: Sequence[np.ndarray], grid: Sequence[float] = THRESHOLD_GRID,
    relative_grid: Sequence[float] = (0.0,),
) -> ThresholdCalibration:
    """The threshold of ``grid`` and relative read-out of ``relative_grid`` with the best mean pixel F1
    over the image pairs (ties: the smaller relative, then the threshold nearest 0.5).

    Example:
        >>> gt = np.array([[1, 0], [0, 0]], np.uint8)
        >>> result = best_threshold([np.array([[0.9, 0.6], [0.2, 0.1]])], [gt], grid=(0.5, 0.7))
        >>> result.threshold, {t: round(f, 3) for t, f in result.f1_by_threshold.items()}
        (0.7, {0.5: 0.667, 0.7: 1.0})
        >>> best_threshold([np.array([[0.9, 0.6], [0.2, 0.1]])], [gt], grid=(0.5,), relative_grid=(0.0, 0.8)).relative
        0.8
    """
    if len(probs) != len(masks) or not probs:
        raise ForensixError(f"best_threshold: got {len(probs)} probability maps and {len(masks)} masks; "
                            "pass the same number, at least one")
    peaks = [float(np.max(p)) for p in probs]
    scores = {
        (float(t), float(r)): float(np.mean([pixel_f1(p, m, max(t, r * peak)) for p, m, peak in zip(probs, masks, peaks)]))
        for t in grid for r in relative_grid
    }
    threshold, relative = min(scores, key=lambda tr: (-scores[tr], tr[1], abs(tr[0] - 0.5)))
    return ThresholdCalibration(
        threshold=threshold, relative=relative, n_images=len(probs),
        f1_by_threshold={t: f for (t, r), f in scores.items() if r == relative},
        f1_by_relative={r: f for (t, r), f in scores.items() if t == threshold},
    )


@dataclass
class DetectionCalibration:
    """Platt scaling of the FakeScope margin: ``p_fake = sigmoid(scale * margin + bias)``, and ECE before and after."""

    scale: float
    bias: float
    ece_before: float
    ece_after: float
    n_images: int
    declined: bool = False  # the fit wanted a negative scale (the evidence points the wrong way): identity kept

    def to_dict(self) -> dict[str, Any]:
        return {"detection_scale": self.scale, "detection_bias": self.bias, "ece_before": round(self.ece_before, 4),
                "ece_after": round(self.ece_after, 4), "n_images": self.n_images, "declined": self.declined}


def fit_platt(margins: Sequence[float], labels: Sequence[int], prior: float = 1e-2) -> tuple[float, float]:
    """``(scale, bias)`` minimising the class-balanced log loss of ``sigmoid(scale * margin + bias)`` (Newton
    steps, a small ridge ``prior`` on both so that separable data stays finite). Each class weighs half, so
    the validation split's share of forgeries does not become every photo's prior.

    Example:
        >>> scale, bias = fit_platt([2.0, 2.5, 3.0, 1.0, 1.5, 2.2], [1, 1, 1, 0, 0, 0])
        >>> scale > 0, bias < 0
        (True, True)
    """
    x = np.asarray(margins, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or len(np.unique(y)) != 2:
        raise ForensixError(f"fit_platt: need 1-D margins and labels of equal length with both classes, got {x.shape}, {y.shape}")
    design = np.stack([x, np.ones_like(x)], axis=1)
    weight = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean()))
    w = np.array([1.0, 0.0])
    for _ in range(100):
        p = 1 / (1 + np.exp(-np.clip(design @ w, -30, 30)))
        grad = design.T @ (weight * (p - y)) + prior * w
        hess = design.T @ (design * (weight * p * (1 - p))[:, None]) + prior * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return float(w[0]), float(w[1])


def calibrate_detection(model, samples: Sequence[Any], batch_size: int = 16) -> DetectionCalibration:
    """Fit the detection calibration on ``samples`` (forged and authentic ``Sample`` objects) for the
    question ``analyze`` asks. Sets nothing: assign ``model.config.detection_scale/bias`` to use it.
    """
    from forensix.data.conversations import analysis_question
    from forensix.eval.metrics import expected_calibration_error

    labels = [int(s.record.is_fake) for s in samples]
    if len(set(labels)) != 2:
        raise ForensixError("calibrate_detection: the samples need both forged and authentic images; pass a validation split")
    scale, bias = model.config.detection_scale, model.config.detection_bias
    try:
        model.config.detection_scale, model.config.detection_bias = 1.0, 0.0
        p = np.clip(model.detect([s.image for s in samples], question=analysis_question(), batch_size=batch_size), 1e-7, 1 - 1e-7)
    finally:
        model.config.detection_scale, model.config.detection_bias = scale, bias
    margins = np.log(p) - np.log1p(-p)
    new_scale, new_bias = fit_platt(margins, labels)
    declined = new_scale <= 0  # the margin ranks these images the wrong way round: a calibration must not flip it
    if declined:
        new_scale, new_bias = 1.0, 0.0
    after = 1 / (1 + np.exp(-(new_scale * margins + new_bias)))
    return DetectionCalibration(new_scale, new_bias, expected_calibration_error(p, labels),
                                expected_calibration_error(after, labels), len(samples), declined)


def calibrate_mask_threshold(
    model, samples: Sequence[Any], batch_size: int = 16, relative_grid: Sequence[float] = RELATIVE_GRID,
) -> ThresholdCalibration:
    """Best threshold and relative read-out for ``model``'s mask probabilities on the forged ``samples``
    (``Sample`` objects); ``relative_grid=(0.0,)`` chooses the global threshold alone.

    Sets nothing: assign ``model.config.mask_threshold = result.threshold`` and
    ``model.config.mask_relative = result.relative`` to use it.
    """
    forged = [s for s in samples if s.record.is_fake]
    if not forged:
        raise ForensixError("calibrate_mask_threshold: no forged samples among the validation samples; "
                            "pass a split with forgeries")
    probs = []
    for start in range(0, len(forged), batch_size):
        probs.extend(model.mask_probabilities([s.image for s in forged[start : start + batch_size]]))
    return best_threshold(probs, [s.mask for s in forged], relative_grid=relative_grid)


__all__ = ["RELATIVE_GRID", "THRESHOLD_GRID", "DetectionCalibration", "ThresholdCalibration", "best_threshold", "calibrate_detection",
           "calibrate_mask_threshold", "fit_platt", "image_threshold"]
