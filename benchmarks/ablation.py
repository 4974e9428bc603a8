"""What each piece of the localizer's recipe does: paired effects over training seeds and held-out images.

Every variant trains a fresh small-preset localizer (stage 2, mask loss only, as in
``benchmarks/localizer.py``) for the same steps and seeds, sets its mask threshold on the validation
split, and scores the same 96 held-out images (seed 1234): per forged image pixel F1 at that
threshold, F1 at the best per-image threshold (the gap between the two is calibration), IoU and pixel
AUROC; per image the localizer's own score (the mean of its top-1 % mask probabilities) for image
AUROC.

The variants are the default recipe, the recipe before it (``previous``: plain BCE + dice, every
component off), the default recipe with one component switched off at a time (``no_<component>``) or,
for a component the default leaves off, switched on (``with_<component>``), and the default recipe
trained on the camera photos too (``with_camera_photos``, :mod:`forensix.data.camera_photos`; it needs
``make photos`` once), and the default recipe after 400 steps of trace pre-training on processing
histories (``with_trace_pretraining``, :mod:`forensix.train.pretrain`; its training time includes them). Each variant's rows of
all seeds are paired with the default recipe's rows of the same image and seed, and
:func:`forensix.bootstrap.paired_differences` resamples those pairs; the per-seed differences are
listed too, so that an effect one seed shows and the other does not is visible.

Each run's rows are cached under ``runs/ablation/`` (per variant, its recipe, seed and steps), so the benchmark
can be stopped, resumed and extended (more seeds, more variants) without retraining what is done.

Run: ``.venv/bin/python -m benchmarks.ablation [--steps 1000] [--seeds 0 1] [--variants ...]``
(about 4 min per run on 2 cores); writes ``benchmarks/results/ablation.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._common import write_result
from forensix.bootstrap import paired_differences
from forensix.calibration import calibrate_mask_threshold
from forensix.config import get_config
from forensix.data.camera_photos import camera_photos
from forensix.errors import ForensixError
from forensix.metrics import best_threshold_f1, pixel_metrics
from forensix.models import ForensixModel
from forensix.pipeline import stage_datasets
from forensix.quality import held_out_samples, mask_top
from forensix.train import TrainConfig, get_stage, train_stage
from forensix.train.pretrain import pretrain_trace

HELD_OUT_SEED, N_HELD_OUT = 1234, 96
CACHE = Path("runs/ablation")

#: Each component of the recipe: its config section, and the value that switches it off and on.
COMPONENTS: dict[str, tuple[str, dict, dict]] = {
    "balanced_bce": ("localizer", {"pixel_loss": "bce"}, {"pixel_loss": "balanced"}),
    "edge_band": ("localizer", {"edge_weight": 0.0}, {"edge_weight": 4.0}),
    "deep_supervision": ("localizer", {"deep_supervision": 0.0}, {"deep_supervision": 0.5}),
    "image_loss": ("localizer", {"image_loss": 0.0}, {"image_loss": 0.5}),
    "contrastive": ("localizer", {"contrastive": 0.0}, {"contrastive": 0.2}),
    "self_correlation": ("localizer", {"correlation_topk": 0}, {"correlation_topk": 8}),
    "dct": ("trace", {"dct": False}, {"dct": True}),
}
#: The default recipe trained on the bundled photos plus the camera photos (forensix.data.camera_photos).
CAMERA_VARIANT = "with_camera_photos"
#: The default recipe after PRETRAIN_STEPS steps of trace pre-training on processing histories (forensix.train.pretrain).
PRETRAIN_VARIANT, PRETRAIN_STEPS = "with_trace_pretraining", 400


def _is_on(section: str, on: dict) -> bool:
    default = getattr(get_config("small"), section)
    return all(getattr(default, k) == v for k, v in on.items())


def variants() -> dict[str, dict]:
    """``get_config`` overrides per variant: ``default``, ``previous`` (every component off),
    ``no_<component>`` for each component the default recipe has, ``with_<component>`` for the others,
    and ``with_camera_photos``.

    Example:
        >>> v = variants(); v["default"], v["no_contrastive"]["localizer"]["contrastive"], v["with_dct"]
        ({}, 0.0, {'trace': {'dct': True}})
    """
    out: dict[str, dict] = {"default": {}, "previous": {}, CAMERA_VARIANT: {}, PRETRAIN_VARIANT: {}}
    for name, (section, off, on) in COMPONENTS.items():
        out["previous"].setdefault(section, {}).update(off)
        out[f"no_{name}" if _is_on(section, on) else f"with_{name}"] = {section: off if _is_on(section, on) else on}
    return out


def _recipe_key(cfg) -> str:
    """A short hash of what a variant trains with (the trace section only when it differs from the preset)."""
    recipe = {"localizer": cfg.localizer.__dict__}
    if cfg.trace != get_config("small").trace:
        recipe["trace"] = cfg.trace.__dict__
    return hashlib.sha256(json.dumps(recipe["localizer"] if len(recipe) == 1 else recipe, sort_keys=True,
                                     default=list).encode()).hexdigest()[:8]


def run(variant: str, seed: int, steps: int, samples: list) -> pd.DataFrame:
    """Per-image rows of one trained variant (cached in ``runs/ablation``)."""
    overrides = variants()[variant]
    cfg = get_config("small", seed=seed, **overrides)
    path = CACHE / f"{variant}-{_recipe_key(cfg)}-seed{seed}-steps{steps}.json"
    if path.is_file():
        return pd.DataFrame(json.loads(path.read_text())["rows"])
    photos = None
    if variant == CAMERA_VARIANT and (photos := camera_photos()) is None:
        raise ForensixError(f"variant {variant}: the camera photos were never fetched; run `make photos` first")
    model = ForensixModel.from_config(cfg)
    train, val = stage_datasets("small", 2, model.config.image_size, seed, photos)
    spec = get_stage(2, losses=("mask",))
    config = TrainConfig(steps=steps, seed=seed).resolved(spec, "small")
    started = time.perf_counter()
    if variant == PRETRAIN_VARIANT:
        pretrain_trace(model, PRETRAIN_STEPS, seed=seed)
    train_stage(model, spec, train, config, progress=False)
    train_s = time.perf_counter() - started
    model.eval()
    val_samples = [val.sample(i) for i in range(len(val))]
    threshold = calibrate_mask_threshold(model, val_samples).threshold
    probs = []
    for start in range(0, len(samples), 16):
        probs += model.mask_probabilities([s.image for s in samples[start : start + 16]])
    forged_val = [s for s in val_samples if s.record.is_fake]
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path.with_suffix(".npz"), test=np.stack(probs).astype(np.float16),  # for read-out studies
                        val=np.stack(model.mask_probabilities([s.image for s in forged_val])).astype(np.float16),
                        val_masks=np.stack([s.mask for s in forged_val]))
    rows = []
    for index, (p, s) in enumerate(zip(probs, samples)):
        row = {"index": index, "seed": seed, "op": s.record.op, "is_fake": int(s.record.is_fake), "p_fake": mask_top(p)}
        if s.record.is_fake:
            px = pixel_metrics(p, s.mask, threshold=threshold)
            row.update(f1=px["f1"], iou=px["iou"], auroc=px["auroc"], f1_best=best_threshold_f1(p, s.mask)[0])
        rows.append(row)
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"variant": variant, "overrides": overrides, "seed": seed, "steps": steps,
                                "threshold": threshold, "train_s": round(train_s, 1), "rows": rows}))
    return pd.DataFrame(rows)


def compare(rows: pd.DataFrame, default: pd.DataFrame, n_boot: int = 2000) -> dict:
    """Paired differences ``rows - default`` (pixel F1, best-threshold F1, pixel AUROC, image AUROC) with 95 % intervals."""
    table = paired_differences(rows, default, n_boot=n_boot)
    best = paired_differences(rows.assign(f1=rows.f1_best), default.assign(f1=default.f1_best), n_boot=n_boot)
    out = {}
    for key, source, metric in (("pixel_f1", table, "pixel_f1"), ("pixel_f1_best", best, "pixel_f1"),
                                ("pixel_auroc", table, "pixel_auroc"), ("image_auroc", table, "image_auroc")):
        r = source.loc[metric]
        out[key] = {"value": r.value, "default": r.baseline, "difference": r.difference, "low": r.low, "high": r.high}
    return out


def summary(rows: pd.DataFrame) -> dict:
    """Mean scores of one variant over its seeds (image AUROC per seed, then averaged)."""
    from forensix.metrics import image_metrics

    forged = rows[rows.is_fake == 1]
    aurocs = [image_metrics(g.p_fake.tolist(), g.is_fake.tolist())["auroc"] for _, g in rows.groupby("seed")]
    return {"pixel_f1": forged.f1.mean(), "pixel_f1_best": forged.f1_best.mean(), "pixel_iou": forged.iou.mean(),
            "pixel_auroc": forged.auroc.mean(), "image_auroc": float(np.mean(aurocs)),
            "pixel_f1_by_op": forged.groupby("op").f1.mean().round(4).to_dict()}


def main(steps: int, seeds: list[int], names: list[str]) -> dict:
    samples = held_out_samples(N_HELD_OUT, get_config("small").image_size, HELD_OUT_SEED)
    started = time.perf_counter()
    names = ["default"] + [n for n in names if n != "default"]
    results = {n: pd.concat([run(n, s, steps, samples) for s in seeds], ignore_index=True) for n in names}
    default = results["default"]
    default_cfg = get_config("small")
    payload: dict = {"steps": steps, "seeds": seeds, "variants": {},
                     "recipe": {"localizer": default_cfg.localizer.__dict__, "trace": default_cfg.trace.__dict__}}
    for name, rows in results.items():
        entry = {"overrides": variants()[name], **summary(rows)}
        if name != "default":
            entry["vs_default"] = compare(rows, default)
            entry["vs_default_by_seed"] = {
                int(s): compare(rows[rows.seed == s].reset_index(drop=True), default[default.seed == s].reset_index(drop=True),
                                n_boot=500)["pixel_f1"]["difference"] for s in seeds}
        payload["variants"][name] = entry
    payload.update({"held_out": {"split": "test", "n_images": N_HELD_OUT, "seed": HELD_OUT_SEED},
                    "seconds": round(time.perf_counter() - started, 1)})
    write_result("ablation", payload)
    return payload


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--variants", nargs="+", default=sorted(variants()), choices=sorted(variants()))
    args = parser.parse_args()
    result = main(args.steps, args.seeds, args.variants)
    print(json.dumps({n: {k: round(v["pixel_f1"], 4) for k, v in [("f1", v)]} for n, v in result["variants"].items()}))
