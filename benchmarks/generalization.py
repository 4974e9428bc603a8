"""Does the localizer underfit, or fail to carry over to new photos? The same model on fresh forgeries of the
photos it trained on and of the held-out photos.

For each model, 96 synthetic images (seed 1234, the held-out seed of ``quality.py``; 75 % forged) are made
from the training photos (``split="train"``: the bundled training photos and textures; fresh forgeries,
not the training images themselves) and from the held-out photos (``split="test"``: what every other
benchmark scores). Per forged image: pixel F1 at the model's own read-out (its mask threshold and relative
read-out), F1 at the best per-image threshold, and pixel AUROC, with 95 % bootstrap intervals, and the
mean F1 per operation. A low score
on the training photos means the localizer underfits; a gap between the two means it does not carry over.

Run: ``.venv/bin/python -m benchmarks.generalization [--models forensix-small runs/demo/stage3/model]``;
writes ``benchmarks/results/generalization.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from benchmarks._common import interval_scores, write_result
from forensix.eval.calibration import image_threshold
from forensix.eval.metrics import best_threshold_f1, pixel_metrics
from forensix.eval.model_quality import held_out_samples
from forensix.models import ForensixModel

SEED, N_IMAGES = 1234, 96


def score(model: ForensixModel, split: str, n: int = N_IMAGES) -> dict:
    """Pixel F1 (own read-out), best-threshold F1 and pixel AUROC on ``split``'s photos, with intervals."""
    samples = [s for s in held_out_samples(n, model.config.image_size, SEED, split) if s.record.is_fake]
    probs = model.mask_probabilities([s.image for s in samples])
    rows = []
    for p, s in zip(probs, samples):
        cut = image_threshold(p, model.config.mask_threshold, model.config.mask_relative)
        px = pixel_metrics(p, s.mask, threshold=cut)
        rows.append({"is_fake": 1, "op": s.record.op, "f1": px["f1"], "auroc": px["auroc"],
                     "f1_best": best_threshold_f1(p, s.mask)[0]})
    frame = pd.DataFrame(rows)
    by_op = {op: {"n": len(g), "pixel_f1": float(g.f1.mean()), "pixel_f1_best": float(g.f1_best.mean())}
             for op, g in frame.groupby("op")}
    return {"n_forged": len(samples), "photos": sorted({s.record.source for s in samples}),
            "pixel_f1_by_operation": by_op, **interval_scores(frame)}


def main(models: list[str]) -> dict:
    results = {}
    for name in models:
        if "/" in name and not Path(name).is_dir():
            continue  # a run folder (not a released model's name) that was never trained here
        model = ForensixModel.from_pretrained(name).eval()
        entry = {split: score(model, split) for split in ("train", "test")}
        entry["train_minus_test_pixel_f1"] = entry["train"]["pixel_f1"]["value"] - entry["test"]["pixel_f1"]["value"]
        results[name] = entry
    payload = {"seed": SEED, "n_images": N_IMAGES, "models": results}
    write_result("generalization", payload)
    return payload


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["forensix-small", "runs/demo/stage3/model"])
    args = parser.parse_args()
    for name, entry in main(args.models)["models"].items():
        print(name, {split: round(entry[split]["pixel_f1"]["value"], 3) for split in ("train", "test")})
