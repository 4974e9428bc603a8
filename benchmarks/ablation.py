"""What each piece of the localizer's recipe does: paired effects over training seeds and held-out images.

Every variant trains a fresh small-preset localizer (stage 2, mask loss only, as in
``benchmarks/localizer.py``) for the same steps and seeds, sets its mask threshold on the validation
split, and scores the same 96 held-out images (seed 1234): per forged image pixel F1 at that
threshold, F1 at the best per-image threshold (the gap between the two is calibration), IoU and pixel
AUROC; per image the localizer's own score (the mean of its top-1 % mask probabilities) for image
AUROC.

Two rounds. Round 1 (``full_recipe``) starts from every loss and evidence component on and switches
one off at a time (``no_<component>``), beside ``previous`` (plain BCE + dice, every component off).
Round 2 (``default_recipe``) starts from the recipe that kept what round 1 showed (:data:`ROUND2_RECIPE`,
the DCT stream off as it was then): it
adds back what was dropped (``with_<component>``), the components not yet in it (``with_dct``, since
then in the default recipe because round 2 showed it helping on both seeds),
the camera photos (``with_camera_photos``, :mod:`forensix.data.camera_photos`; needs ``make photos``
once) and 400 steps of trace pre-training on processing histories before stage 2
(``with_trace_pretraining``, :mod:`forensix.train.pretrain`; its training time includes them).
Each variant's rows of all seeds are paired with its round's default rows of the same image and
seed, and :func:`forensix.eval.bootstrap.paired_differences` resamples those pairs (pairs of the two
seeds are resampled independently, which makes the interval a little narrow); the per-seed
differences are listed too, so that an effect one seed shows and the other does not is visible.

Each run's rows are cached under ``runs/ablation/`` (per variant, its recipe, seed and steps), so the benchmark
can be stopped, resumed and extended (more seeds, more variants) without retraining what is done.

Round 3 (``current_recipe``) starts from today's default recipe (DCT stream on) and measures capacity
(:data:`CAPACITY`: a wider trace branch, a decoder one level deeper) and the learning rate
(:data:`TRAINING`: doubled, halved).

Round 4 (``data_recipe``) starts from today's default recipe too and changes the training data
(:data:`DATA`: crops at the photos' own pixels, no regions that follow the photo's segments, no
procedural textures) and the decoder's evidence (:data:`EVIDENCE`: trace features only, without the
vision layers' similarity maps).

Run: ``.venv/bin/python -m benchmarks.ablation [--steps 600] [--seeds 0 1] [--full-variants ...] [--variants ...]
[--current-variants ...] [--data-variants ...]`` (about 2-3 min per run on 2 cores); writes
``benchmarks/results/ablation.json``, keeping the rounds not named from its previous version.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._common import RESULTS, mask_probabilities, write_result
from forensix.eval.bootstrap import paired_differences
from forensix.eval.calibration import calibrate_mask_threshold
from forensix.config import get_config
from forensix.data.camera_photos import camera_photos
from forensix.data.datasets import SyntheticForgeryDataset
from forensix.data.sources import PhotoPool
from forensix.errors import ForensixError
from forensix.eval.metrics import best_threshold_f1, pixel_metrics
from forensix.models import ForensixModel
from forensix.train.pipeline import stage_datasets
from forensix.eval.model_quality import held_out_samples, mask_top
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
#: Capacity variants: a wider trace branch (twice the channels at full and half resolution), and a decoder
#: that climbs one level further (to 1/2 instead of 1/4 resolution). They cost more per step; rows record train_s.
CAPACITY: dict[str, dict] = {
    "wide_trace": {"trace": {"channels": (16, 48, 48, 64, 96)}},
    "deeper_decoder": {"localizer": {"decoder_channels": (64, 48, 32, 24)}},
}
#: Optimisation variants: the stage-2 learning rate of the small preset doubled and halved (same steps, same schedule).
_LR = get_stage(2).defaults["small"].lr
TRAINING: dict[str, dict] = {"lr_double": {"lr": 2 * _LR}, "lr_half": {"lr": _LR / 2}}
#: Training-data variants (round 4): how the training crops are cut (PhotoPool ``crops``), which region shapes are
#: forged (without ``object``, regions no longer follow the photo's own segments) and the share of procedural
#: textures. Validation and held-out data stay as they are.
DATA: dict[str, dict] = {
    "native_crops": {"crops": "native"},
    "no_object_shape": {"shapes": ("ellipse", "polygon", "blob")},
    "no_textures": {"p_texture": 0.0},
}
#: Evidence variants (round 4): the decoder without the vision layers' prompt-similarity maps.
EVIDENCE: dict[str, dict] = {"no_semantic_maps": {"localizer": {"semantic_maps": False}}}
#: The default recipe trained on the bundled photos plus the camera photos (forensix.data.camera_photos).
CAMERA_VARIANT = "with_camera_photos"
#: The default recipe after PRETRAIN_STEPS steps of trace pre-training on processing histories (forensix.train.pretrain).
PRETRAIN_VARIANT, PRETRAIN_STEPS = "with_trace_pretraining", 400


#: Round 1's base: every loss and evidence component of the first round on (the DCT stream was not yet built in).
FULL_RECIPE = {"localizer": {"pixel_loss": "balanced"}, "trace": {"dct": False}}
#: Round 2's base: what round 1 kept, before round 2 took the DCT stream into the default recipe.
ROUND2_RECIPE = {"trace": {"dct": False}}
#: The trace branch the cache names leave out (every run before the DCT stream joined the preset had it).
REFERENCE_TRACE = {**get_config("small").trace.__dict__, "dct": False}


def _merge(base: dict, change: dict) -> dict:
    out = {k: dict(v) for k, v in base.items()}
    for section, values in change.items():
        out.setdefault(section, {}).update(values)
    return out


def variants(base: dict | None = None) -> dict[str, dict]:
    """``get_config`` overrides per variant, relative to ``base`` (default: the preset's default recipe):
    ``default`` (the base itself), ``previous`` (every component off), ``no_<component>`` for each
    component the base has, ``with_<component>`` for the others, ``with_camera_photos`` and
    ``with_trace_pretraining``, the :data:`CAPACITY` variants and the :data:`TRAINING` variants.

    Example:
        >>> v = variants(); v["default"], v["no_contrastive"]["localizer"]["contrastive"], v["no_dct"]
        ({}, 0.0, {'trace': {'dct': False}})
        >>> variants(ROUND2_RECIPE)["with_dct"]
        {'trace': {'dct': True}}
        >>> variants(FULL_RECIPE)["no_balanced_bce"]["localizer"]["pixel_loss"]
        'bce'
    """
    base = base or {}
    cfg = get_config("small", **base)
    out: dict[str, dict] = {"default": base, "previous": {}, CAMERA_VARIANT: base, PRETRAIN_VARIANT: base}
    for name, (section, off, on) in COMPONENTS.items():
        out["previous"].setdefault(section, {}).update(off)
        has = all(getattr(getattr(cfg, section), k) == v for k, v in on.items())
        out[f"no_{name}" if has else f"with_{name}"] = _merge(base, {section: off if has else on})
    out.update({name: _merge(base, change) for name, change in {**CAPACITY, **EVIDENCE}.items()})
    out.update({name: base for name in (*TRAINING, *DATA)})  # the base model, trained otherwise or on other data
    return out


#: Localizer settings added after runs were cached: left out of the key at these values, so older runs stay valid.
LATER_SETTINGS = {"semantic_maps": True}


def _recipe_key(cfg) -> str:
    """A short hash of what a variant trains with (the trace section only when it differs from :data:`REFERENCE_TRACE`;
    with the DCT stream on, its zero initialisation, which runs before it was added did not have)."""
    localizer = {k: v for k, v in cfg.localizer.__dict__.items() if not (k in LATER_SETTINGS and LATER_SETTINGS[k] == v)}
    recipe = {"localizer": localizer}
    if cfg.trace.__dict__ != REFERENCE_TRACE:
        recipe["trace"] = {**cfg.trace.__dict__, **({"dct_init": "zero"} if cfg.trace.dct else {})}
    return hashlib.sha256(json.dumps(recipe["localizer"] if len(recipe) == 1 else recipe, sort_keys=True,
                                     default=list).encode()).hexdigest()[:8]


def _cache_path(variant: str, key: str, seed: int, steps: int) -> Path:
    """The cached run of this training: under the variant's own name, or, for a variant that trains on the
    bundled photos without pre-training and with the default optimisation, any other such variant's run of the
    same recipe, seed and steps
    (round 3's ``default`` is round 2's ``with_dct``)."""
    own = CACHE / f"{variant}-{key}-seed{seed}-steps{steps}.json"
    special = (CAMERA_VARIANT, PRETRAIN_VARIANT, *TRAINING, *DATA)
    if own.is_file() or variant in special:
        return own
    same = sorted(p for p in CACHE.glob(f"*-{key}-seed{seed}-steps{steps}.json") if not p.name.startswith(special))
    return same[0] if same else own


def run(variant: str, overrides: dict, seed: int, steps: int, samples: list) -> pd.DataFrame:
    """Per-image rows of one trained variant (cached in ``runs/ablation``)."""
    cfg = get_config("small", seed=seed, **overrides)
    path = _cache_path(variant, _recipe_key(cfg), seed, steps)  # when absent: this variant's own name
    if path.is_file():
        return pd.DataFrame(json.loads(path.read_text())["rows"])
    photos = None
    if variant == CAMERA_VARIANT and (photos := camera_photos()) is None:
        raise ForensixError(f"variant {variant}: the camera photos were never fetched; run `make photos` first")
    model = ForensixModel.from_config(cfg)
    train, val = stage_datasets("small", 2, model.config.image_size, seed, photos)
    if variant in DATA:
        train = _data_variant(train, DATA[variant])
    spec = get_stage(2, losses=("mask",))
    config = TrainConfig(steps=steps, seed=seed, **TRAINING.get(variant, {})).resolved(spec, "small")
    started = time.perf_counter()
    if variant == PRETRAIN_VARIANT:
        pretrain_trace(model, PRETRAIN_STEPS, seed=seed)
    train_stage(model, spec, train, config, progress=False)
    train_s = time.perf_counter() - started
    model.eval()
    val_samples = [val.sample(i) for i in range(len(val))]
    threshold = calibrate_mask_threshold(model, val_samples, relative_grid=(0.0,)).threshold  # the global threshold, as in every cached run
    probs = mask_probabilities(model, [s.image for s in samples])
    forged_val = [s for s in val_samples if s.record.is_fake]
    CACHE.mkdir(parents=True, exist_ok=True)
    model.config.mask_threshold, model.config.mask_relative = threshold, 0.0
    model.save_pretrained(path.with_suffix(""))  # for scoring at the photos' own pixels (native_round)
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


def _data_variant(train: SyntheticForgeryDataset, change: dict) -> SyntheticForgeryDataset:
    """``train`` (a stage's training data) generated with :data:`DATA` ``change``: pool crops, shapes or texture share."""
    pool = train.generator.photos
    pool = PhotoPool({n: pool.photo(n) for n in pool.names}, p_texture=change.get("p_texture", pool.p_texture),
                     texture_seed=pool.texture_seed, crops=change.get("crops", pool.crops))
    return SyntheticForgeryDataset(stage=train.stage, split=train.split, size=train.size, length=train.length,
                                   seed=train.seed, photos=pool, shapes=change.get("shapes", train.generator.shapes))


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
    from forensix.eval.metrics import image_metrics

    forged = rows[rows.is_fake == 1]
    aurocs = [image_metrics(g.p_fake.tolist(), g.is_fake.tolist())["auroc"] for _, g in rows.groupby("seed")]
    return {"pixel_f1": forged.f1.mean(), "pixel_f1_best": forged.f1_best.mean(), "pixel_iou": forged.iou.mean() if "iou" in forged else None,
            "pixel_auroc": forged.auroc.mean(), "image_auroc": float(np.mean(aurocs)),
            "pixel_f1_by_op": forged.groupby("op").f1.mean().round(4).to_dict()}


def markdown_table(payload: dict) -> str:
    """The ablation as a Markdown table (what ``benchmarks/README.md`` shows): each variant's means over the
    seeds, and its paired difference from the default recipe with the 95 % interval.

    Example:
        >>> row = {"pixel_f1": 0.3, "pixel_f1_best": 0.4, "pixel_auroc": 0.7, "image_auroc": 0.6, "overrides": {},
        ...        "vs_default": {"pixel_f1": {"difference": 0.01, "low": -0.02, "high": 0.04},
        ...                       "image_auroc": {"difference": -0.1, "low": -0.2, "high": 0.0}},
        ...        "vs_default_by_seed": {0: 0.02, 1: 0.0}}
        >>> print(markdown_table({"variants": {"no_x": row}}).splitlines()[-1])
        | no_x | 0.300 | 0.400 | 0.700 | 0.600 | +0.010 [-0.020, +0.040] (+0.020, +0.000) | -0.100 [-0.200, +0.000] |
    """
    lines = ["| variant | pixel F1 | F1, best per-image threshold | pixel AUROC | image AUROC (localizer) "
             "| Δ pixel F1 vs default [95 %] (per seed) | Δ image AUROC [95 %] |", "|---|---|---|---|---|---|---|"]
    for name, v in payload["variants"].items():
        cells = [name] + [f"{v[k]:.3f}" for k in ("pixel_f1", "pixel_f1_best", "pixel_auroc", "image_auroc")]
        if "vs_default" in v:
            d, a = v["vs_default"]["pixel_f1"], v["vs_default"]["image_auroc"]
            seeds = ", ".join(f"{x:+.3f}" for x in v["vs_default_by_seed"].values())
            cells += [f"{d['difference']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}] ({seeds})",
                      f"{a['difference']:+.3f} [{a['low']:+.3f}, {a['high']:+.3f}]"]
        else:
            cells += ["—", "—"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ablation_round(steps: int, seeds: list[int], names: list[str], samples: list, base: dict | None = None) -> dict:
    """Each named variant against ``base`` (its ``default``): means over the seeds and paired differences."""
    table = variants(base)
    names = ["default"] + [n for n in names if n != "default"]
    results = {n: pd.concat([run(n, table[n], s, steps, samples) for s in seeds], ignore_index=True) for n in names}
    default = results["default"]
    base_cfg = get_config("small", **(base or {}))
    out: dict = {"base": base or {}, "variants": {},
                 "recipe": {"localizer": base_cfg.localizer.__dict__, "trace": base_cfg.trace.__dict__}}
    for name, rows in results.items():
        entry = {"overrides": table[name], **summary(rows)}
        if name != "default":
            entry["vs_default"] = compare(rows, default)
            entry["vs_default_by_seed"] = {
                int(s): compare(rows[rows.seed == s].reset_index(drop=True), default[default.seed == s].reset_index(drop=True),
                                n_boot=500)["pixel_f1"]["difference"] for s in seeds}
        out["variants"][name] = entry
    return out


N_NATIVE = 48  # forgeries of benchmarks/native.py, made in the held-out photos at their full size


def native_round(names: list[str], seeds: list[int], base: dict | None = None, steps: int = 600) -> dict:
    """The saved runs of ``names`` (and ``default``) scored at the photos' own pixels (``benchmarks/native.py``'s
    forgeries): each with ``resolution="native"`` and ``"resize"``, its native - resize difference, and its
    native scores against the default's, paired over (image, seed)."""
    from benchmarks.native import _frame, native_samples
    from forensix.eval.detectors import evaluate_detector

    items = native_samples(N_NATIVE)
    table = variants(base)
    names = ["default"] + [n for n in names if n != "default"]
    frames: dict[str, dict[str, pd.DataFrame]] = {}
    for name in names:
        per_mode: dict[str, list] = {"native": [], "resize": []}
        for seed in seeds:
            cfg = get_config("small", seed=seed, **table[name])
            where = _cache_path(name, _recipe_key(cfg), seed, steps).with_suffix("")
            if not (where / "config.json").is_file():
                raise ForensixError(f"{where}: no saved model of {name} (seed {seed}); run its ablation round first")
            for mode in per_mode:
                model = ForensixModel.from_pretrained(where)
                model.config.resolution = mode
                rows = _frame(evaluate_detector(model, items, progress=False).rows, items)
                per_mode[mode].append(rows.assign(seed=seed, index=range(len(rows))))
        frames[name] = {mode: pd.concat(parts, ignore_index=True) for mode, parts in per_mode.items()}
    out: dict = {"n_images": N_NATIVE, "variants": {}}
    for name, modes in frames.items():
        entry = {mode: summary(frame) for mode, frame in modes.items()}
        entry["native_minus_resize"] = compare(modes["native"], modes["resize"])
        if name != "default":
            entry["native_vs_default"] = compare(modes["native"], frames["default"]["native"])
        out["variants"][name] = entry
    return out


#: The rounds: result key, base recipe (None: today's default) and the command-line option naming its variants.
ROUNDS = {"full_recipe": (FULL_RECIPE, "full_variants"), "default_recipe": (ROUND2_RECIPE, "variants"),
          "current_recipe": (None, "current_variants"), "data_recipe": (None, "data_variants")}


def main(steps: int, seeds: list[int], rounds: dict[str, list[str]], native: list[str] | None = None) -> dict:
    """Each round of ``rounds`` (result key -> variant names, see :data:`ROUNDS`) against its base recipe; with
    ``native``, those variants of round 4 at the photos' own pixels too (:func:`native_round`).

    Rounds given no variants keep their entry of the existing ``ablation.json`` (with the date and command
    it was measured by), so one round can be run again or added without retraining the others; round 1
    switches components off the full recipe, round 2 is the recipe round 1 kept, rounds 3 and 4 start
    from today's default recipe (capacity and learning rate; training data and evidence).
    """
    samples = held_out_samples(N_HELD_OUT, get_config("small").image_size, HELD_OUT_SEED)
    started = time.perf_counter()
    previous = RESULTS / "ablation.json"
    payload: dict = json.loads(previous.read_text()) if previous.is_file() else {}
    for key in ("command", "machine", "date", "seconds"):
        payload.pop(key, None)
    if payload.get("steps", steps) != steps or payload.get("seeds", seeds) != seeds:
        payload = {}  # kept rounds must share the steps and seeds
    payload.update(steps=steps, seeds=seeds)
    for key, names in rounds.items():
        if names:
            payload[key] = ablation_round(steps, seeds, names, samples, ROUNDS[key][0])
            payload[key]["date"] = time.strftime("%Y-%m-%d")
    if native:
        payload["data_recipe"]["native"] = native_round(native, seeds, steps=steps)
    payload.update({"held_out": {"split": "test", "n_images": N_HELD_OUT, "seed": HELD_OUT_SEED},
                    "seconds": round(time.perf_counter() - started, 1)})
    write_result("ablation", payload)
    return payload


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--variants", nargs="*", default=[], choices=sorted(variants(ROUND2_RECIPE)),
                        help="round 2: variants of the recipe round 1 kept")
    parser.add_argument("--full-variants", nargs="*", default=[], choices=sorted(variants(FULL_RECIPE)),
                        help="round 1: variants of the full recipe")
    parser.add_argument("--current-variants", nargs="*", default=[], choices=sorted(variants()),
                        help="round 3: capacity and learning rate, e.g. " + " ".join([*CAPACITY, *TRAINING]))
    parser.add_argument("--data-variants", nargs="*", default=[], choices=sorted(variants()),
                        help="round 4: training data and evidence, e.g. " + " ".join([*DATA, *EVIDENCE]))
    parser.add_argument("--native-variants", nargs="*", default=[], choices=sorted(variants()),
                        help="round 4's saved runs (and its default) scored at the photos' own pixels, native vs resize")
    args = parser.parse_args()
    result = main(args.steps, args.seeds, {key: getattr(args, option) for key, (_, option) in ROUNDS.items()},
                  args.native_variants)
    for key in ROUNDS:
        if key in result:
            print(f"{key}\n{markdown_table(result[key])}\n")
