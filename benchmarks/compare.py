"""Paired comparison of localizers: each candidate model against a baseline model on the same held-out images.

Answers "did this training run make the localizer better?" before a run is published. Every model is
scored at its own read-out (threshold, relative cut and resolution saved with it) on

- ``held_out``: the held-out synthetic images of ``quality.py`` / ``release.py`` (seed 1234, photos never
  used in training, at the model's image size);
- ``native``: the full-size forgeries of ``benchmarks/native.py`` (forged areas 0.2-25 % of the photo).

For each candidate it writes pixel F1, pixel AUROC and the image AUROC of the localizer's own score
(top-1 % mask probability), and the paired difference candidate - baseline with a 95 % bootstrap
interval over the same images. Candidates are model directories (e.g. ``runs/x/stage2/model``) or
released names; a stage-2 model is scored the same way as a finished one.

Run: ``.venv/bin/python -m benchmarks.compare --name photos --baseline forensix-small \
--candidates bundled=runs/a/stage2/model camera=runs/b/stage2/model``; writes
``benchmarks/results/compare_<name>.json``.
"""

from __future__ import annotations

import argparse
import json
import time

import pandas as pd

from benchmarks import native
from benchmarks._common import write_result
from benchmarks.release import SEED, localizer_rows
from forensix.config import get_config
from forensix.eval.bootstrap import bootstrap_intervals, paired_differences
from forensix.eval.detectors import evaluate_detector
from forensix.eval.model_quality import held_out_samples
from forensix.errors import ForensixError
from forensix.models import ForensixModel

METRICS = ("pixel_f1", "pixel_auroc", "image_auroc")


def native_rows(model: ForensixModel, items: list[dict]) -> pd.DataFrame:
    """Rows of :func:`benchmarks.native._frame` for ``model`` at its own resolution on the full-size ``items``."""
    return native._frame(evaluate_detector(model, items, progress=False).rows, items)


def summarise(rows: pd.DataFrame, baseline: pd.DataFrame | None = None) -> dict:
    """``{"scores": {metric: {value, low, high}}}``, and with a ``baseline`` scored on the same images
    ``"minus_baseline": {metric: {difference, low, high}}`` (paired)."""
    table = bootstrap_intervals(rows, n_boot=2000)
    out = {"scores": {m: {k: float(table.loc[m, k]) for k in ("value", "low", "high")} for m in METRICS if m in table.index}}
    if baseline is not None:
        diff = paired_differences(rows, baseline, n_boot=2000)
        out["minus_baseline"] = {m: {k: float(diff.loc[m, k]) for k in ("difference", "low", "high")} for m in METRICS if m in diff.index}
    return out


def parse_candidates(pairs: list[str]) -> dict[str, str]:
    """``["name=path", ...]`` -> ``{name: path}``.

    Example:
        >>> parse_candidates(["camera=runs/b/stage2/model"])
        {'camera': 'runs/b/stage2/model'}
    """
    out = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise ForensixError(f"--candidates {pair!r}: write each candidate as NAME=MODEL_DIR")
        out[name] = path
    return out


def main(name: str, baseline: str, candidates: dict[str, str], n: int = 192, n_native: int = 96) -> dict:
    started = time.perf_counter()
    samples = held_out_samples(n, get_config("small").image_size, SEED)
    items = native.native_samples(n_native) if n_native else []
    models = {"baseline": baseline, **candidates}
    rows = {}
    for key, where in models.items():
        model = ForensixModel.from_pretrained(where)
        rows[key] = {"held_out": localizer_rows(model, samples)}
        if items:
            rows[key]["native"] = native_rows(model, items)
    payload = {"baseline": baseline, "candidates": candidates, "n_held_out": n, "held_out_seed": SEED,
               "n_native": n_native, "native_seed": native.SEED,
               "scores": "each model at its own read-out; image AUROC of the localizer's top-1 % mask score",
               "results": {key: {split: summarise(frame, None if key == "baseline" else rows["baseline"][split])
                                 for split, frame in rows[key].items()} for key in models}}
    payload["seconds"] = round(time.perf_counter() - started, 1)
    write_result(f"compare_{name}", payload)
    return payload


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True, help="the result is written to benchmarks/results/compare_NAME.json")
    parser.add_argument("--baseline", default="forensix-small")
    parser.add_argument("--candidates", nargs="+", required=True, metavar="NAME=MODEL")
    parser.add_argument("--n", type=int, default=192)
    parser.add_argument("--native", type=int, default=96, help="full-size images of benchmarks/native.py (0: skip)")
    args = parser.parse_args()
    print(json.dumps(main(args.name, args.baseline, parse_candidates(args.candidates), args.n, args.native), indent=1)[:3000])
