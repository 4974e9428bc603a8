"""Hand-computed values of the grounding and faithfulness metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from forensix.errors import BadMaskError
from forensix.explain import (
    comprehensiveness,
    deletion_insertion,
    energy_in_mask,
    map_auroc,
    mask_area_baseline,
    pointing_game,
    pointing_game_score,
    random_map_baseline,
    sufficiency,
)


def half_mask(size=224, start=100):
    m = np.zeros((size, size), np.uint8)
    m[start:, :] = 1
    return m


def peak(size, r, c):
    h = np.zeros((size, size), np.float32)
    h[r, c] = 1.0
    return h


# ---------------------------------------------------------------- pointing game


def test_pointing_game_inside_outside_and_at_tolerance():
    m = half_mask()
    assert pointing_game(peak(224, 150, 3), m) is True  # inside
    assert pointing_game(peak(224, 10, 3), m) is False  # 90 px away
    assert pointing_game(peak(224, 85, 7), m) is True  # exactly tol = 15 px
    assert pointing_game(peak(224, 84, 7), m) is False  # tol + 1
    assert pointing_game(peak(224, 86, 7), m) is True  # tol - 1
    assert pointing_game(peak(224, 85, 7), m, tol=14) is False
    assert pointing_game(torch.from_numpy(peak(224, 150, 3)), torch.from_numpy(m)) is True


def test_pointing_game_tolerance_scales_with_image_size():
    m = half_mask(448, 200)  # tol = 15 * 448 / 224 = 30
    assert pointing_game(peak(448, 170, 0), m) is True
    assert pointing_game(peak(448, 169, 0), m) is False


def test_pointing_game_diagonal_distance_is_euclidean():
    m = np.zeros((224, 224), np.uint8)
    m[100, 100] = 1
    assert pointing_game(peak(224, 109, 112), m) is True  # sqrt(9² + 12²) = 15
    assert pointing_game(peak(224, 110, 112), m) is False  # sqrt(10² + 12²) > 15


def test_pointing_game_empty_mask_and_score():
    assert pointing_game(peak(32, 1, 1), np.zeros((32, 32), np.uint8)) is None
    assert pointing_game_score([True, None, False, True, None]) == pytest.approx(2 / 3)
    assert math.isnan(pointing_game_score([None]))


def test_mask_validation():
    with pytest.raises(BadMaskError):
        pointing_game(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(BadMaskError):
        energy_in_mask(np.zeros((4, 4)), np.full((4, 4), 2))


# ---------------------------------------------------------------- energy / AUROC


def test_energy_in_mask_hand_values():
    m = np.zeros((4, 4), np.uint8)
    m[:2, :2] = 1
    assert energy_in_mask(np.ones((4, 4)), m) == pytest.approx(0.25)
    heat = np.zeros((4, 4))
    heat[0, 0], heat[3, 3], heat[3, 0] = 3.0, 1.0, -5.0  # negatives are clipped
    assert energy_in_mask(heat, m) == pytest.approx(0.75)
    assert math.isnan(energy_in_mask(np.zeros((4, 4)), m))


def test_map_auroc_hand_values():
    m = np.array([[1, 1], [0, 0]], np.uint8)
    heat = np.array([[0.9, 0.2], [0.5, 0.1]])
    assert map_auroc(heat, m) == pytest.approx(0.75)  # 3 of 4 positive/negative pairs ordered
    assert map_auroc(np.array([[0.5, 0.5], [0.5, 0.5]]), m) == pytest.approx(0.5)
    assert math.isnan(map_auroc(heat, np.zeros((2, 2), np.uint8)))
    assert math.isnan(map_auroc(heat, np.ones((2, 2), np.uint8)))


def test_baselines():
    m = np.zeros((4, 4), np.uint8)
    m[:2, :2] = 1
    assert tuple(mask_area_baseline(m, tol=0)) == (0.25, 0.25, 0.5)
    assert mask_area_baseline(m, tol=1).pointing == pytest.approx(0.5)  # + 4 edge neighbours
    assert all(math.isnan(v) for v in mask_area_baseline(np.zeros((4, 4), np.uint8)))
    a = random_map_baseline((3, 5), np.random.default_rng(7))
    b = random_map_baseline((3, 5), np.random.default_rng(7))
    assert a.shape == (3, 5) and a.dtype == np.float32 and (a == b).all() and 0 <= a.min() and a.max() < 1


# ---------------------------------------------------------------- deletion / insertion


def region_brightness(batch):
    """Mean brightness of the top-left 2x2 region, in [0, 1]."""
    assert batch.ndim == 4 and batch.shape[1:] == (4, 4, 3)
    return batch[:, :2, :2].reshape(len(batch), -1).mean(1) / 255.0


def test_deletion_and_insertion_hand_values():
    img = np.full((4, 4, 3), 255, np.uint8)
    sal = np.arange(16, 0, -1, dtype=float).reshape(4, 4)  # row-major order
    calls = []

    def score(batch):
        calls.append(len(batch))
        return region_brightness(batch)

    d = deletion_insertion(img, sal, score, step=2, substrate="zero", batch_size=4)
    # removed pixels: 0, 2 (top row), 4 (top row), 6 (region gone), ...
    np.testing.assert_allclose(d.scores, [1, 0.5, 0.5, 0, 0, 0, 0, 0, 0])
    assert d.auc == pytest.approx((2 - 0.5 - 0) / 8)
    assert calls == [4, 4, 1]  # ceil(16/2) + 1 = 9 images in batches of 4
    i = deletion_insertion(img, sal, region_brightness, step=2, substrate="zero", mode="insertion")
    np.testing.assert_allclose(i.scores, [0, 0.5, 0.5, 1, 1, 1, 1, 1, 1])
    assert i.auc == pytest.approx((7 - 0 - 0.5) / 8)


def test_deletion_uneven_step_counts_and_substrates():
    img = np.full((4, 4, 3), 200, np.uint8)
    sal = np.random.default_rng(0).random((4, 4))
    changed = lambda b: (b[..., 0] != 200).reshape(len(b), -1).sum(1)  # noqa: E731
    d = deletion_insertion(img, sal, changed, step=5, substrate=np.zeros_like(img))
    np.testing.assert_array_equal(d.scores, [0, 5, 10, 15, 16])  # ceil(16/5) + 1 points, last step short
    flat = deletion_insertion(img, sal, changed, step=5)  # blur of a constant image is the image
    np.testing.assert_array_equal(flat.scores, 0)


def test_deletion_blur_substrate_removes_salient_detail():
    img = np.zeros((16, 16, 3), np.uint8)
    img[6:10, 6:10] = 255
    sal = np.zeros((16, 16))
    sal[6:10, 6:10] = 1.0
    score = lambda b: b[:, 6:10, 6:10].reshape(len(b), -1).mean(1) / 255.0  # noqa: E731
    d = deletion_insertion(img, sal, score, step=16, blur_sigma=2.0)
    assert d.scores[0] == 1.0 and d.scores[1] < 0.5 and d.auc < 0.5


# ---------------------------------------------------------------- ERASER


def count_sevens(seqs):
    """p(ŷ) = fraction of the two 7s still present."""
    return [sum(t == 7 for t in s) / 2 for s in seqs]


def test_comprehensiveness_and_sufficiency_hand_values():
    tokens, attr = [7, 1, 7, 2], [0.9, 0.1, 0.8, 0.0]
    # k=25%: r = {7@0}; k=50%: r = {7@0, 7@2}
    assert comprehensiveness(count_sevens, tokens, attr, ks=(0.25, 0.5)) == pytest.approx((0.5 + 1.0) / 2)
    assert sufficiency(count_sevens, tokens, attr, ks=(0.25, 0.5)) == pytest.approx((0.5 + 0.0) / 2)
    # a wrong attribution: the top tokens are not the 7s
    bad = [0.0, 0.9, 0.1, 0.8]
    assert comprehensiveness(count_sevens, tokens, bad, ks=(0.25, 0.5)) == pytest.approx(0.0)
    assert sufficiency(count_sevens, tokens, bad, ks=(0.25, 0.5)) == pytest.approx(1.0)


def test_eraser_batches_all_ks_and_mask_token():
    seen = []

    def score(seqs):
        seen.append([list(s) for s in seqs])
        return count_sevens(seqs)

    tokens, attr = [7, 1, 7, 2], [0.9, 0.1, 0.8, 0.0]
    value = comprehensiveness(score, tokens, attr, mask_token=0)  # default ks 1..50%: 1,1,1,1,2 tokens
    assert len(seen) == 1 and len(seen[0]) == 6
    assert seen[0][0] == tokens and seen[0][1] == [0, 1, 7, 2] and seen[0][5] == [0, 1, 0, 2]
    assert value == pytest.approx((0.5 * 4 + 1.0) / 5)
    sufficiency(score, torch.tensor(tokens), np.array(attr))
    assert seen[1][1] == [7] and seen[1][5] == [7, 7]  # dropped, order kept
