"""The model at the photos' own pixels vs the same model on a resized copy, and the classical baselines.

Forgeries are made in the held-out photos (``PhotoPool.bundled("test")``: never seen in training) at
their full size, with no downscaling: every op, every region shape, forged areas log-uniform in
0.2-25 % of the photo, and the usual random post-processing (JPEG, noise, resize round trips), plus
authentic photos with post-processing only. Each detector localizes every image at its own size:

- ``native``: the model with ``resolution="native"`` (the localizer reads the photo's pixels);
- ``resize``: the same weights with ``resolution="resize"`` (the localizer reads the model's
  ``image_size`` copy; its mask is upsampled back);
- ``multiscale``: the same weights with ``resolution="multiscale"`` (the mean of the two maps);
- every classical baseline of :data:`forensix.baselines.DETECTORS`.

Scores: pixel F1 at each detector's own threshold, F1 at the best per-image threshold, pixel
AUROC (forged images), image AUROC of the detector's score, with bootstrap intervals, and the paired
intervals of native - resize and multiscale - resize (same images, same resamples). A timing section runs ``analyze`` on
1, 12 and 24 megapixel photos (a camera photo, the 20-megapixel Kleiber when fetched, scaled to size and saved as JPEG, read back) in a fresh
process each, and records wall time and the process's peak RSS.

Run: ``.venv/bin/python -m benchmarks.native --model runs/demo/stage3/model [--n 64]``;
writes ``benchmarks/results/native.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._common import interval_scores, write_result
from forensix.baselines import DETECTORS, get_detector
from forensix.eval.bootstrap import paired_differences
from forensix.data.forge import ALL_OPS, ALL_SHAPES, forge
from forensix.data.sources import PhotoPool
from forensix.eval.detectors import evaluate_detector
from forensix.models import ForensixModel

SEED, AREA = 4321, (0.002, 0.25)
MEGAPIXELS = (1, 12, 24)


def native_samples(n: int, seed: int = SEED, split: str = "test") -> list[dict]:
    """``n`` items ``{"image", "mask", "name", "op"}`` forged at full size in the photos of ``split`` (by default
    the held-out ones; a quarter authentic).

    Example:
        >>> items = native_samples(4)
        >>> [it["op"] for it in items][:1], items[0]["image"].shape == items[0]["photo_shape"]
        (['authentic'], True)
    """
    pool = PhotoPool.bundled(split, seed=seed, p_texture=0.0)
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n):
        name = pool.names[i % len(pool.names)]
        photo = pool.photo(name)
        op = "authentic" if i % 4 == 0 else ALL_OPS[int(rng.integers(len(ALL_OPS)))]
        kwargs = {}
        if op == "splice":
            donor_name = pool.names[(i + 1) % len(pool.names)]
            donor = pool.photo(donor_name)
            kwargs = {"donor": PhotoPool.crop(donor, rng, photo.shape[:2]), "donor_name": donor_name}
        area = float(np.exp(rng.uniform(np.log(AREA[0]), np.log(AREA[1]))))
        shape = ALL_SHAPES[int(rng.integers(len(ALL_SHAPES)))]
        sample = forge(photo, op, seed=int(rng.integers(2**31)), shape=shape, area=area, source=name, **kwargs)
        items.append({"image": sample.image, "mask": sample.mask if op != "authentic" else None,
                      "name": f"{i:03d}-{name}-{op}", "op": op, "photo_shape": photo.shape,
                      "area": float(sample.mask.mean())})
    return items


def _frame(rows: pd.DataFrame, items: list[dict]) -> pd.DataFrame:
    """Evaluation rows in the columns :mod:`forensix.eval.bootstrap` reads (``p_fake`` is the detector's score)."""
    return pd.DataFrame({"op": [it["op"] for it in items], "is_fake": rows.is_fake.astype(int).to_numpy(),
                         "f1": rows.f1.to_numpy(), "auroc": rows.auroc.to_numpy(), "p_fake": rows.score.to_numpy(),
                         "f1_best": rows.f1_best.to_numpy()})


def timing(model_dir: str, megapixels: int, photo: np.ndarray, tmp: Path) -> dict:
    """``analyze`` wall time and peak RSS on a ``megapixels`` JPEG, in a fresh process (model loaded first)."""
    from PIL import Image

    h, w = photo.shape[:2]
    scale = (megapixels * 1e6 / (h * w)) ** 0.5
    path = tmp / f"photo-{megapixels}mp.jpg"
    Image.fromarray(photo).resize((round(w * scale), round(h * scale)), Image.BICUBIC).save(path, quality=92)
    code = (
        "import json, sys, time\n"
        "from forensix.data.io import read_image\nfrom forensix.models import ForensixModel\n"
        "def peak_gb():\n"
        "    # VmHWM: this process's own peak (ru_maxrss starts at the parent's size when the parent is large)\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmHWM:'): return int(line.split()[1]) / 2**20\n"
        "    import resource; return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20\n"
        f"model = ForensixModel.from_pretrained({model_dir!r})\n"
        "rss_loaded = peak_gb()\n"
        f"image = read_image({str(path)!r})\n"
        "start = time.perf_counter(); a = model.analyze(image); seconds = time.perf_counter() - start\n"
        "print(json.dumps({'shape': list(image.shape[:2]), 'seconds': seconds, 'mask_shape': list(a.mask_probs.shape),"
        " 'peak_rss_gb': peak_gb(), 'rss_after_load_gb': rss_loaded}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {"megapixels": megapixels, **json.loads(done.stdout.strip().splitlines()[-1])}


#: The model's read-outs compared (``config.resolution``); the others are the classical baselines.
MODES = ("native", "resize", "multiscale")


def paired(frames: dict[str, pd.DataFrame], a: str, b: str) -> dict:
    """Paired differences ``a - b`` over the same images (pixel F1 at the own threshold and at the best
    per-image one, pixel AUROC, image AUROC) with 95 % bootstrap intervals."""
    diff = paired_differences(frames[a], frames[b], n_boot=2000)
    best = paired_differences(frames[a].assign(f1=frames[a].f1_best), frames[b].assign(f1=frames[b].f1_best), n_boot=2000)
    return {key: {c: float(source.loc[metric, c]) for c in ("difference", "low", "high")}
            for key, source, metric in (("pixel_f1", diff, "pixel_f1"), ("pixel_f1_best", best, "pixel_f1"),
                                        ("pixel_auroc", diff, "pixel_auroc"), ("image_auroc", diff, "image_auroc"))}


def main(model_dir: str, n: int, time_sizes: tuple[int, ...] = MEGAPIXELS) -> dict:
    started = time.perf_counter()
    items = native_samples(n)
    detectors = {mode: ForensixModel.from_pretrained(model_dir) for mode in MODES}
    saved_mode = detectors["native"].config.resolution
    for mode in MODES:
        detectors[mode].config.resolution = mode
    detectors.update({name: get_detector(name) for name in DETECTORS})
    frames = {name: _frame(evaluate_detector(det, items, progress=False).rows, items) for name, det in detectors.items()}
    scores = {name: interval_scores(frame) for name, frame in frames.items()}
    baselines = [k for k in frames if k not in MODES]
    by_op = {name: frame[frame.is_fake == 1].groupby("op").f1.mean().round(4).to_dict() for name, frame in frames.items()}
    areas = [it["area"] for it in items if it["mask"] is not None]
    payload = {
        "model": model_dir, "n_images": n, "n_forged": len(areas), "seed": SEED,
        "forged_area": {"min": min(areas), "median": float(np.median(areas)), "max": max(areas)},
        "photo_shapes": sorted({tuple(it["photo_shape"][:2]) for it in items}),
        "model_resolution": saved_mode, "scores": scores, "pixel_f1_by_operation": by_op,
        "native_minus_resize": paired(frames, "native", "resize"),
        "multiscale_minus_resize": paired(frames, "multiscale", "resize"),
        "multiscale_minus_native": paired(frames, "multiscale", "native"),
        "above_every_baseline": {mode: {
            m: all(scores[mode][m]["value"] > scores[b][m]["value"] for b in baselines) for m in ("pixel_f1", "pixel_auroc")}
            for mode in MODES},
    }
    if time_sizes:
        import tempfile

        from forensix.data.camera_photos import camera_photos_dir
        from forensix.data.io import read_image

        full = camera_photos_dir() / "Kleiber_by_Lukas_Baubkus.jpg"  # 6028 x 3391, when fetched
        photo = read_image(full) if full.is_file() else PhotoPool.bundled("test").photo("china")
        with tempfile.TemporaryDirectory() as tmp:
            payload["timing"] = [timing(model_dir, mp, photo, Path(tmp)) for mp in time_sizes]
    payload["seconds"] = round(time.perf_counter() - started, 1)
    write_result("native", payload)
    return payload


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="runs/demo/stage3/model")
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--time-sizes", type=int, nargs="*", default=list(MEGAPIXELS))
    args = parser.parse_args()
    print(json.dumps(main(args.model, args.n, tuple(args.time_sizes)), indent=1)[:3000])
