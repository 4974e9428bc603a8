"""Evaluation: how good a detector, the model, a score or a threshold is.

What is where:

* :mod:`forensix.eval.metrics`: pixel, image, text and clue metrics (F1, IoU, AUROC, ECE, ROUGE-L, BLEU, CSS).
* :mod:`forensix.eval.detectors`: score any localizer (a classical baseline or the model) on a dataset;
  compare detectors.
* :mod:`forensix.eval.model_quality`: the whole model on held-out synthetic data (mask, detection, text, clues).
* :mod:`forensix.eval.bootstrap`: how sure a held-out score is (bootstrap intervals, paired differences).
* :mod:`forensix.eval.calibration`: the mask threshold and the ``p_fake`` calibration, chosen on validation data.

Metrics of explanations (pointing game, deletion/insertion, ...) live in
:mod:`forensix.explain.explanation_metrics`. The names below are imported on first use, so
``import forensix.eval`` loads neither torch nor the model.

Example:
    >>> import numpy as np
    >>> from forensix.eval import pixel_f1
    >>> pixel_f1(np.array([[0.9, 0.2]]), np.array([[1, 0]], np.uint8))
    1.0
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULES = {
    "metrics": ["SUMMARY_KEYS", "pixel_f1", "pixel_iou", "pixel_auroc", "best_threshold_f1", "pixel_metrics", "image_metrics",
                "expected_calibration_error", "rouge_l", "rouge_l_scores", "bleu", "bleu_statistics", "bleu_from_statistics",
                "css", "css_scores", "clue_f1", "SentenceEmbedder", "get_sentence_embedder"],
    "detectors": ["EvalResult", "evaluate_detector", "compare_detectors", "comparison_figure", "resolve_detector", "run_eval"],
    "model_quality": ["QualityResult", "evaluate_model", "held_out_samples", "detection_sources", "change_oracle", "mask_top",
                      "names_the_place"],
    "bootstrap": ["bootstrap_intervals", "paired_differences", "grouped_rate_interval", "metric_draws", "clue_rows",
                  "resample_counts"],
    "calibration": ["THRESHOLD_GRID", "RELATIVE_GRID", "ThresholdCalibration", "DetectionCalibration", "best_threshold",
                    "calibrate_mask_threshold", "calibrate_detection", "fit_platt", "image_threshold"],
}
_EXPORTS = {name: f"forensix.eval.{module}" for module, names in _MODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'forensix.eval' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = list(_EXPORTS)
