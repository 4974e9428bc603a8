"""Bootstrap intervals and paired differences: each resampled metric equals the library's metric on
the explicitly repeated rows, and the intervals behave as intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forensix.eval.bootstrap import bootstrap_intervals, clue_rows, grouped_rate_interval, metric_draws, paired_differences, resample_counts
from forensix.errors import ForensixError
from forensix.eval.metrics import bleu, bleu_from_statistics, bleu_statistics, clue_f1, image_metrics

TEXTS = ["fake. the upper left was pasted in", "real. nothing stands out", "fake. a blurred patch at the centre",
         "real. the noise is even", "fake. colours shift on the right side", "fake. the upper left was pasted in"]
REFERENCES = ["fake. the upper left region was spliced", "real. the noise is even", "fake. the centre was blurred",
              "real. nothing stands out", "fake. the right side was recoloured", "fake. a copy of the left"]


def _rows(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Six images (four forged) with tied scores, per-image pixel scores and clue predictions."""
    rng = np.random.default_rng(seed)
    labels = np.array([1, 0, 1, 0, 1, 1])
    predicted = rng.integers(0, 2, (6, 5))
    truth = rng.integers(0, 2, (6, 5))
    rows = pd.DataFrame({
        "op": ["splice", "authentic", "retouch", "authentic", "color", "splice"], "is_fake": labels,
        "p_fake": [0.9, 0.6, 0.6, 0.2, 0.4, 0.7],  # 0.6 twice: one fake, one real (a tie)
        "f1": [0.5, np.nan, 0.25, np.nan, 0.0, 0.75], "iou": [0.3, np.nan, 0.1, np.nan, 0.0, 0.6],
        "auroc": [0.8, np.nan, np.nan, np.nan, 0.6, 0.9],  # one forged image without a defined AUROC
        "rouge_l": rng.random(6), "css": rng.random(6), "text": TEXTS, "reference": REFERENCES,
        "names_true_place": [1.0, np.nan, 0.0, np.nan, 1.0, 1.0], "names_own_place": [0.0, np.nan, 0.0, np.nan, 1.0, 1.0],
    })
    return rows.join(clue_rows(predicted, truth)), predicted, truth


def test_resample_counts_draw_n_items_per_resample_and_follow_the_seed():
    counts = resample_counts(7, 50, seed=3)
    assert counts.shape == (50, 7) and (counts.sum(1) == 7).all()
    assert np.array_equal(counts, resample_counts(7, 50, seed=3)) and not np.array_equal(counts, resample_counts(7, 50, seed=4))
    with pytest.raises(ForensixError, match="n_boot"):
        resample_counts(7, 0, seed=0)


@pytest.mark.parametrize("counts", [[1, 1, 1, 1, 1, 1], [2, 0, 1, 3, 0, 1], [0, 2, 3, 1, 1, 0]])
def test_each_resampled_metric_equals_the_library_metric_on_the_repeated_rows(counts):
    rows, predicted, truth = _rows()
    draws = metric_draws(rows, np.array([counts]))
    take = np.repeat(np.arange(6), counts)
    repeated = rows.iloc[take]
    forged = repeated[repeated.is_fake == 1]
    images = image_metrics(repeated.p_fake.tolist(), repeated.is_fake.tolist())
    expected = {
        "pixel_f1": forged.f1.mean(), "pixel_iou": forged.iou.mean(), "pixel_auroc": forged.auroc.mean(),  # pandas skips nan
        "image_acc": images["accuracy"], "image_auroc": images["auroc"],
        "rouge_l": repeated.rouge_l.mean(), "bleu": bleu(repeated.text.tolist(), repeated.reference.tolist()),
        "css": repeated.css.mean(),
        "clue_f1": clue_f1(predicted[take], truth[take]),
        "text_location": forged.names_true_place.mean(), "text_follows_mask": forged.names_own_place.mean(),
    }
    assert list(draws) == list(expected)  # every summary metric, in report order
    for metric, value in expected.items():
        assert draws[metric][0] == pytest.approx(value, abs=1e-6), metric


def test_bleu_statistics_sum_to_the_corpus_bleu():
    stats = bleu_statistics(TEXTS, REFERENCES)
    assert stats.shape == (6, 10)
    assert bleu_from_statistics(stats.sum(0)) == pytest.approx(bleu(TEXTS, REFERENCES), abs=1e-6)
    assert bleu_from_statistics(stats[[1, 3]].sum(0)) == pytest.approx(bleu([TEXTS[1], TEXTS[3]], [REFERENCES[1], REFERENCES[3]]), abs=1e-6)


def test_a_resample_without_one_class_has_no_auroc():
    rows, _, _ = _rows()
    only_fakes = np.array([[2, 0, 2, 0, 1, 1]])
    assert np.isnan(metric_draws(rows, only_fakes)["image_auroc"][0])


def test_intervals_hold_the_value_narrow_with_more_images_and_widen_with_the_level():
    rng = np.random.default_rng(0)
    small = pd.DataFrame({"is_fake": [1] * 20, "f1": rng.random(20)})
    large = pd.DataFrame({"is_fake": [1] * 400, "f1": rng.random(400)})
    a, b = bootstrap_intervals(small, seed=1), bootstrap_intervals(large, seed=1)
    assert a.loc["pixel_f1", "low"] < a.loc["pixel_f1", "value"] < a.loc["pixel_f1", "high"]
    assert b.loc["pixel_f1", "high"] - b.loc["pixel_f1", "low"] < (a.loc["pixel_f1", "high"] - a.loc["pixel_f1", "low"]) / 2
    wider = bootstrap_intervals(small, level=0.99, seed=1)
    assert wider.loc["pixel_f1", "low"] <= a.loc["pixel_f1", "low"] and wider.loc["pixel_f1", "high"] >= a.loc["pixel_f1", "high"]
    constant = bootstrap_intervals(pd.DataFrame({"is_fake": [1] * 5, "f1": [0.4] * 5}))
    assert constant.loc["pixel_f1"].tolist() == pytest.approx([0.4, 0.4, 0.4])
    with pytest.raises(ForensixError, match="level"):
        bootstrap_intervals(small, level=95)


def test_paired_differences_cancel_what_both_results_share():
    rng = np.random.default_rng(2)
    base = pd.DataFrame({"op": ["splice"] * 30, "is_fake": [1] * 30, "f1": rng.random(30)})
    better = base.assign(f1=base.f1 + 0.05)  # the same images, every score 0.05 higher
    table = paired_differences(better, base)
    assert table.loc["pixel_f1", ["difference", "low", "high"]].tolist() == pytest.approx([0.05, 0.05, 0.05])
    unpaired = bootstrap_intervals(better)  # the unpaired interval is far wider than the paired one
    assert unpaired.loc["pixel_f1", "high"] - unpaired.loc["pixel_f1", "low"] > 0.1
    with pytest.raises(ForensixError, match="different images"):
        paired_differences(better, base.iloc[::-1].assign(op=["copy_move"] * 30))
    with pytest.raises(ForensixError, match="different images"):
        paired_differences(better, base.iloc[:20])


def test_clue_rows_count_per_image_and_rows_without_metric_columns_are_refused():
    counts = clue_rows(np.array([[1, 1, 0, 0], [0, 0, 0, 0]]), np.array([[1, 0, 1, 0], [0, 0, 0, 0]]))
    assert counts.to_numpy().tolist() == [[1, 1, 1], [0, 0, 0]]  # tp, fp, fn
    only_clues = bootstrap_intervals(counts, n_boot=20)  # no labels needed for clue F1
    assert list(only_clues.index) == ["clue_f1"] and only_clues.loc["clue_f1", "value"] == pytest.approx(0.5)
    with pytest.raises(ForensixError, match="no metric"):
        bootstrap_intervals(pd.DataFrame({"op": ["splice"]}))


def test_grouped_rate_interval_pools_over_groups_and_resamples_whole_groups():
    rate, low, high = grouped_rate_interval([4, 0, 1, 0], [4, 1, 4, 0])  # an image without tokens adds nothing
    assert rate == pytest.approx(5 / 9) and 0 <= low < rate < high <= 1
    # ten images whose tokens all hit or all miss: resampling images, not tokens, keeps the interval wide
    clustered = grouped_rate_interval([8] * 5 + [0] * 5, [8] * 10, seed=1)
    independent = grouped_rate_interval([1] * 40 + [0] * 40, [1] * 80, seed=1)
    assert clustered[0] == independent[0] == 0.5
    assert clustered[2] - clustered[1] > 1.5 * (independent[2] - independent[1])
    with pytest.raises(ForensixError, match="0 <= successes <= trials"):
        grouped_rate_interval([3], [2])
