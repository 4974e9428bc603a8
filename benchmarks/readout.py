"""Per-image read-outs of the mask: can a better cut of the same probability maps close the gap to the
best per-image threshold?

The localizer's F1 at its own read-out (a pixel is marked if ``p >= max(t, r * the image's max)``) sits far
below its F1 at the best threshold of each image. This script keeps the maps fixed and changes only the
read-out. Each family's parameters are chosen on forgeries of the validation photos (mean pixel F1), then
scored on the held-out forgeries of ``quality.py`` / ``release.py`` (seed 1234), paired against the
model's own read-out, with 95 % bootstrap intervals:

- ``relative``: the library's read-out, its ``(t, r)`` re-chosen on this validation grid;
- ``largest_component`` / ``largest_two``: the relative mask, keeping only its one (two) connected
  components of most probability mass (most forgeries are one region);
- ``hysteresis``: components of ``p >= low`` that hold a pixel of ``p >= max(0.1, r * max)``;
- ``otsu``: each map cut at its own Otsu threshold, never below ``t``;
- ``oracle``: the best threshold of each held-out image (an upper bound no read-out can pass).

Run: ``.venv/bin/python -m benchmarks.readout [--model forensix-small] [--n 192]``; writes
``benchmarks/results/readout.json``.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable

import numpy as np
from scipy import ndimage

from benchmarks._common import mask_probabilities, write_result
from forensix.eval.calibration import image_threshold
from forensix.eval.model_quality import held_out_samples
from forensix.models import ForensixModel

SEED, VAL_SEED = 1234, 7
THRESHOLDS = (0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)
RELATIVES = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
ReadOut = Callable[[np.ndarray], np.ndarray]


def f1(pred: np.ndarray, truth: np.ndarray) -> float:
    """Pixel F1 of two boolean masks (1.0 when both are empty)."""
    tp, fp, fn = (pred & truth).sum(), (pred & ~truth).sum(), (~pred & truth).sum()
    return float(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn else 1.0


def relative(t: float, r: float) -> ReadOut:
    return lambda p: p >= image_threshold(p, t, r)


def largest(t: float, r: float, keep: int = 1) -> ReadOut:
    def read(p: np.ndarray) -> np.ndarray:
        marked = relative(t, r)(p)
        labels, n = ndimage.label(marked)
        if n <= keep:
            return marked
        mass = ndimage.sum(p, labels, range(1, n + 1))
        return np.isin(labels, np.argsort(mass)[::-1][:keep] + 1)
    return read


def hysteresis(low: float, r: float) -> ReadOut:
    def read(p: np.ndarray) -> np.ndarray:
        labels, _ = ndimage.label(p >= low)
        seeds = np.unique(labels[p >= max(0.1, r * p.max())])
        return np.isin(labels, seeds[seeds > 0])
    return read


def otsu(t: float) -> ReadOut:
    def read(p: np.ndarray) -> np.ndarray:
        counts, edges = np.histogram(p, 64, (0.0, 1.0))
        centres = (edges[:-1] + edges[1:]) / 2
        w0, m0 = np.cumsum(counts)[:-1], np.cumsum(counts * centres)[:-1]
        w1, m1 = counts.sum() - w0, (counts * centres).sum() - m0
        with np.errstate(divide="ignore", invalid="ignore"):
            between = np.where((w0 > 0) & (w1 > 0), w0 * w1 * (m0 / w0 - m1 / w1) ** 2, -1.0)
        return p >= max(t, float(edges[int(np.argmax(between)) + 1]))
    return read


FAMILIES: dict[str, tuple[Callable[..., ReadOut], list[tuple]]] = {
    "relative": (relative, list(itertools.product(THRESHOLDS, RELATIVES))),
    "largest_component": (largest, list(itertools.product(THRESHOLDS, RELATIVES))),
    "largest_two": (lambda t, r: largest(t, r, 2), list(itertools.product(THRESHOLDS, RELATIVES))),
    "hysteresis": (hysteresis, list(itertools.product((0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2), (0.5, 0.6, 0.7, 0.8, 0.9)))),
    "otsu": (otsu, [(t,) for t in THRESHOLDS]),
}


def forged_maps(model: ForensixModel, n: int, seed: int, split: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    samples = [s for s in held_out_samples(n, model.config.image_size, seed, split) if s.record.is_fake]
    probs = [np.asarray(p, dtype=np.float32).squeeze() for p in mask_probabilities(model, [s.image for s in samples])]
    return probs, [s.mask.astype(bool).squeeze() for s in samples]


def scores(read: ReadOut, probs: list[np.ndarray], masks: list[np.ndarray]) -> np.ndarray:
    return np.array([f1(read(p), m) for p, m in zip(probs, masks)])


def paired(a: np.ndarray, b: np.ndarray, n_boot: int = 2000) -> dict[str, float]:
    diff = a - b
    boots = np.random.default_rng(0).integers(0, len(diff), (n_boot, len(diff)))
    means = diff[boots].mean(axis=1)
    return {"difference": float(diff.mean()), "low": float(np.percentile(means, 2.5)), "high": float(np.percentile(means, 97.5))}


def main(model_name: str, n: int) -> dict:
    model = ForensixModel.from_pretrained(model_name)
    val, test = forged_maps(model, n, VAL_SEED, "val"), forged_maps(model, n, SEED, "test")
    own = scores(relative(model.config.mask_threshold, model.config.mask_relative), *test)
    families = {}
    for name, (make, grid) in FAMILIES.items():
        on_val = {params: float(scores(make(*params), *val).mean()) for params in grid}
        chosen = max(on_val, key=on_val.get)
        held_out = scores(make(*chosen), *test)
        families[name] = {"params": list(chosen), "val_f1": on_val[chosen], "test_f1": float(held_out.mean()),
                          "minus_own": paired(held_out, own)}
    oracle = np.array([max(f1(p >= t, m) for t in np.linspace(0.01, 0.99, 50)) for p, m in zip(*test)])
    payload = {"model": model_name, "n_images": n, "seed": SEED, "val_seed": VAL_SEED,
               "n_forged": {"val": len(val[0]), "test": len(test[0])},
               "own_readout": {"mask_threshold": model.config.mask_threshold, "mask_relative": model.config.mask_relative,
                               "test_f1": float(own.mean())},
               "families": families, "oracle_test_f1": float(oracle.mean())}
    write_result("readout", payload)
    return payload


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="forensix-small")
    parser.add_argument("--n", type=int, default=192)
    args = parser.parse_args()
    result = main(args.model, args.n)
    for name, fam in result["families"].items():
        d = fam["minus_own"]
        print(f"{name:18s} {fam['params']} test F1 {fam['test_f1']:.3f}  minus own {d['difference']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]")
    print(f"own {result['own_readout']['test_f1']:.3f}, oracle {result['oracle_test_f1']:.3f}")
