"""Classical baselines vs the trained model on the held-out synthetic split.

Every detector (ELA, noise residual, JPEG ghost, block DCT, copy-move, and the model given with
``--model``) localizes the same held-out images (photos never used in training); the script writes
pixel F1 (threshold 0.5 and best threshold), pixel AUROC, image AUROC and seconds per image.

Run: ``.venv/bin/python -m benchmarks.baselines --model runs/demo/stage3/model [--n 96]``;
writes ``benchmarks/results/baselines.json``.
"""

from __future__ import annotations

import argparse

from benchmarks._common import write_result
from forensix.baselines import DETECTORS, get_detector
from forensix.data.datasets import SyntheticImageDataset
from forensix.eval.detectors import compare_detectors, evaluate_detector

SEED, SIZE = 1234, 224  # without a model; with one, its own image size


def main(model_dir: str | None = None, n: int = 96) -> dict:
    detectors = {name: get_detector(name) for name in DETECTORS}
    size = SIZE
    if model_dir:
        from forensix.models import ForensixModel

        detectors["model"] = ForensixModel.from_pretrained(model_dir)
        size = detectors["model"].config.image_size
    data = SyntheticImageDataset(split="test", size=size, length=n, seed=SEED)
    items = [data[i] for i in range(n)]
    results = {name: evaluate_detector(det, items, progress=False) for name, det in detectors.items()}
    table = compare_detectors(results)
    keys = {"pixel_f1": "pixel_f1", "pixel_f1_best": "pixel_f1_best", "pixel_auroc": "pixel_auroc",
            "image_auroc": "image_auroc", "seconds_per_image": "seconds_per_image"}
    payload = {key: {name: round(float(r.summary[col]), 4) for name, r in results.items()} for key, col in keys.items()}
    best_baseline = max((v for k, v in payload["pixel_f1"].items() if k != "model"), default=float("nan"))
    payload.update({
        "model": model_dir,
        "model_beats_every_baseline_pixel_f1": (payload["pixel_f1"].get("model", float("nan")) > best_baseline) if model_dir else None,
        "held_out": {"split": "test", "n_images": n, "n_forged": results[next(iter(results))].summary["n_forged"],
                     "seed": SEED, "size": size},
        "table": table.reset_index().to_dict(orient="records"),
        "seed": SEED,
    })
    write_result("baselines", payload)
    return payload


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=None)
    parser.add_argument("--n", type=int, default=96)
    args = parser.parse_args()
    print(main(args.model, args.n))
