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
- ``feature_clusters``: FOCAL's read-out (Wu et al. 2023): k-means with k = 2 on the decoder features
  the contrastive term shapes (cosine, seeded at the most and the least probable pixel), the forged
  cluster being the smaller one (FOCAL's rule) or the one of higher mean probability, optionally
  intersected with ``p >= t``;
- ``oracle``: the best threshold of each held-out image (an upper bound no read-out can pass).

Run: ``.venv/bin/python -m benchmarks.readout [--model forensix-small] [--n 192]``; writes
``benchmarks/results/readout.json``.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from benchmarks._common import mask_probabilities, write_result
from forensix.eval.calibration import image_threshold
from forensix.eval.model_quality import held_out_samples
from forensix.models import ForensixModel

SEED, VAL_SEED = 1234, 7
THRESHOLDS = (0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)
RELATIVES = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
ReadOut = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (probabilities [H, W], decoder features [C, h, w]) -> mask


def f1(pred: np.ndarray, truth: np.ndarray) -> float:
    """Pixel F1 of two boolean masks (1.0 when both are empty)."""
    tp, fp, fn = (pred & truth).sum(), (pred & ~truth).sum(), (~pred & truth).sum()
    return float(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn else 1.0


def relative(t: float, r: float) -> ReadOut:
    return lambda p, f=None: p >= image_threshold(p, t, r)


def largest(t: float, r: float, keep: int = 1) -> ReadOut:
    def read(p: np.ndarray, f: np.ndarray | None = None) -> np.ndarray:
        marked = relative(t, r)(p)
        labels, n = ndimage.label(marked)
        if n <= keep:
            return marked
        mass = ndimage.sum(p, labels, range(1, n + 1))
        return np.isin(labels, np.argsort(mass)[::-1][:keep] + 1)
    return read


def hysteresis(low: float, r: float) -> ReadOut:
    def read(p: np.ndarray, f: np.ndarray | None = None) -> np.ndarray:
        labels, _ = ndimage.label(p >= low)
        seeds = np.unique(labels[p >= max(0.1, r * p.max())])
        return np.isin(labels, seeds[seeds > 0])
    return read


def otsu(t: float) -> ReadOut:
    def read(p: np.ndarray, f: np.ndarray | None = None) -> np.ndarray:
        counts, edges = np.histogram(p, 64, (0.0, 1.0))
        centres = (edges[:-1] + edges[1:]) / 2
        w0, m0 = np.cumsum(counts)[:-1], np.cumsum(counts * centres)[:-1]
        w1, m1 = counts.sum() - w0, (counts * centres).sum() - m0
        with np.errstate(divide="ignore", invalid="ignore"):
            between = np.where((w0 > 0) & (w1 > 0), w0 * w1 * (m0 / w0 - m1 / w1) ** 2, -1.0)
        return p >= max(t, float(edges[int(np.argmax(between)) + 1]))
    return read


def two_clusters(features: np.ndarray, seeds: tuple[int, int], iters: int = 20) -> np.ndarray:
    """Cosine k-means (k = 2) of ``features`` ``[C, h, w]``, seeded at the two flat positions ``seeds``: labels ``[h, w]``.

    Example:
        >>> f = np.zeros((2, 4, 4), np.float32); f[0, :, :2] = 1; f[1, :, 2:] = 1
        >>> two_clusters(f, (0, 3))[0].tolist()
        [0, 0, 1, 1]
    """
    z = F.normalize(torch.from_numpy(features).flatten(1), dim=0).T  # [N, C]
    centres = z[list(seeds)].clone()
    for _ in range(iters):
        labels = (z @ centres.T).argmax(1)
        for k in range(2):
            if (labels == k).any():
                centres[k] = F.normalize(z[labels == k].mean(0), dim=0)
    return labels.reshape(features.shape[1:]).numpy()


def clusters(rule: str, t: float) -> ReadOut:
    def read(p: np.ndarray, f: np.ndarray) -> np.ndarray:
        small = F.adaptive_avg_pool2d(torch.from_numpy(p)[None, None], f.shape[1:])[0, 0].numpy()
        labels = two_clusters(f, (int(small.argmax()), int(small.argmin())))
        if not 0 < labels.sum() < labels.size:  # one cluster: nothing stands apart
            return np.zeros(p.shape, bool)
        if rule == "smaller":
            forged = int((labels == 1).sum() < (labels == 0).sum())
        else:
            forged = int(small[labels == 1].mean() > small[labels == 0].mean())
        up = F.interpolate(torch.from_numpy((labels == forged).astype(np.float32))[None, None], size=p.shape, mode="nearest")
        return (up[0, 0].numpy() > 0.5) & (p >= t)
    return read


FAMILIES: dict[str, tuple[Callable[..., ReadOut], list[tuple]]] = {
    "relative": (relative, list(itertools.product(THRESHOLDS, RELATIVES))),
    "largest_component": (largest, list(itertools.product(THRESHOLDS, RELATIVES))),
    "largest_two": (lambda t, r: largest(t, r, 2), list(itertools.product(THRESHOLDS, RELATIVES))),
    "hysteresis": (hysteresis, list(itertools.product((0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2), (0.5, 0.6, 0.7, 0.8, 0.9)))),
    "otsu": (otsu, [(t,) for t in THRESHOLDS]),
    "feature_clusters": (clusters, list(itertools.product(("smaller", "probability"), (0.0, *THRESHOLDS)))),
}


@torch.no_grad()
def decoder_features(model: ForensixModel, images: list, batch_size: int = 16) -> list[np.ndarray]:
    """The FL-Expert's decoder features ``[C, h, w]`` per image (images at the model's size)."""
    feats: list[np.ndarray] = []
    for start in range(0, len(images), batch_size):
        pixels, _ = model.preprocess(images[start:start + batch_size])
        feats += list(model.localizer_output(pixels).features.float().cpu().numpy())
    return feats


def forged_maps(model: ForensixModel, n: int, seed: int, split: str) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Probability maps, true masks and decoder features of the forged images among ``n`` of ``split``."""
    samples = [s for s in held_out_samples(n, model.config.image_size, seed, split) if s.record.is_fake]
    images = [s.image for s in samples]
    probs = [np.asarray(p, dtype=np.float32).squeeze() for p in mask_probabilities(model, images)]
    return probs, [s.mask.astype(bool).squeeze() for s in samples], decoder_features(model.eval(), images)


def scores(read: ReadOut, probs: list[np.ndarray], masks: list[np.ndarray], feats: list[np.ndarray]) -> np.ndarray:
    return np.array([f1(read(p, f), m) for p, m, f in zip(probs, masks, feats)])


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
    oracle = np.array([max(f1(p >= t, m) for t in np.linspace(0.01, 0.99, 50)) for p, m in zip(*test[:2])])
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
