"""How sure is a held-out score? Bootstrap intervals over images, and paired differences of two models.

The held-out images are resampled with replacement ``n_boot`` times (seeded), and every metric of
:data:`~forensix.eval.metrics.SUMMARY_KEYS` is recomputed on each resample from the per-image rows of
:func:`~forensix.eval.model_quality.evaluate_model`: means of the per-image pixel F1 / IoU / AUROC (forged
images), ROUGE-L and CSS; image accuracy; image AUROC as the Mann-Whitney statistic of ``p_fake``
(ties count one half, which is what the trapezoidal ROC area gives); micro clue F1 from summed
true/false positives and false negatives; corpus BLEU from summed n-gram statistics. Intervals are
percentile intervals. :func:`paired_differences` applies the *same* resamples to two models scored on
the same images, so the interval of a difference leaves out the variation both share (which images
were drawn), the way to tell whether a new prompt, head or training stage really changed a score.
:func:`grouped_rate_interval` does the same for a rate pooled over groups (pointing-game hits of the
explanation tokens of each image).

Example:
    >>> import pandas as pd
    >>> rows = pd.DataFrame({"is_fake": [1, 1, 0, 0], "p_fake": [0.9, 0.6, 0.4, 0.7], "f1": [0.5, 0.7, None, None]})
    >>> table = bootstrap_intervals(rows, n_boot=200, seed=0)
    >>> table.loc[["image_auroc", "pixel_f1"], "value"].tolist()
    [0.75, 0.6]
    >>> bool(table.loc["pixel_f1", "low"] <= 0.6 <= table.loc["pixel_f1", "high"])
    True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from forensix.errors import ForensixError
from forensix.eval.metrics import SUMMARY_KEYS, bleu_from_statistics, bleu_statistics

#: Metrics that are means over the forged images, and their per-image columns.
_FORGED_COLUMNS = {"pixel_f1": "f1", "pixel_iou": "iou", "pixel_auroc": "auroc",
                   "text_location": "names_true_place", "text_follows_mask": "names_own_place"}
_SAMPLE_COLUMNS = ("op", "is_fake", "reference")


def resample_counts(n: int, n_boot: int, seed: int) -> np.ndarray:
    """How often each of ``n`` items is drawn in each of ``n_boot`` resamples, ``[n_boot, n]``.

    Example:
        >>> resample_counts(5, 3, seed=0).sum(axis=1).tolist()
        [5, 5, 5]
    """
    if n < 1 or n_boot < 1:
        raise ForensixError(f"resample_counts: need n >= 1 and n_boot >= 1, got n={n}, n_boot={n_boot}")
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot)


def _ratio(numerator: np.ndarray, denominator: np.ndarray, empty: float = np.nan) -> np.ndarray:
    """``numerator / denominator`` per resample, ``empty`` where the denominator is 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), empty)


def _weighted_mean(counts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Mean of ``values`` under each row of ``counts``; ``nan`` where a row draws none of them."""
    return _ratio(counts @ values, counts.sum(axis=1))


def _auroc(counts: np.ndarray, scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUROC under each row of ``counts``: P(score of a fake > score of a real), ties 1/2."""
    pos, neg = labels == 1, labels == 0
    wins = (scores[pos, None] > scores[None, neg]) + 0.5 * (scores[pos, None] == scores[None, neg])
    c_pos, c_neg = counts[:, pos], counts[:, neg]
    return _ratio(np.einsum("bi,ij,bj->b", c_pos, wins, c_neg), c_pos.sum(axis=1) * c_neg.sum(axis=1))


def _micro_f1(counts: np.ndarray, tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """Micro F1 from per-item counts (1.0 where nothing is predicted or true, as :func:`~forensix.eval.metrics.clue_f1`)."""
    t, p, n = counts @ tp, counts @ fp, counts @ fn
    return _ratio(2 * t, 2 * t + p + n, empty=1.0)


def metric_draws(rows: pd.DataFrame, counts: np.ndarray) -> dict[str, np.ndarray]:
    """Every metric that ``rows`` has the columns for, under each resample row of ``counts`` ``[B, n]``.

    Columns read: ``is_fake`` with ``f1``/``iou``/``auroc``/``names_true_place``/``names_own_place`` (forged
    rows) and ``p_fake``; ``rouge_l``, ``css``;
    ``text`` with ``reference`` (BLEU); ``clue_tp``/``clue_fp``/``clue_fn`` (:func:`clue_rows`).

    Example:
        >>> rows = pd.DataFrame({"is_fake": [1, 0], "p_fake": [0.8, 0.3]})
        >>> metric_draws(rows, np.array([[1, 1], [2, 0]]))["image_acc"].tolist()
        [1.0, 1.0]
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[1] != len(rows):
        raise ForensixError(f"counts: expected [n_boot, {len(rows)}] for {len(rows)} rows, got {counts.shape}")
    labels = rows["is_fake"].to_numpy(dtype=int) if "is_fake" in rows else None
    draws: dict[str, np.ndarray] = {}
    for metric, column in _FORGED_COLUMNS.items():
        if column in rows and labels is not None:
            values = rows[column].to_numpy(dtype=np.float64)
            keep = (labels == 1) & np.isfinite(values)
            draws[metric] = _weighted_mean(counts[:, keep], values[keep])
    if "p_fake" in rows and labels is not None:
        scores = rows["p_fake"].to_numpy(dtype=np.float32)  # the precision image_metrics scores in
        draws["image_acc"] = _weighted_mean(counts, ((scores >= 0.5) == (labels == 1)).astype(np.float64))
        draws["image_auroc"] = _auroc(counts, scores, labels)
    for metric in ("rouge_l", "css"):
        if metric in rows:
            draws[metric] = _weighted_mean(counts, rows[metric].to_numpy(dtype=np.float64))
    if "text" in rows and "reference" in rows:
        stats = bleu_statistics(rows["text"].tolist(), rows["reference"].tolist())
        draws["bleu"] = bleu_from_statistics(counts @ stats)
    if {"clue_tp", "clue_fp", "clue_fn"} <= set(rows):
        draws["clue_f1"] = _micro_f1(counts, *(rows[c].to_numpy(dtype=np.float64) for c in ("clue_tp", "clue_fp", "clue_fn")))
    if not draws:
        raise ForensixError(
            f"rows: no metric can be computed from the columns {list(rows.columns)}; pass the rows of "
            "forensix.eval.model_quality.evaluate_model (result.rows) or columns as listed in metric_draws"
        )
    return {m: draws[m] for m in SUMMARY_KEYS if m in draws}


def clue_rows(predicted: np.ndarray, truth: np.ndarray) -> pd.DataFrame:
    """Per-image clue counts ``clue_tp``, ``clue_fp``, ``clue_fn`` from multi-hot ``[n, n_clues]`` arrays.

    Example:
        >>> clue_rows(np.array([[1, 0, 1]]), np.array([[1, 1, 0]])).iloc[0].tolist()
        [1.0, 1.0, 1.0]
    """
    p, t = np.atleast_2d(np.asarray(predicted, dtype=np.float64)), np.atleast_2d(np.asarray(truth, dtype=np.float64))
    if p.shape != t.shape:
        raise ForensixError(f"clue predictions {p.shape} and targets {t.shape} must have the same shape")
    return pd.DataFrame({"clue_tp": (p * t).sum(1), "clue_fp": (p * (1 - t)).sum(1), "clue_fn": ((1 - p) * t).sum(1)})


def _interval(draws: np.ndarray, level: float) -> tuple[float, float]:
    finite = draws[np.isfinite(draws)]
    if not len(finite):
        return np.nan, np.nan
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def _with_everything(counts: np.ndarray) -> np.ndarray:
    """``counts`` with a first row that draws every item once (the value on all items), as floats."""
    return np.vstack([np.ones(counts.shape[1]), counts]).astype(np.float64)


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ForensixError(f"level={level}: give the interval's coverage as a fraction, e.g. 0.95")


def bootstrap_intervals(rows: pd.DataFrame, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Each metric's value on all rows and its percentile interval over ``n_boot`` resamples of the rows.

    Returns a frame indexed by metric with columns ``value``, ``low``, ``high``.
    See the module docstring for an example.
    """
    _check_level(level)
    draws = metric_draws(rows, _with_everything(resample_counts(len(rows), n_boot, seed)))
    table = {m: (float(d[0]), *_interval(d[1:], level)) for m, d in draws.items()}
    return pd.DataFrame.from_dict(table, orient="index", columns=["value", "low", "high"])


def grouped_rate_interval(
    successes: Sequence[float], trials: Sequence[float], *, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """A rate pooled over groups, ``sum(successes) / sum(trials)``, with a percentile interval from
    resampling whole groups: the right bootstrap when items within a group are not independent
    (the explanation tokens of one image all point from the same analysis).

    Example:
        >>> rate, low, high = grouped_rate_interval([3, 0, 2], [4, 2, 2], n_boot=500)
        >>> rate, bool(low <= rate <= high)
        (0.625, True)
    """
    _check_level(level)
    wins, tries = np.asarray(successes, dtype=np.float64), np.asarray(trials, dtype=np.float64)
    if wins.shape != tries.shape or wins.ndim != 1 or not len(tries) or (wins > tries).any() or (wins < 0).any():
        raise ForensixError(f"successes {wins.shape} and trials {tries.shape}: one count per group, 0 <= successes <= trials")
    counts = _with_everything(resample_counts(len(tries), n_boot, seed))
    draws = _ratio(counts @ wins, counts @ tries)
    return (float(draws[0]), *_interval(draws[1:], level))


def paired_differences(
    rows: pd.DataFrame, baseline: pd.DataFrame, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> pd.DataFrame:
    """``rows`` minus ``baseline`` per metric, both scored on the same images, with a paired bootstrap interval.

    Returns a frame indexed by metric with columns ``value``, ``baseline``, ``difference``, ``low``,
    ``high``: an interval that excludes 0 says the change is larger than what the choice of images explains.

    Example:
        >>> a = pd.DataFrame({"is_fake": [1, 1, 0, 0], "f1": [0.5, 0.7, None, None]})
        >>> b = pd.DataFrame({"is_fake": [1, 1, 0, 0], "f1": [0.2, 0.3, None, None]})
        >>> paired_differences(a, b, n_boot=100).loc["pixel_f1", ["difference", "low"]].round(2).tolist()
        [0.35, 0.3]
    """
    _check_level(level)
    shared = [c for c in _SAMPLE_COLUMNS if c in rows and c in baseline]
    if len(rows) != len(baseline) or any(not rows[c].reset_index(drop=True).equals(baseline[c].reset_index(drop=True)) for c in shared):
        raise ForensixError(
            f"paired_differences: the two results were scored on different images ({len(rows)} vs {len(baseline)} rows, "
            f"compared on {shared}); evaluate both models on the same samples (evaluate_model(..., samples=...))"
        )
    counts = _with_everything(resample_counts(len(rows), n_boot, seed))
    ours, theirs = metric_draws(rows, counts), metric_draws(baseline, counts)
    table = {
        m: (float(ours[m][0]), float(theirs[m][0]), float(ours[m][0] - theirs[m][0]), *_interval(ours[m][1:] - theirs[m][1:], level))
        for m in ours if m in theirs
    }
    return pd.DataFrame.from_dict(table, orient="index", columns=["value", "baseline", "difference", "low", "high"])


__all__ = ["bootstrap_intervals", "clue_rows", "grouped_rate_interval", "metric_draws", "paired_differences", "resample_counts"]
