"""Quality of the whole model on the held-out synthetic split: mask, detection, text and clues.

The test split uses photos and seeds the model never trained on (see
:func:`forensix.data.sources.split_photo_names`). For every image the model answers the default
analysis question in one batched generation; the reference is the data engine's own answer for
that sample (``fake. <where> <why>`` or ``real. <why>``).

Metrics: pixel F1 / IoU (at the model's ``mask_threshold``, calibrated on validation data by
:mod:`forensix.train.pipeline`) and AUROC averaged over forged images; image accuracy and
AUROC of ``p_fake`` and its expected calibration error (``image_ece``); ROUGE-L, BLEU and CSS (MiniLM cosine) of the text; micro F1 of the clues; and,
over forged images, how often the first place the answer names lies in the true mask
(``text_location``) and in the model's own binary mask (``text_follows_mask``, :func:`names_the_place`).
:func:`detection_sources` splits detection errors between the localizer and the language model;
:meth:`QualityResult.by_operation` breaks the scores down per forgery operation;
:meth:`QualityResult.intervals` and :meth:`QualityResult.difference` say how sure each score is
(bootstrap over the images, :mod:`forensix.eval.bootstrap`);
:func:`change_oracle` gives a reference ceiling that the data itself sets.

Example:
    >>> from forensix.models import ForensixModel
    >>> result = evaluate_model(ForensixModel.from_config("tiny"), n=4, batch_size=4, progress=False)
    >>> sorted(result.summary)[:3]
    ['bleu', 'clue_f1', 'css']
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from forensix.data.conversations import analysis_question, detection_answer
from forensix.data.describe import CLUES, clue_vector, mask_cells, parse_location
from forensix.data.forge import ForgeryGenerator
from forensix.errors import ForensixError
from forensix.eval.bootstrap import bootstrap_intervals, clue_rows, paired_differences
from forensix.eval.metrics import (SUMMARY_KEYS, bleu, clue_f1, css_scores, expected_calibration_error, image_metrics,
                                   pixel_f1, pixel_metrics, rouge_l_scores)
from forensix.models.mask_encoder import top_mean


@dataclass
class QualityResult:
    """Summary metrics, per-image rows, and the analyses themselves (for reports)."""

    summary: dict[str, float]
    rows: pd.DataFrame
    analyses: list = field(default_factory=list)
    samples: list = field(default_factory=list)

    def intervals(self, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> pd.DataFrame:
        """Each summary metric with a bootstrap interval over the images (:func:`forensix.eval.bootstrap.bootstrap_intervals`)."""
        return bootstrap_intervals(self.rows, n_boot=n_boot, level=level, seed=seed)

    def difference(self, baseline: QualityResult, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> pd.DataFrame:
        """This result minus ``baseline`` (same images) per metric, with a paired bootstrap interval
        (:func:`forensix.eval.bootstrap.paired_differences`)."""
        return paired_differences(self.rows, baseline.rows, n_boot=n_boot, level=level, seed=seed)

    def by_operation(self) -> pd.DataFrame:
        """Per forgery operation (and ``authentic``): image count, mean pixel F1 / AUROC, :func:`mask_top` and ``p_fake``."""
        grouped = self.rows.groupby("op")
        return pd.DataFrame({"n": grouped.size(), "pixel_f1": grouped.f1.mean(), "pixel_auroc": grouped.auroc.mean(),
                             "mask_top": grouped.mask_top.mean(), "p_fake": grouped.p_fake.mean()})


def mask_top(probs: np.ndarray, fraction: float = 0.01) -> float:
    """Mean of the highest ``fraction`` of mask probabilities (at least one pixel): the localizer's own
    detection score, the statistic the mask encoder reads (:func:`~forensix.models.mask_encoder.top_mean`).

    Example:
        >>> mask_top(np.array([[0.25, 0.75], [0.5, 0.0]]), fraction=0.5)
        0.625
    """
    return float(top_mean(torch.as_tensor(np.asarray(probs, dtype=np.float64))[None], fraction))


def detection_sources(model, result: QualityResult) -> dict[str, float]:
    """Image AUROC of three scores on the same images, to tell localizer errors from language-model errors.

    ``p_fake``: as ``analyze`` gives it (the mask encoder reads the predicted mask).
    ``p_fake_true_mask``: the same question (``analyze``'s default,
    :func:`~forensix.data.conversations.analysis_question`) with the true mask in its place, as with
    a perfect localizer (``model.detect(images, question=..., masks=...)``); only the mask differs.
    ``mask_top``: the localizer alone (the per-image :func:`mask_top` of ``result.rows``). A high
    ``p_fake_true_mask`` beside a low ``mask_top`` says the language model reads the region well and
    the localizer is what fails.

    Example:
        >>> from forensix.models import ForensixModel
        >>> model = ForensixModel.from_config("tiny")
        >>> sorted(detection_sources(model, evaluate_model(model, n=4, batch_size=4, progress=False)))
        ['mask_top', 'p_fake', 'p_fake_true_mask']
    """
    true_mask = model.detect([s.image for s in result.samples], question=analysis_question(),
                             masks=[s.mask for s in result.samples])
    scores = {"p_fake": result.rows.p_fake, "p_fake_true_mask": true_mask, "mask_top": result.rows.mask_top}
    return {name: image_metrics(list(values), result.rows.is_fake.tolist())["auroc"] for name, values in scores.items()}


def change_oracle(samples: list, levels: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)) -> dict:
    """Pixel F1 of a detector that sees the original: ``sample.change() > level``, mean over forged samples.

    A reference ceiling for blind localizers on these samples: mask pixels that the manipulation
    barely changed (a feathered edge, a blur over a flat area) show nothing, so a detector can only
    guess them from the shape of the changed ones. Returns the mean F1 per level, the best level,
    and the F1 per operation at that level.

    Example:
        >>> from forensix.data.forge import ForgeryGenerator
        >>> gen = ForgeryGenerator(size=64, seed=0, p_authentic=0.0)
        >>> oracle = change_oracle([gen.sample(i) for i in range(4)], levels=(2.0,))
        >>> oracle["best_level"], 0.0 < oracle["pixel_f1"] <= 1.0
        (2.0, True)
    """
    forged = [s for s in samples if s.record.is_fake]
    if not forged:
        raise ForensixError("change_oracle: no forged samples; pass samples with forgeries")
    changes = [s.change() for s in forged]
    scores = {level: [pixel_f1(c > level, s.mask) for c, s in zip(changes, forged)] for level in levels}
    best = max(levels, key=lambda level: np.mean(scores[level]))
    ops = pd.Series(scores[best], index=[s.record.op for s in forged]).groupby(level=0).mean()
    return {"pixel_f1_by_level": {level: float(np.mean(f)) for level, f in scores.items()}, "best_level": best,
            "pixel_f1": float(np.mean(scores[best])), "by_operation": ops.to_dict(), "n_forged": len(forged)}


def names_the_place(text: str, mask: np.ndarray) -> float:
    """1.0 when the first grid cell that ``text`` names is one a description of ``mask`` names
    (:func:`~forensix.data.describe.mask_cells`), else 0.0 (also for a text naming no place).

    Example:
        >>> m = np.zeros((9, 9), np.uint8); m[:3, :3] = 1
        >>> names_the_place("fake. A small area in the top-left of the image", m), names_the_place("fake.", m)
        (1.0, 0.0)
    """
    named = parse_location(text)
    return float(bool(named) and named[0] in mask_cells(mask))


def held_out_samples(n: int, size: int, seed: int = 1234, split: str = "test") -> list:
    """``n`` synthetic samples (75% forged) from the held-out photos, deterministic in ``seed``."""
    generator = ForgeryGenerator(size=size, split=split, seed=seed)
    return [generator.sample(i) for i in range(n)]


def evaluate_model(model, *, n: int = 48, seed: int = 1234, split: str = "test", batch_size: int = 8,
                   progress: bool = True, samples: list | None = None) -> QualityResult:
    """Analyse ``n`` held-out images and score them (see the module docstring)."""
    samples = samples if samples is not None else held_out_samples(n, model.config.image_size, seed, split)
    analyses = []
    for start in tqdm(range(0, len(samples), batch_size), desc="evaluate", disable=not progress):
        chunk = samples[start : start + batch_size]
        analyses.extend(model.analyze_batch([s.image for s in chunk]))
    rng = np.random.default_rng(seed)
    references = [detection_answer(s, rng) for s in samples]
    texts = [a.text for a in analyses]
    predicted = np.array([[c in a.clues for c in CLUES] for a in analyses], dtype=np.float32)
    truth = np.stack([clue_vector(s.record) for s in samples])
    rows = []
    for sample, analysis, reference in zip(samples, analyses, references):
        row = {"op": sample.record.op, "is_fake": int(sample.record.is_fake), "p_fake": analysis.p_fake,
               "mask_top": mask_top(analysis.mask_probs), "text": analysis.text, "reference": reference}
        if sample.record.is_fake:
            px = pixel_metrics(analysis.mask_probs, sample.mask, threshold=analysis.threshold)
            row.update(f1=px["f1"], iou=px["iou"], auroc=px["auroc"],
                       names_true_place=names_the_place(analysis.text, sample.mask),
                       names_own_place=names_the_place(analysis.text, analysis.mask))
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame["rouge_l"], frame["css"] = rouge_l_scores(texts, references), css_scores(texts, references)
    frame = frame.join(clue_rows(predicted, truth))
    forged = frame[frame.is_fake == 1]
    images = image_metrics(frame.p_fake.tolist(), frame.is_fake.tolist())
    summary = {
        "pixel_f1": float(forged.f1.mean()),
        "pixel_iou": float(forged.iou.mean()),
        "pixel_auroc": float(forged.auroc.mean()),
        "image_acc": float(images["accuracy"]),
        "image_auroc": float(images["auroc"]),
        "image_ece": expected_calibration_error(frame.p_fake.tolist(), frame.is_fake.tolist()),
        "rouge_l": float(frame.rouge_l.mean()),
        "bleu": float(bleu(texts, references)),
        "css": float(frame.css.mean()),
        "clue_f1": float(clue_f1(predicted, truth)),
        "text_location": float(forged.names_true_place.mean()),
        "text_follows_mask": float(forged.names_own_place.mean()),
        "n_images": len(samples),
        "n_forged": int(len(forged)),
    }
    return QualityResult(summary=summary, rows=frame, analyses=analyses, samples=samples)


__all__ = ["SUMMARY_KEYS", "QualityResult", "change_oracle", "detection_sources", "evaluate_model", "held_out_samples", "mask_top",
           "names_the_place"]
