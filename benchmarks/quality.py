"""Held-out quality of the small preset after each training stage (and untrained, for contrast).

Trains the small preset with a fixed seed through the three stages (reusing finished stages in
``--out``), and after each stage scores the model on held-out synthetic images (photos and seeds
never used in training): pixel F1/IoU/AUROC, image accuracy/AUROC of p_fake, ROUGE-L, BLEU, CSS
and clue F1. Floors for the small preset on CPU: pixel F1 >= 0.60, image AUROC >= 0.90, CSS >= 0.70.
Beside them: the image AUROC of p_fake with the true mask fed to the mask encoder and of the
localizer's own top mask probabilities (``forensix.eval.model_quality.detection_sources``: is it the localizer
or the language model that misses?), stage 3's scores per forgery operation, and a reference
ceiling from the images themselves (``change_oracle``: pixel F1 of thresholding how much the
manipulation changed each pixel, which only a detector that sees the original could do).
Every score comes with a 95% bootstrap interval over the images (``interval_95``), and each stage's
effect with a paired interval against the stage before it (``stage_effect_95``; it leaves out the
variation that comes from which images were drawn): an interval that excludes 0 is a real change.
``stage_own_validation_loss`` scores each stage's own objective (its loss terms on its validation
photos) for the model before and after the stage, which shows what a stage does even where the
held-out metrics cannot (stage 1 aligns image tokens with captions).

Run: ``.venv/bin/python -m benchmarks.quality [--out runs/quality] [--n 96] [--steps 2=600 3=150]``;
writes ``benchmarks/results/quality.json``.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from benchmarks._common import command, write_result
from forensix.cli import _steps
from forensix.models import ForensixModel
from forensix.train.pipeline import stage_datasets, train_stages
from forensix.eval.model_quality import SUMMARY_KEYS, change_oracle, detection_sources, evaluate_model, held_out_samples
from forensix.train import TrainConfig, get_stage, validation_losses

SEED, EVAL_SEED, RESAMPLES, OWN_BATCHES = 0, 1234, 1000, 8


def _rounded(value):
    """Floats rounded to 4 digits at any depth of nested dicts and lists (keys as strings, for JSON)."""
    if isinstance(value, dict):
        return {str(k): _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return round(value, 4) if isinstance(value, float) else value


def _spans(table: pd.DataFrame) -> dict[str, list[float]]:
    """``{metric: [low, high]}`` from a :meth:`~forensix.eval.model_quality.QualityResult.intervals` table."""
    return {metric: [row.low, row.high] for metric, row in table.iterrows()}


def _own_losses(stage: int, size: int, **models: ForensixModel) -> dict[str, dict[str, float]]:
    """Stage ``stage``'s own losses on its validation photos (``OWN_BATCHES`` fixed batches), per named model."""
    spec = get_stage(stage)
    config = TrainConfig(seed=SEED).resolved(spec, "small")
    _, val = stage_datasets("small", stage, size, SEED)
    return {name: validation_losses(model, spec, val, batches=OWN_BATCHES, batch_size=config.batch_size, seed=SEED,
                                    lm_subbatch=config.lm_subbatch) for name, model in models.items()}


def main(out: str = "runs/quality", n: int = 96, steps: dict[int, int] | None = None) -> dict:
    started = time.perf_counter()
    untrained = ForensixModel.from_config("small", seed=SEED)
    size = untrained.config.image_size
    samples = held_out_samples(n, size, EVAL_SEED)
    result = evaluate_model(untrained, samples=samples, seed=EVAL_SEED, progress=False)
    stages = {"untrained": result.summary}
    sources = {"untrained": detection_sources(untrained, result)}
    intervals = {"untrained": _spans(result.intervals(n_boot=RESAMPLES, seed=SEED))}
    effects, own_objective, train_seconds = {}, {}, {}
    model, earlier = untrained, "untrained"
    for stage in (1, 2, 3):
        t0 = time.perf_counter()
        previous_model, previous_result, name = model, result, f"stage{stage}"
        model, results = train_stages("small", out, stages=range(1, stage + 1), seed=SEED, steps=steps, progress=False)
        train_seconds[name] = round(time.perf_counter() - t0, 1)
        own_objective[name] = _own_losses(stage, size, before=previous_model, after=model)
        result = evaluate_model(model, samples=samples, seed=EVAL_SEED, progress=False)
        stages[name] = {**result.summary, "train_steps": len(results[stage].history)}
        sources[name] = detection_sources(model, result)
        intervals[name] = _spans(result.intervals(n_boot=RESAMPLES, seed=SEED))
        difference = result.difference(previous_result, n_boot=RESAMPLES, seed=SEED)
        effects[f"{name} - {earlier}"] = difference[["difference", "low", "high"]].to_dict("index")
        earlier = name
    payload = {
        "stages": _rounded(stages),
        "stage_own_validation_loss": _rounded(own_objective),
        "interval_95": _rounded(intervals),
        "stage_effect_95": _rounded(effects),
        "image_auroc_by_source": _rounded(sources),
        "stage3_by_operation": _rounded(result.by_operation().to_dict("index")),
        "change_oracle": _rounded(change_oracle(samples)),
        "metrics": list(SUMMARY_KEYS),
        "held_out": {"split": "test", "n_images": n, "seed": EVAL_SEED, "size": size},
        "bootstrap": {"resamples": RESAMPLES, "seed": SEED, "unit": "image", "interval": "percentile"},
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
    parser.add_argument("--n", type=int, default=96)
    parser.add_argument("--steps", nargs="*", metavar="STAGE=N")
    args = parser.parse_args()
    print(main(args.out, args.n, _steps(args.steps)))
