"""Regenerate every PNG in ``figures/`` from a fixed seed (``make figures``).

Without ``--model`` it uses the untrained ``tiny`` model (fast; its maps and masks are random and
the titles say so). With ``--model DIR`` (a ``save_pretrained`` directory) the mask overlay,
attention figures and the ROC/PR curves come from that model. Training curves are drawn from
every stage's ``history.json`` found under ``--runs`` (default ``runs/demo``).

Example:
    python -m forensix.viz.make_figures --out figures [--model runs/demo/stage3] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from forensix.errors import ForensixError

_HISTORY_KEYS = ("history", "histories", "stages")


def load_histories(path: Path) -> Any:
    """``{stage: [records]}`` from a history JSON: that dict, a list of records, or a dict holding one."""
    data = json.loads(path.read_text())
    if isinstance(data, dict):
        for key in _HISTORY_KEYS:
            if key in data:
                data = data[key]
                break
    if isinstance(data, dict) and all(isinstance(v, dict) and "history" in v for v in data.values()):
        data = {k: v["history"] for k, v in data.items()}
    if not data:
        raise ForensixError(f"{path}: no training records; expected {{stage: [{{'step': .., 'loss': ..}}]}} or a list of records")
    return data


def find_histories(runs: Path) -> dict[str, list]:
    """Every stage's records under ``runs`` (``stageN/history.json`` as written by ``train_stages``), by folder name."""
    if not runs.exists():
        return {}
    return {path.parent.name: load_histories(path) for path in sorted(runs.rglob("history*.json"))}


def main(argv: list[str] | None = None) -> list[Path]:
    """Write the figures; returns their paths."""
    parser = argparse.ArgumentParser(prog="python -m forensix.viz.make_figures", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="figures", help="output folder (default: figures)")
    parser.add_argument("--model", default=None, help="a trained model directory (default: untrained tiny model)")
    parser.add_argument("--runs", default="runs/demo", help="where to look for history*.json (default: runs/demo)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-eval", type=int, default=24, help="validation images for ROC/PR (with --model)")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import matplotlib

    matplotlib.use("Agg")
    import torch

    from forensix.data import ForgeryGenerator
    from forensix.explain.rollout import attention_rollout, relevance_to_patches, upsample_to_pixels, vision_attentions
    from forensix.models import ForensixModel
    from forensix.viz import figures as F

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    written: list[Path] = []

    def save(fig: Any, name: str) -> None:
        written.append(F.to_png(fig, out / name))
        import matplotlib.pyplot as plt

        plt.close("all")

    save(F.forgery_gallery(F.op_samples(size=128, seed=args.seed), seed=args.seed), "forgery_gallery.png")

    if args.model:
        model, tag = ForensixModel.from_pretrained(args.model), f"model {Path(args.model).name}"
    else:
        model, tag = ForensixModel.from_config("tiny"), "untrained tiny model"
    size = int(model.config.image_size)
    gen = ForgeryGenerator(size=max(size, 128), p_authentic=0.0, split="val", seed=args.seed)
    sample = gen.sample(0, op="splice")
    sample.image = np.array(sample.image)  # writable copy for torch.from_numpy
    loc = model.localize(sample.image)
    save(F.mask_overlay(sample.image, loc.heatmap, sample.mask, title=f"Ground truth vs prediction\n({tag}, p_fake {loc.score:.2f})"),
         "mask_overlay.png")

    pixels, _ = model.preprocess(sample.image)
    vision = model.vision
    atts = vision_attentions(vision.model, (pixels - vision.mean) / vision.std)
    grid = (pixels.shape[-2] // vision.patch_size, pixels.shape[-1] // vision.patch_size)
    n_prefix = atts[0].shape[-1] - grid[0] * grid[1]
    save(F.attention_grid([a[0] for a in atts[:4]], grid=grid, n_prefix_tokens=n_prefix,
                          title=f"CLS attention to patches per layer and head\n({tag})", backend="matplotlib"),
         "attention_grid.png")
    relevance = attention_rollout(atts, n_prefix_tokens=n_prefix)
    heat = upsample_to_pixels(relevance_to_patches(relevance, grid=grid, n_prefix_tokens=n_prefix), sample.image.shape[:2])[0]
    save(F.heatmap_overlay(sample.image, heat, sample.mask, title=f"Attention rollout, mean fusion\n({tag})",
                           colorbar_title="rollout relevance", backend="matplotlib"), "rollout.png")

    histories = find_histories(Path(args.runs))
    if histories:
        save(F.training_curves(histories, title=f"Training losses per stage ({args.runs})", backend="matplotlib"),
             "training_curves.png")

    if args.model:
        val = ForgeryGenerator(size=size, p_authentic=0.5, split="val", seed=args.seed + 1)
        samples = [val.sample(i) for i in range(args.n_eval)]
        labels = np.array([int(s.record.is_fake) for s in samples])
        if len(set(labels.tolist())) == 2:
            scores = model.detect([s.image for s in samples])
            save(F.roc_curves({tag: scores}, labels, title=f"ROC, {len(samples)} synthetic val images", backend="matplotlib"),
                 "roc_curve.png")
            save(F.pr_curves({tag: scores}, labels, title=f"Precision-recall, {len(samples)} synthetic val images",
                             backend="matplotlib"), "pr_curve.png")
    return written


if __name__ == "__main__":
    for path in main():
        print(path)
