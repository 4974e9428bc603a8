"""Where the localizer fails: pixel F1 by forged area, by how visible the change is, by region shape.

On the held-out images of ``quality.py`` (seed 1234, photos never used in training), each forged image
is scored at the model's own read-out (its mask threshold and relative read-out) and grouped by:

- the forged area (quartiles of the mask's share of the image);
- how much the forgery changed its pixels (:meth:`~forensix.data.forge.Sample.change`, the mean over
  the mask, in 8-bit grey levels; quartiles): the top quartile holds changes anyone can see;
- the region shape, and operation x shape.

Run: ``.venv/bin/python -m benchmarks.errors [--models forensix-small] [--n 192]``; writes
``benchmarks/results/errors.json``.
"""

from __future__ import annotations

import argparse

import pandas as pd

from benchmarks._common import mask_probabilities, write_result
from forensix.eval.calibration import image_threshold
from forensix.eval.metrics import pixel_metrics
from forensix.eval.model_quality import held_out_samples
from forensix.models import ForensixModel

SEED = 1234


def error_rows(model: ForensixModel, n: int) -> pd.DataFrame:
    """One row per forged held-out image: op, shape, area, mean change inside the mask, pixel F1."""
    samples = [s for s in held_out_samples(n, model.config.image_size, SEED) if s.record.is_fake]
    probs = mask_probabilities(model, [s.image for s in samples])
    rows = []
    for p, s in zip(probs, samples):
        cut = image_threshold(p, model.config.mask_threshold, model.config.mask_relative)
        rows.append({"op": s.record.op, "shape": s.record.shape, "area": float(s.mask.mean()),
                     "change": float(s.change()[s.mask > 0].mean()), "f1": pixel_metrics(p, s.mask, threshold=cut)["f1"]})
    return pd.DataFrame(rows)


def by_quartile(rows: pd.DataFrame, column: str) -> list[dict]:
    """Mean F1 per quartile of ``column``, with each quartile's range and count.

    Example:
        >>> rows = pd.DataFrame({"area": [0.1, 0.2, 0.3, 0.4], "f1": [0.0, 0.2, 0.4, 0.6]})
        >>> [q["f1"] for q in by_quartile(rows, "area")]
        [0.0, 0.2, 0.4, 0.6]
    """
    bins = pd.qcut(rows[column], 4)
    return [{"low": float(rows[column][bins == b].min()), "high": float(rows[column][bins == b].max()),
             "n": int((bins == b).sum()), "f1": round(float(rows.f1[bins == b].mean()), 4)}
            for b in bins.cat.categories]


def main(models: list[str], n: int) -> dict:
    payload: dict = {"n_images": n, "seed": SEED, "split": "test", "models": {}}
    for name in models:
        rows = error_rows(ForensixModel.from_pretrained(name), n)
        payload["models"][name] = {
            "n_forged": len(rows), "pixel_f1": round(float(rows.f1.mean()), 4),
            "by_area": by_quartile(rows, "area"), "by_change": by_quartile(rows, "change"),
            "by_shape": rows.groupby("shape").f1.mean().round(4).to_dict(),
            "by_operation_and_shape": rows.pivot_table(index="op", columns="shape", values="f1").round(3).to_dict(orient="index"),
        }
    write_result("errors", payload)
    return payload


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["forensix-small"])
    parser.add_argument("--n", type=int, default=192)
    args = parser.parse_args()
    for name, entry in main(args.models, args.n)["models"].items():
        print(name, entry["pixel_f1"], "by area", [q["f1"] for q in entry["by_area"]],
              "by change", [q["f1"] for q in entry["by_change"]], entry["by_shape"])
