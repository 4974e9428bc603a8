"""Held-out quality of the small preset after each training stage (and untrained, for contrast).

Trains the small preset with a fixed seed through the three stages (reusing finished stages in
``--out``), and after each stage scores the model on held-out synthetic images (photos and seeds
never used in training): pixel F1/IoU/AUROC, image accuracy/AUROC of p_fake, ROUGE-L, BLEU, CSS
and clue F1. Floors for the small preset on CPU: pixel F1 >= 0.60, image AUROC >= 0.90, CSS >= 0.70.
Beside them: the image AUROC of p_fake with the true mask fed to the mask encoder and of the
localizer's own top mask probabilities (``forensix.quality.detection_sources``: is it the localizer
or the language model that misses?), stage 3's scores per forgery operation, and a reference
ceiling from the images themselves (``change_oracle``: pixel F1 of thresholding how much the
manipulation changed each pixel, which only a detector that sees the original could do).

Run: ``.venv/bin/python -m benchmarks.quality [--out runs/quality] [--n 48] [--steps 2=600 3=150]``;
writes ``benchmarks/results/quality.json``.
"""

from __future__ import annotations

import argparse
import time

from benchmarks._common import command, write_result
from forensix.cli import _steps
from forensix.models import ForensixModel
from forensix.pipeline import train_stages
from forensix.quality import SUMMARY_KEYS, change_oracle, detection_sources, evaluate_model, held_out_samples

SEED, EVAL_SEED = 0, 1234


def _rounded(value):
    """Floats rounded to 4 digits at any depth of nested dicts (keys as strings, for JSON)."""
    if isinstance(value, dict):
        return {str(k): _rounded(v) for k, v in value.items()}
    return round(value, 4) if isinstance(value, float) else value


def main(out: str = "runs/quality", n: int = 48, steps: dict[int, int] | None = None) -> dict:
    started = time.perf_counter()
    untrained = ForensixModel.from_config("small", seed=SEED)
    size = untrained.config.image_size
    samples = held_out_samples(n, size, EVAL_SEED)
    result = evaluate_model(untrained, samples=samples, seed=EVAL_SEED, progress=False)
    stages = {"untrained": result.summary}
    sources = {"untrained": detection_sources(untrained, result)}
    train_seconds = {}
    for stage in (1, 2, 3):
        t0 = time.perf_counter()
        model, results = train_stages("small", out, stages=range(1, stage + 1), seed=SEED, steps=steps, progress=False)
        train_seconds[f"stage{stage}"] = round(time.perf_counter() - t0, 1)
        result = evaluate_model(model, samples=samples, seed=EVAL_SEED, progress=False)
        stages[f"stage{stage}"] = {**result.summary, "train_steps": len(results[stage].history)}
        sources[f"stage{stage}"] = detection_sources(model, result)
    payload = {
        "stages": _rounded(stages),
        "image_auroc_by_source": _rounded(sources),
        "stage3_by_operation": _rounded(result.by_operation().to_dict("index")),
        "change_oracle": _rounded(change_oracle(samples)),
        "metrics": list(SUMMARY_KEYS),
        "held_out": {"split": "test", "n_images": n, "seed": EVAL_SEED, "size": size},
        "train_seed": SEED,
        "train_seconds_including_reuse": train_seconds,
        "command": command(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_result("quality", payload)
    return payload


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="runs/quality")
    parser.add_argument("--n", type=int, default=48)
    parser.add_argument("--steps", nargs="*", metavar="STAGE=N")
    args = parser.parse_args()
    print(main(args.out, args.n, _steps(args.steps)))
