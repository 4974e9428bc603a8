"""Metrics of explanations: grounding against the true mask and faithfulness to the model.

Definitions: pointing game, energy inside the mask, pixel AUROC (does a
heatmap point at the manipulated region?), deletion/insertion curves (RISE) and ERASER
comprehensiveness/sufficiency (does the model's score depend on what the explanation marks?).
Heatmaps are ``H x W`` arrays (numpy or torch); masks are ``H x W`` binary arrays (1 = manipulated).
Metrics of the model's own predictions live in :mod:`forensix.eval.metrics`.

Example:
    >>> import numpy as np
    >>> mask = np.zeros((8, 8), np.uint8); mask[:4, :4] = 1
    >>> heat = np.zeros((8, 8)); heat[1, 1] = 1.0
    >>> pointing_game(heat, mask), energy_in_mask(heat, mask)
    (True, 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, NamedTuple

import numpy as np
from scipy.ndimage import distance_transform_edt, gaussian_filter

from forensix.errors import BadConfigError, BadImageError, BadMaskError

__all__ = [
    "pointing_game",
    "pointing_game_score",
    "energy_in_mask",
    "map_auroc",
    "deletion_insertion",
    "CurveResult",
    "random_map_baseline",
    "mask_area_baseline",
    "ChanceLevels",
    "comprehensiveness",
    "sufficiency",
    "DEFAULT_KS",
    "curve_auc",
    "default_tolerance",
]

DEFAULT_KS = (0.01, 0.05, 0.1, 0.2, 0.5)


def _np(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _heat_mask(heatmap: Any, mask: Any) -> tuple[np.ndarray, np.ndarray]:
    heat = _np(heatmap).astype(np.float64)
    m = _np(mask)
    if heat.ndim != 2:
        raise BadConfigError(f"heatmap: expected an H x W map, got shape {heat.shape}")
    if m.shape != heat.shape:
        raise BadMaskError(f"mask: shape {m.shape} does not match heatmap {heat.shape}; resize one to the other")
    if m.dtype != bool and not np.isin(m, (0, 1)).all():
        raise BadMaskError("mask: must hold only 0 and 1 (1 = manipulated); binarise it first")
    return heat, m.astype(bool)


def default_tolerance(shape: tuple[int, int]) -> float:
    """Pointing-game tolerance in pixels: 15 at 224 px, scaled as ``15 * max(H, W) / 224``."""
    return 15.0 * max(shape) / 224.0


def pointing_game(heatmap: Any, mask: Any, tol: float | None = None) -> bool | None:
    """Pointing-game hit: is the heatmap's maximum within ``tol`` pixels of a mask pixel?

    The maximum is the first ``argmax`` in row-major order. Distance is Euclidean, to the nearest
    mask pixel (``scipy.ndimage.distance_transform_edt``); a hit is ``distance <= tol``.
    ``tol=None`` uses ``15 * max(H, W) / 224`` (15 px at 224 px). Returns None for an empty
    mask (authentic image), which :func:`pointing_game_score` excludes.

    Example:
        >>> m = np.zeros((224, 224), np.uint8); m[100:, :] = 1
        >>> h = np.zeros((224, 224)); h[85, 0] = 1
        >>> pointing_game(h, m), pointing_game(h, m, tol=14)
        (True, False)
    """
    heat, m = _heat_mask(heatmap, mask)
    if not m.any():
        return None
    tol = default_tolerance(heat.shape) if tol is None else float(tol)
    dist = distance_transform_edt(~m)
    peak = np.unravel_index(int(np.nanargmax(heat)), heat.shape)
    return bool(dist[peak] <= tol)


def pointing_game_score(hits: Iterable[bool | None]) -> float:
    """hits / (hits + misses), ignoring None (empty masks); nan if nothing is left.

    Example:
        >>> pointing_game_score([True, False, None, True])
        0.6666666666666666
    """
    kept = [bool(h) for h in hits if h is not None]
    return float(np.mean(kept)) if kept else float("nan")


def energy_in_mask(heatmap: Any, mask: Any) -> float:
    """Energy-based pointing game: Σ heatmap inside the mask / Σ heatmap, heatmap clipped at 0.

    nan when the clipped heatmap sums to 0.

    Example:
        >>> m = np.zeros((2, 2), np.uint8); m[0, 0] = 1
        >>> energy_in_mask(np.ones((2, 2)), m)
        0.25
    """
    heat, m = _heat_mask(heatmap, mask)
    heat = np.clip(heat, 0.0, None)
    total = heat.sum()
    return float(heat[m].sum() / total) if total > 0 else float("nan")


def map_auroc(heatmap: Any, mask: Any) -> float:
    """Pixel AUROC of the heatmap as a score for the mask (ties count one half); nan if the mask
    is constant (all 0 or all 1).

    Example:
        >>> m = np.array([[0, 1], [0, 1]]); h = np.array([[0.1, 0.9], [0.2, 0.3]])
        >>> map_auroc(h, m)
        1.0
    """
    heat, m = _heat_mask(heatmap, mask)
    y = m.ravel()
    if y.all() or not y.any():
        return float("nan")
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, heat.ravel()))


# --------------------------------------------------------------------------- deletion / insertion


class CurveResult(NamedTuple):
    """A deletion or insertion curve: ``scores[i]`` after ``min(i * step, H * W)`` pixels; ``auc``
    is the trapezoid area on a [0, 1] axis, ``(Σ s − s_0/2 − s_N/2) / (N − 1)``."""

    scores: np.ndarray
    auc: float


def curve_auc(scores: Sequence[float]) -> float:
    """Trapezoid area of a curve sampled at ``N`` equally spaced points of [0, 1].

    Example:
        >>> curve_auc([1.0, 0.5, 0.0])
        0.5
    """
    arr = np.asarray(scores, dtype=np.float64)
    if arr.size < 2:
        raise BadConfigError("scores: need at least 2 points for an area under the curve")
    return float((arr.sum() - arr[0] / 2 - arr[-1] / 2) / (arr.size - 1))


def _substrate(image: np.ndarray, substrate: Any, blur_sigma: float) -> np.ndarray:
    if isinstance(substrate, str):
        if substrate == "zero":
            return np.zeros_like(image)
        if substrate == "blur":
            sigma = (blur_sigma, blur_sigma) + (0.0,) * (image.ndim - 2)
            blurred = gaussian_filter(image.astype(np.float64), sigma=sigma, mode="reflect")
            if np.issubdtype(image.dtype, np.integer):
                info = np.iinfo(image.dtype)
                blurred = np.clip(np.rint(blurred), info.min, info.max)
            return blurred.astype(image.dtype)
        raise BadConfigError(f"substrate={substrate!r}: choose 'blur', 'zero' or pass an array like the image")
    arr = _np(substrate)
    if arr.shape != image.shape:
        raise BadConfigError(f"substrate: shape {arr.shape} does not match image {image.shape}")
    return arr.astype(image.dtype)


def deletion_insertion(
    image: Any,
    saliency: Any,
    score_fn: Callable[[np.ndarray], Any],
    *,
    step: int,
    substrate: Literal["blur", "zero"] | np.ndarray = "blur",
    mode: Literal["deletion", "insertion"] = "deletion",
    batch_size: int = 16,
    blur_sigma: float = 5.0,
) -> CurveResult:
    """Deletion / insertion curve (RISE, Petsiuk et al. 2018) of a saliency map.

    Pixels are ranked by decreasing saliency (ties: row-major order). Image ``i`` of the curve,
    ``i = 0 … ceil(H*W/step)``, has its ``min(i * step, H*W)`` top pixels (all channels)
    replaced by the substrate (deletion) or, starting from the substrate, restored from the
    image (insertion); ``scores[i] = score_fn(image_i)``. The substrate is a Gaussian blur of the
    image (``blur_sigma`` per spatial axis, reflect padding, rounded back to the image dtype),
    zeros, or an array of the image's shape. Images go through ``score_fn`` in batches of
    ``batch_size`` as ``[n, H, W, C]`` arrays of the image dtype; it returns ``n`` scores (for
    forgery: ``p_fake``).

    Example:
        >>> img = np.full((2, 2, 3), 255, np.uint8)
        >>> sal = np.array([[4.0, 3.0], [2.0, 1.0]])
        >>> r = deletion_insertion(img, sal, lambda b: b.mean(axis=(1, 2, 3)) / 255, step=1, substrate="zero")
        >>> r.scores.tolist(), r.auc
        ([1.0, 0.75, 0.5, 0.25, 0.0], 0.5)
    """
    img = _np(image)
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3:
        raise BadImageError(f"image: expected H x W x C, got shape {img.shape}")
    sal = _np(saliency).astype(np.float64)
    h, w = img.shape[:2]
    if sal.shape != (h, w):
        raise BadConfigError(f"saliency: shape {sal.shape} does not match the image's {(h, w)}")
    if int(step) < 1 or int(batch_size) < 1:
        raise BadConfigError(f"step={step}, batch_size={batch_size}: both must be >= 1")
    if mode not in ("deletion", "insertion"):
        raise BadConfigError(f"mode={mode!r}: choose 'deletion' or 'insertion'")
    base = _substrate(img, substrate, blur_sigma)
    start, finish = (img, base) if mode == "deletion" else (base, img)

    n_pixels = h * w
    order = np.argsort(-sal.ravel(), kind="stable")
    rank = np.empty(n_pixels, dtype=np.int64)
    rank[order] = np.arange(n_pixels)
    rank = rank.reshape(h, w)
    n_points = math.ceil(n_pixels / int(step)) + 1
    counts = np.minimum(np.arange(n_points) * int(step), n_pixels)

    scores = np.empty(n_points, dtype=np.float64)
    for lo in range(0, n_points, int(batch_size)):
        chunk = counts[lo : lo + int(batch_size)]
        changed = rank[None] < chunk[:, None, None]  # [n, H, W]
        batch = np.where(changed[..., None], finish[None], start[None])
        out = _np(score_fn(batch)).astype(np.float64).ravel()
        if out.size != len(chunk):
            raise BadConfigError(f"score_fn: returned {out.size} scores for a batch of {len(chunk)} images")
        scores[lo : lo + len(chunk)] = out
    return CurveResult(scores=scores, auc=curve_auc(scores))


# --------------------------------------------------------------------------- chance levels


def random_map_baseline(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A uniform random heatmap in [0, 1) (float32), the 'no information' map for benchmarks.

    Example:
        >>> random_map_baseline((2, 3), np.random.default_rng(0)).shape
        (2, 3)
    """
    return rng.random(tuple(shape), dtype=np.float32)


class ChanceLevels(NamedTuple):
    """Expected scores of a map that knows nothing about the mask.

    ``energy``: mask area fraction (the energy a constant map puts inside the mask, and the
    expectation for a random map); ``pointing``: fraction of pixels within ``tol`` of the mask
    (the hit chance of a uniformly random peak; the area fraction when ``tol=0``); ``auroc``: 0.5.
    All nan for an empty mask.
    """

    energy: float
    pointing: float
    auroc: float


def mask_area_baseline(mask: Any, tol: float | None = None) -> ChanceLevels:
    """Chance levels of energy-in-mask, pointing game and AUROC for ``mask`` (see :class:`ChanceLevels`).

    Example:
        >>> m = np.zeros((4, 4), np.uint8); m[:2, :2] = 1
        >>> mask_area_baseline(m, tol=0)
        ChanceLevels(energy=0.25, pointing=0.25, auroc=0.5)
    """
    raw = _np(mask)
    _, m = _heat_mask(np.zeros(raw.shape), raw)
    if not m.any():
        return ChanceLevels(float("nan"), float("nan"), float("nan"))
    tol = default_tolerance(m.shape) if tol is None else float(tol)
    near = distance_transform_edt(~m) <= tol
    return ChanceLevels(energy=float(m.mean()), pointing=float(near.mean()), auroc=0.5)


# --------------------------------------------------------------------------- ERASER


def _top_sets(attributions: np.ndarray, ks: Sequence[float]) -> list[np.ndarray]:
    n = attributions.size
    if n == 0:
        raise BadConfigError("tokens: empty sequence; nothing to attribute")
    order = np.argsort(-attributions, kind="stable")
    out = []
    for k in ks:
        if not 0 < float(k) <= 1:
            raise BadConfigError(f"ks: {k} is not a fraction in (0, 1]")
        top = np.zeros(n, dtype=bool)
        top[order[: max(1, int(math.floor(float(k) * n + 1e-9)))]] = True
        out.append(top)
    return out


def _apply(tokens: list[int], keep: np.ndarray, mask_token: int | None) -> list[int]:
    if mask_token is None:
        return [t for t, k in zip(tokens, keep) if k]
    return [t if k else int(mask_token) for t, k in zip(tokens, keep)]


def _eraser(
    score_fn: Callable[[list[list[int]]], Any],
    tokens: Sequence[int],
    attributions: Any,
    ks: Sequence[float],
    mask_token: int | None,
    keep_top: bool,
) -> float:
    toks = [int(t) for t in _np(tokens).ravel().tolist()]
    attr = _np(attributions).astype(np.float64).ravel()
    if attr.size != len(toks):
        raise BadConfigError(f"attributions: {attr.size} values for {len(toks)} tokens; pass one per token")
    tops = _top_sets(attr, ks)
    variants = [toks] + [_apply(toks, top if keep_top else ~top, mask_token) for top in tops]
    probs = _np(score_fn(variants)).astype(np.float64).ravel()
    if probs.size != len(variants):
        raise BadConfigError(f"score_fn: returned {probs.size} values for {len(variants)} sequences")
    return float(np.mean(probs[0] - probs[1:]))


def comprehensiveness(
    score_fn: Callable[[list[list[int]]], Any],
    tokens: Sequence[int],
    attributions: Any,
    ks: Sequence[float] = DEFAULT_KS,
    mask_token: int | None = None,
) -> float:
    """ERASER comprehensiveness: mean over ``ks`` of ``p(ŷ|x) − p(ŷ|x∖r_k)``.

    ``r_k`` = the ``max(1, floor(k * n))`` tokens with the highest attribution (ties: earlier
    token first). ``x∖r_k`` drops those tokens (``mask_token=None``) or replaces them by
    ``mask_token`` (e.g. a pad or mask id, keeping positions). ``score_fn`` gets one batch, a
    list of ``1 + len(ks)`` token-id lists (the full input first), and returns ``p(ŷ)`` for each,
    ŷ being the prediction on the full input. Higher = the attribution found what the model uses.

    Example:
        >>> f = lambda seqs: [sum(t == 7 for t in s) / 2 for s in seqs]
        >>> comprehensiveness(f, [7, 1, 7, 2], [0.9, 0.1, 0.8, 0.0], ks=(0.25, 0.5))
        0.75
    """
    return _eraser(score_fn, tokens, attributions, ks, mask_token, keep_top=False)


def sufficiency(
    score_fn: Callable[[list[list[int]]], Any],
    tokens: Sequence[int],
    attributions: Any,
    ks: Sequence[float] = DEFAULT_KS,
    mask_token: int | None = None,
) -> float:
    """ERASER sufficiency: mean over ``ks`` of ``p(ŷ|x) − p(ŷ|r_k)``; lower = the top tokens suffice.

    ``r_k`` keeps only the top-attributed tokens (in their original order); the others are
    dropped or replaced by ``mask_token``. Same batching and conventions as
    :func:`comprehensiveness`.

    Example:
        >>> f = lambda seqs: [sum(t == 7 for t in s) / 2 for s in seqs]
        >>> sufficiency(f, [7, 1, 7, 2], [0.9, 0.1, 0.8, 0.0], ks=(0.25, 0.5))
        0.25
    """
    return _eraser(score_fn, tokens, attributions, ks, mask_token, keep_top=True)
