"""Choose the mask threshold on validation data: the one with the best mean pixel F1 on forged images.

A localizer early in training ranks pixels well (pixel AUROC) while every probability is still below
0.5, so the fixed threshold 0.5 marks nothing; later, 0.5 may be near the best. Calibrating on the
validation split (photos the model never trains on, and never the held-out test photos) gives the
binary masks that ``analyze`` reports and the held-out pixel F1/IoU a threshold that suits the model.
The objective is the evaluation's own: mean per-image F1 over forged images. The relative read-out is
chosen with it: an image's map is cut at ``max(threshold, relative * its max probability)``
(:func:`image_threshold`), so a confident map marks only its peak region, not every pixel above a
global level; ``relative=0`` (tried too) is the plain global threshold.

After stage 3, :func:`calibrate_detection` fits, on the same split, how ``p_fake`` combines the
language model's FakeScope margin with the localizer's own evidence (its mask score), so that
``p_fake`` uses the evidence and means what it says (an authentic photo gets a low one). Evidence
that ranks the validation images the wrong way round is left out rather than flipped.

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
    """The detection calibration ``p_fake = sigmoid(scale * margin + mask_weight * logit(mask score) + bias)``
    (:meth:`~forensix.models.forensix_model.ForensixModel.p_fake_from_logits`), image AUROC and ECE before and after."""

    scale: float
    bias: float
    ece_before: float
    ece_after: float
    n_images: int
    declined: bool = False  # neither evidence ranks the images the right way round: FakeScope's rule kept
    mask_weight: float = 0.0
    auroc_before: float = float("nan")
    auroc_after: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {"detection_scale": self.scale, "detection_mask_weight": self.mask_weight, "detection_bias": self.bias,
                "ece_before": round(self.ece_before, 4), "ece_after": round(self.ece_after, 4),
                "auroc_before": round(self.auroc_before, 4), "auroc_after": round(self.auroc_after, 4),
                "n_images": self.n_images, "declined": self.declined}


def fit_platt(evidence: np.ndarray | Sequence[float], labels: Sequence[int], prior: float = 1e-2) -> tuple[np.ndarray, float]:
    """``(weights, bias)`` minimising the class-balanced log loss of ``sigmoid(evidence @ weights + bias)``
    (``evidence`` ``[n]`` or ``[n, k]``; Newton steps, a small ridge ``prior`` so that separable data stays
    finite). Each class weighs half, so the validation split's share of forgeries does not become every
    photo's prior.

    Example:
        >>> weights, bias = fit_platt([2.0, 2.5, 3.0, 1.0, 1.5, 2.2], [1, 1, 1, 0, 0, 0])
        >>> weights.shape, bool(weights[0] > 0), bias < 0
        ((1,), True, True)
    """
    x = np.asarray(evidence, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x
    y = np.asarray(labels, dtype=np.float64)
    if x.ndim != 2 or y.shape != (len(x),) or len(np.unique(y)) != 2:
        raise ForensixError(f"fit_platt: need evidence [n] or [n, k] and n labels with both classes, got {x.shape}, {y.shape}")
    design = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    weight = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean()))
    w = np.zeros(design.shape[1])
    for _ in range(100):
        p = 1 / (1 + np.exp(-np.clip(design @ w, -30, 30)))
        grad = design.T @ (weight * (p - y)) + prior * w
        hess = design.T @ (design * (weight * p * (1 - p))[:, None]) + prior * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return w[:-1], float(w[-1])


def fit_detection(evidence: np.ndarray, labels: Sequence[int]) -> tuple[float, float, float]:
    """``(scale, mask_weight, bias)`` from evidence ``[n, 2]`` (margin, mask-score logit): :func:`fit_platt` on
    both, and again without any evidence whose weight came out negative (it ranks the images the wrong way
    round; a calibration must not flip it). ``(1, 0, 0)`` (FakeScope's rule) when neither is kept.

    Example:
        >>> rng = np.random.default_rng(0); y = np.arange(40) % 2
        >>> evidence = np.stack([rng.normal(size=40) - y, rng.normal(size=40) + 2 * y], 1)  # the margin points the wrong way
        >>> scale, mask_weight, bias = fit_detection(evidence, y)
        >>> scale, mask_weight > 0
        (0.0, True)
    """
    keep = [0, 1]
    while keep:
        weights, bias = fit_platt(evidence[:, keep], labels)
        if (weights > 0).all():
            full = dict(zip(keep, weights))
            return float(full.get(0, 0.0)), float(full.get(1, 0.0)), bias
        keep = [k for k, w in zip(keep, weights) if w > 0]
    return 1.0, 0.0, 0.0


def calibrate_detection(model, samples: Sequence[Any], batch_size: int = 16) -> DetectionCalibration:
    """Fit the detection calibration on ``samples`` (forged and authentic ``Sample`` objects) for the
    question ``analyze`` asks: the language model's answer margin and the localizer's mask score, each kept
    only if it ranks the images the right way round (:func:`fit_detection`). Sets nothing: assign
    ``model.config.detection_scale``, ``detection_mask_weight`` and ``detection_bias`` to use it.
    """
    from forensix.data.conversations import analysis_question
    from forensix.eval.metrics import expected_calibration_error, image_metrics

    labels = [int(s.record.is_fake) for s in samples]
    if len(set(labels)) != 2:
        raise ForensixError("calibrate_detection: the samples need both forged and authentic images; pass a validation split")
    evidence = model.detection_evidence([s.image for s in samples], question=analysis_question(), batch_size=batch_size)
    scale, mask_weight, bias = fit_detection(evidence, labels)
    before = 1 / (1 + np.exp(-evidence[:, 0]))
    after = 1 / (1 + np.exp(-(scale * evidence[:, 0] + mask_weight * evidence[:, 1] + bias)))
    return DetectionCalibration(
        scale=scale, mask_weight=mask_weight, bias=bias, n_images=len(samples),
        declined=(scale, mask_weight, bias) == (1.0, 0.0, 0.0),
        ece_before=expected_calibration_error(before, labels), ece_after=expected_calibration_error(after, labels),
        auroc_before=image_metrics(list(before), labels)["auroc"], auroc_after=image_metrics(list(after), labels)["auroc"],
    )


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
           "calibrate_mask_threshold", "fit_detection", "fit_platt", "image_threshold"]
