"""Learning curve of the localizer alone: what more stage-2 steps buy the FL-Expert on a CPU.

Each run trains a fresh small-preset model (seed 0) through stage 2 with only the mask loss
(``get_stage(2, losses=("mask",))``) for its own number of steps (its own cosine schedule), sets the
mask threshold on the validation split as the pipeline does, and scores the held-out split of
``benchmarks/quality.py`` (the same 96 images, seed 1234): pixel F1 / IoU / AUROC over the forged
images, and the image AUROC of the localizer's own score (:func:`~forensix.eval.model_quality.mask_top`).

One more run at the largest step count trains on data that never repeats a forgery (a
million-sample stream instead of the preset's 4800 cached samples), to tell repeated samples from
too few steps.

``fit`` is a least-squares line of pixel F1 over ``log2(samples seen)`` through the curve's runs:
the F1 gained per doubling of the training samples, and the steps that line would need to reach the
issue's floor of pixel F1 0.60. That last figure is an extrapolation of the measured points, not a
measurement.

Run: ``.venv/bin/python -m benchmarks.localizer [--steps 400 1000 4000]`` (about 30 min on 2 cores);
writes ``benchmarks/results/localizer.json``.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from benchmarks._common import write_result
from forensix.eval.calibration import calibrate_mask_threshold
from forensix.config import get_config
from forensix.data.datasets import SyntheticForgeryDataset
from forensix.eval.metrics import image_metrics, pixel_metrics
from forensix.models import ForensixModel
from forensix.train.pipeline import DATA_LENGTH, stage_datasets
from forensix.eval.model_quality import held_out_samples, mask_top
from forensix.train import TrainConfig, get_stage, train_stage

SEED, HELD_OUT_SEED, N_HELD_OUT, FLOOR = 0, 1234, 96, 0.60
FRESH_LENGTH = 1_000_000


def run(steps: int, samples: list, *, fresh: bool = False, seed: int = SEED) -> dict:
    """Train the localizer alone for ``steps`` and score it on ``samples``."""
    model = ForensixModel.from_config("small", seed=seed)  # seeds torch itself
    size = model.config.image_size
    train, val = stage_datasets("small", 2, size, seed)
    if fresh:
        train = SyntheticForgeryDataset(stage=2, split="train", size=size, length=FRESH_LENGTH, seed=seed, cache=False,
                                        photos=train.generator.photos)
    spec = get_stage(2, losses=("mask",))
    config = TrainConfig(steps=steps, seed=seed).resolved(spec, "small")
    started = time.perf_counter()
    train_stage(model, spec, train, config, progress=False)
    train_s = time.perf_counter() - started
    model.eval()
    threshold = calibrate_mask_threshold(model, [val.sample(i) for i in range(len(val))], relative_grid=(0.0,)).threshold
    probs = []
    for start in range(0, len(samples), 16):
        probs += model.mask_probabilities([s.image for s in samples[start : start + 16]])
    forged = [pixel_metrics(p, s.mask, threshold=threshold) for p, s in zip(probs, samples) if s.record.is_fake]
    detection = image_metrics([mask_top(p) for p in probs], [int(s.record.is_fake) for s in samples])
    return {
        "steps": steps, "batch_size": config.batch_size, "samples_seen": steps * config.batch_size,
        "distinct_training_samples": FRESH_LENGTH if fresh else len(train), "fresh_data": fresh,
        "threshold": threshold, "train_s": round(train_s, 1),
        "pixel_f1": float(np.mean([m["f1"] for m in forged])),
        "pixel_iou": float(np.mean([m["iou"] for m in forged])),
        "pixel_auroc": float(np.mean([m["auroc"] for m in forged])),
        "image_auroc_mask_top": float(detection["auroc"]),
    }


def fit(curve: list[dict], floor: float = FLOOR) -> dict:
    """Pixel F1 per doubling of samples seen (least squares), and the steps (and hours, at the last run's
    speed) that line needs for ``floor``.

    Example:
        >>> pts = [{"samples_seen": 1000, "pixel_f1": 0.2, "batch_size": 8, "steps": 125, "train_s": 20.0},
        ...        {"samples_seen": 4000, "pixel_f1": 0.3, "batch_size": 8, "steps": 500, "train_s": 80.0}]
        >>> f = fit(pts); round(f["f1_per_doubling"], 3), f["steps_for_floor_extrapolated"]
        (0.05, 32000)
    """
    x = np.log2([p["samples_seen"] for p in curve])
    y = np.array([p["pixel_f1"] for p in curve])
    slope, intercept = np.polyfit(x, y, 1)
    out = {"f1_per_doubling": float(slope), "floor": floor, "steps_for_floor_extrapolated": None}
    if slope > 0:
        last = curve[-1]
        steps = int(math.ceil(2 ** ((floor - intercept) / slope) / last["batch_size"]))
        out["steps_for_floor_extrapolated"] = steps
        out["hours_for_floor_extrapolated"] = round(steps * last["train_s"] / last["steps"] / 3600, 1)
    return out


def main(steps: list[int]) -> dict:
    samples = held_out_samples(N_HELD_OUT, get_config("small").image_size, HELD_OUT_SEED)
    started = time.perf_counter()
    curve = [run(n, samples) for n in sorted(steps)]
    payload: dict = {"curve": curve, "fit": fit(curve) if len(curve) > 1 else None,
                     "fresh_data": run(max(steps), samples, fresh=True)}
    payload.update({"seed": SEED, "preset_data_length": DATA_LENGTH["small"],
                    "held_out": {"split": "test", "n_images": N_HELD_OUT, "seed": HELD_OUT_SEED},
                    "seconds": round(time.perf_counter() - started, 1)})
    write_result("localizer", payload)
    return payload


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, nargs="+", default=[400, 1000, 4000])
    print(main(parser.parse_args().steps))
