"""Held-out evaluation helpers: where detection errors come from, and scores per forgery operation."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from forensix.data.conversations import DETECTION_QUESTION, analysis_question
from forensix.data.forge import ForgeryGenerator
from forensix.models import ForensixModel
from forensix.eval.model_quality import SUMMARY_KEYS, QualityResult, detection_sources, mask_top, names_the_place


class _GivenMaskModel:
    """Stands in for a model: ``detect(images, question=..., masks=...)`` returns preset scores and records its call."""

    def __init__(self, scores: list[float]) -> None:
        self.scores, self.calls = np.array(scores), []

    def detect(self, images, question=DETECTION_QUESTION, masks=None):
        self.calls.append((len(images), question, masks))
        return self.scores


def _result(p_fake: list[float], peaks: list[float], labels: list[int]) -> QualityResult:
    """Per-image rows as ``evaluate_model`` writes them, and the samples with their true masks."""
    samples = []
    for label in labels:
        mask = np.zeros((10, 10), np.uint8)
        mask[:3, :3] = label
        samples.append(SimpleNamespace(image=np.zeros((10, 10, 3), np.uint8), mask=mask,
                                       record=SimpleNamespace(is_fake=bool(label))))
    rows = pd.DataFrame({"is_fake": labels, "p_fake": p_fake, "mask_top": peaks})
    return QualityResult(summary={}, rows=rows, samples=samples)


def test_detection_sources_scores_each_source_on_the_same_images():
    labels = [1, 1, 0, 0]
    result = _result(p_fake=[0.9, 0.2, 0.5, 0.1], peaks=[0.3, 0.8, 0.6, 0.7], labels=labels)
    model = _GivenMaskModel([0.8, 0.7, 0.1, 0.2])
    sources = detection_sources(model, result)
    # p_fake: 0.9 beats both authentic scores, 0.2 beats one of two -> 3/4
    # mask_top: 0.3 beats neither (0.6, 0.7), 0.8 beats both -> 2/4
    assert sources == pytest.approx({"p_fake": 0.75, "p_fake_true_mask": 1.0, "mask_top": 0.5})
    (n_images, question, masks), = model.calls
    assert n_images == 4 and [int(m.sum()) for m in masks] == [9, 9, 0, 0]  # the true masks, in order
    assert question == analysis_question()  # the question evaluate_model's analyses answered: only the mask differs


def test_detect_with_the_analysis_question_gives_the_p_fake_of_analyze():
    model = ForensixModel.from_config("tiny")
    images = [ForgeryGenerator(size=64, seed=3).sample(i).image for i in range(3)]
    analysed = [a.p_fake for a in model.analyze_batch(images, max_new_tokens=1)]
    assert model.detect(images, question=analysis_question()) == pytest.approx(analysed, abs=1e-5)


def test_mask_top_averages_the_highest_fraction_of_pixels():
    probs = np.arange(200, dtype=np.float32).reshape(10, 20) / 200
    assert mask_top(probs) == pytest.approx((199 + 198) / 2 / 200)  # 1 % of 200 pixels
    assert mask_top(np.array([[0.3]])) == pytest.approx(0.3)  # never fewer than one pixel


def test_by_operation_groups_the_per_image_rows():
    rows = pd.DataFrame({"op": ["splice", "splice", "authentic"], "f1": [0.2, 0.6, np.nan],
                         "auroc": [0.7, 0.9, np.nan], "mask_top": [0.9, 0.5, 0.6], "p_fake": [0.9, 0.7, 0.4]})
    table = QualityResult(summary={}, rows=rows).by_operation()
    assert table.loc["splice"].tolist() == pytest.approx([2, 0.4, 0.8, 0.7, 0.8])
    assert table.loc["authentic", "n"] == 1 and np.isnan(table.loc["authentic", "pixel_f1"])


class _ChangedSample:
    """A forged sample whose ``change()`` is given."""

    def __init__(self, op: str, change: np.ndarray, mask: np.ndarray) -> None:
        self._change, self.mask, self.record = change, mask, SimpleNamespace(op=op, is_fake=op != "authentic")

    def change(self) -> np.ndarray:
        return self._change


def test_change_oracle_hand_computed():
    from forensix.eval.model_quality import change_oracle

    mask = np.zeros((4, 4), np.uint8)
    mask[:2] = 1  # 8 pixels
    strong = np.where(mask == 1, 10.0, 0.0)  # every masked pixel changed a lot
    weak = np.where(mask == 1, 3.0, 0.0)
    weak[0] = 0.5  # half of the region barely changed
    authentic = _ChangedSample("authentic", np.zeros((4, 4)), np.zeros((4, 4), np.uint8))
    oracle = change_oracle([_ChangedSample("splice", strong, mask), _ChangedSample("retouch", weak, mask), authentic],
                           levels=(1.0, 4.0))
    # level 1: splice 1, retouch 4 of 8 found -> 2*4/(4+8) = 2/3; level 4: splice 1, retouch 0
    assert oracle["pixel_f1_by_level"] == pytest.approx({1.0: (1 + 2 / 3) / 2, 4.0: 0.5})
    assert oracle["best_level"] == 1.0 and oracle["n_forged"] == 2
    assert oracle["by_operation"] == pytest.approx({"retouch": 2 / 3, "splice": 1.0})


def test_intervals_of_an_evaluation_centre_on_its_summary(tiny_model):
    from forensix.eval.model_quality import evaluate_model

    result = evaluate_model(tiny_model, n=8, batch_size=8, progress=False, seed=3)
    table = result.intervals(n_boot=200)
    assert list(table.index) == list(SUMMARY_KEYS)  # every summary metric gets an interval
    for metric in SUMMARY_KEYS:  # the bootstrap's own arithmetic agrees with the torchmetrics summary
        assert table.loc[metric, "value"] == pytest.approx(result.summary[metric], abs=1e-6, nan_ok=True), metric
    same = result.difference(result, n_boot=50)
    assert np.allclose(same[["difference", "low", "high"]].to_numpy(), 0.0, equal_nan=True)


def test_names_the_place_reads_the_first_place_an_answer_names():
    mask = np.zeros((30, 30), np.uint8)
    mask[20:, 18:] = 1  # bottom-right, with a sliver in bottom-center
    mask[20:, 9:11] = 1
    assert names_the_place("fake. A small area in the bottom-right of the image was blurred.", mask) == 1.0
    assert names_the_place("fake. In the top-left and the bottom-right of the image.", mask) == 0.0  # the first place counts
    assert names_the_place("fake. Somewhere near the lower right.", mask) == 1.0  # synonyms, as parse_location reads them
    assert names_the_place("real. Nothing was changed.", mask) == 0.0
    assert names_the_place("fake. In the bottom-right.", np.zeros_like(mask)) == 0.0  # an empty mask holds no place
