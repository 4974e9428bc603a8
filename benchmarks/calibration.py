"""Where should ``p_fake`` be calibrated? On 128-px validation crops (as training does) or on full-size photos.

Stage 3 fits ``p_fake = sigmoid(scale * margin + mask_weight * logit(mask score) + bias)`` on the validation
split at the model's image size (:func:`forensix.eval.calibration.calibrate_detection`). Users analyse
photos at their own size, where the language model reads a resized copy and the localizer the photo's
pixels, so the two pieces of evidence need not weigh the same there. This benchmark computes the
evidence (:meth:`~forensix.models.ForensixModel.detection_evidence`, at the model's saved resolution) on

- ``val_crops``: validation-photo crops at the model's size (what training calibrates on, seed 7);
- ``val_full``: forgeries made at full size in the validation photos (:func:`benchmarks.native.native_samples`,
  ``split="val"``, seed 2468);
- ``test_crops``: the 192 held-out crops of ``release.py`` (seed 1234);
- ``test_full``: the full-size held-out forgeries of ``native.py`` (seed 4321);

fits :func:`~forensix.eval.calibration.fit_detection` on ``val_crops`` (the saved rule), on ``val_full``,
and on both pooled, and scores each fit on both test sets: image AUROC, accuracy at 0.5 and ECE, with the
paired AUROC interval of each fit against the saved one. Nothing is chosen on test images.

Run: ``.venv/bin/python -m benchmarks.calibration [--model forensix-small] [--n-full 96]``; writes
``benchmarks/results/calibration_<name>.json``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from benchmarks import native
from benchmarks._common import write_result
from benchmarks.release import SEED
from forensix.data.conversations import analysis_question
from forensix.eval.bootstrap import paired_differences
from forensix.eval.calibration import fit_detection
from forensix.eval.metrics import expected_calibration_error, image_metrics
from forensix.eval.model_quality import held_out_samples
from forensix.models import ForensixModel

VAL_SEED, VAL_FULL_SEED = 7, 2468


def p_fake(evidence: np.ndarray, fit: tuple[float, float, float]) -> np.ndarray:
    """``sigmoid(scale * margin + mask_weight * mask_logit + bias)`` for evidence ``[n, 2]``.

    Example:
        >>> p_fake(np.array([[0.0, 0.0]]), (1.0, 1.0, 0.0)).tolist()
        [0.5]
    """
    scale, mask_weight, bias = fit
    return 1 / (1 + np.exp(-(scale * evidence[:, 0] + mask_weight * evidence[:, 1] + bias)))


def scored(p: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    metrics = image_metrics(list(p), list(labels))
    return {"image_auroc": float(metrics["auroc"]), "image_acc": float(metrics["accuracy"]),
            "ece": float(expected_calibration_error(p, list(labels)))}


def paired_auroc(p: np.ndarray, q: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """AUROC(p) - AUROC(q) on the same images, with the paired 95 % bootstrap interval of :mod:`forensix.eval.bootstrap`."""
    frame = lambda scores: pd.DataFrame({"is_fake": labels, "p_fake": scores})
    row = paired_differences(frame(p), frame(q), n_boot=2000).loc["image_auroc"]
    return {k: float(row[k]) for k in ("difference", "low", "high")}


def main(model_name: str, n_crops: int, n_full: int) -> dict:
    started = time.perf_counter()
    model = ForensixModel.from_pretrained(model_name).eval()
    size = model.config.image_size
    sets = {
        "val_crops": [(s.image, s.record.is_fake) for s in held_out_samples(n_crops, size, VAL_SEED, "val")],
        "val_full": [(it["image"], it["op"] != "authentic") for it in native.native_samples(n_full, VAL_FULL_SEED, "val")],
        "test_crops": [(s.image, s.record.is_fake) for s in held_out_samples(n_crops, size, SEED)],
        "test_full": [(it["image"], it["op"] != "authentic") for it in native.native_samples(n_full)],
    }
    question = analysis_question()
    evidence, labels = {}, {}
    for name, items in sets.items():
        evidence[name] = model.detection_evidence([image for image, _ in items], question=question, batch_size=8)
        labels[name] = np.array([int(fake) for _, fake in items])
    saved = (model.config.detection_scale, model.config.detection_mask_weight, model.config.detection_bias)
    fits = {"saved": saved,
            "val_crops": fit_detection(evidence["val_crops"], labels["val_crops"]),
            "val_full": fit_detection(evidence["val_full"], labels["val_full"]),
            "pooled": fit_detection(np.concatenate([evidence["val_crops"], evidence["val_full"]]),
                                    np.concatenate([labels["val_crops"], labels["val_full"]]))}
    results = {}
    for fit_name, fit in fits.items():
        results[fit_name] = {"fit": dict(zip(("detection_scale", "detection_mask_weight", "detection_bias"), map(float, fit)))}
        for test in ("test_crops", "test_full"):
            p = p_fake(evidence[test], fit)
            results[fit_name][test] = {**scored(p, labels[test]),
                                       "minus_saved_auroc": paired_auroc(p, p_fake(evidence[test], saved), labels[test])}
    payload = {"model": model_name, "resolution": model.config.resolution,
               "n": {name: len(items) for name, items in sets.items()},
               "seeds": {"val_crops": VAL_SEED, "val_full": VAL_FULL_SEED, "test_crops": SEED, "test_full": native.SEED},
               "evidence_auroc": {name: {"margin": float(image_metrics(list(ev[:, 0]), list(labels[name]))["auroc"]),
                                         "mask_score": float(image_metrics(list(ev[:, 1]), list(labels[name]))["auroc"])}
                                  for name, ev in evidence.items()},
               "fits": results, "seconds": round(time.perf_counter() - started, 1)}
    return payload


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="forensix-small")
    parser.add_argument("--name", default="shipped", help="the result is written to benchmarks/results/calibration_NAME.json")
    parser.add_argument("--n-crops", type=int, default=192)
    parser.add_argument("--n-full", type=int, default=96)
    args = parser.parse_args()
    result = main(args.model, args.n_crops, args.n_full)
    write_result(f"calibration_{args.name}", result)
    print(json.dumps(result, indent=1)[:4000])
