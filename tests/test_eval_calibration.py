"""Mask-threshold calibration on validation data, and its use in the pipeline and the evaluation."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from forensix.eval.calibration import THRESHOLD_GRID, best_threshold, calibrate_mask_threshold
from forensix.errors import ForensixError
from forensix.eval.metrics import pixel_f1


def _square_mask(size: int = 8) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    mask[:4, :4] = 1
    return mask


def test_best_threshold_hand_computed():
    gt = _square_mask()
    # image 1: the region at 0.6, a false positive patch at 0.4, the rest 0.1
    first = np.full((8, 8), 0.1)
    first[:4, :4] = 0.6
    first[6:, 6:] = 0.4  # 4 pixels
    # image 2: the region at 0.3, nothing else
    second = np.where(gt == 1, 0.3, 0.1)
    result = best_threshold([first, second], [gt, gt], grid=(0.2, 0.35, 0.5, 0.7))
    # t=0.2: image 1 predicts 16 + 4 pixels -> F1 = 32 / 36; image 2 exact -> 1
    # t=0.35: same for image 1; image 2 predicts nothing -> 0
    # t=0.5: image 1 exact -> 1; image 2 -> 0.   t=0.7: both nothing -> 0
    assert result.f1_by_threshold == pytest.approx({0.2: (32 / 36 + 1) / 2, 0.35: 16 / 36, 0.5: 0.5, 0.7: 0.0})
    assert result.threshold == 0.2 and result.n_images == 2


def test_best_threshold_breaks_ties_towards_one_half():
    gt = _square_mask()
    probs = np.where(gt == 1, 0.9, 0.1)  # every threshold in (0.1, 0.9] is perfect
    assert best_threshold([probs], [gt]).threshold == 0.5
    low = np.where(gt == 1, 0.25, 0.1)  # perfect for 0.15..0.25: the one nearest 0.5 wins
    assert best_threshold([low], [gt]).threshold == 0.25


def test_relative_read_out_cuts_each_map_below_its_own_peak():
    gt = _square_mask()
    # a confident map: the region at 0.9, a wide halo at 0.5; a faint one: the region at 0.3, the rest 0.1
    confident = np.full((8, 8), 0.1)
    confident[:6, :6] = 0.5
    confident[:4, :4] = 0.9
    faint = np.where(gt == 1, 0.3, 0.1)
    plain = best_threshold([confident, faint], [gt, gt], grid=(0.2, 0.6))
    # t=0.2: confident marks 36 px (F1 32/52), faint exact -> mean 0.808; t=0.6: confident exact, faint nothing -> 0.5
    assert plain.threshold == 0.2 and plain.relative == 0.0
    relative = best_threshold([confident, faint], [gt, gt], grid=(0.2, 0.6), relative_grid=(0.0, 0.7))
    # r=0.7: confident is cut at 0.63 (exact), faint at max(0.2, 0.21) = 0.21 (exact)
    assert (relative.threshold, relative.relative) == (0.2, 0.7)
    assert relative.f1_by_relative == pytest.approx({0.0: (32 / 52 + 1) / 2, 0.7: 1.0})
    assert relative.to_dict()["mask_relative"] == 0.7


def test_mask_cut_applies_the_relative_read_out_everywhere(fresh_tiny_model):
    from forensix.data.forge import ForgeryGenerator

    image = ForgeryGenerator(size=64, split="val", seed=3).sample(1).image
    model = fresh_tiny_model
    model.config.mask_threshold, model.config.mask_relative = 0.05, 0.9
    probs = model.mask_probabilities([image])[0]
    cut = model.mask_cut(probs)
    assert cut == pytest.approx(max(0.05, 0.9 * probs.max()))
    assert np.array_equal(model.localize(image).mask, (probs >= cut).astype(np.uint8))
    assert model.analyze(image, max_new_tokens=2).threshold == pytest.approx(cut)


def test_best_threshold_refuses_unpaired_input():
    with pytest.raises(ForensixError, match="same number"):
        best_threshold([np.zeros((4, 4))], [])


def test_calibrate_mask_threshold_scores_the_models_own_maps(tiny_model):
    from forensix.data.forge import ForgeryGenerator

    generator = ForgeryGenerator(size=64, split="val", seed=3)
    samples = [generator.sample(i) for i in range(6)]
    forged = [s for s in samples if s.record.is_fake]
    result = calibrate_mask_threshold(tiny_model, samples, batch_size=4)
    probs = tiny_model.mask_probabilities([s.image for s in forged])
    assert result.n_images == len(forged) and result.threshold in THRESHOLD_GRID
    for t in (0.05, 0.5, 0.95):
        expected = np.mean([pixel_f1(p, s.mask, t) for p, s in zip(probs, forged)])
        assert result.f1_by_threshold[t] == pytest.approx(expected)
    assert tiny_model.config.mask_threshold == 0.5  # calibration sets nothing by itself


def test_calibrate_mask_threshold_needs_forgeries(tiny_model):
    authentic = SimpleNamespace(image=np.zeros((64, 64, 3), np.uint8), mask=np.zeros((64, 64), np.uint8),
                                record=SimpleNamespace(is_fake=False))
    with pytest.raises(ForensixError, match="no forged samples"):
        calibrate_mask_threshold(tiny_model, [authentic])


def test_pipeline_calibrates_from_the_localizer_stage_on(tmp_path):
    from forensix.models import ForensixModel
    from forensix.train.pipeline import train_stages

    model, _ = train_stages("tiny", tmp_path, stages=(1, 2), steps={1: 1, 2: 2}, progress=False)
    assert not (tmp_path / "stage1" / "calibration.json").exists()
    written = json.loads((tmp_path / "stage2" / "calibration.json").read_text())
    assert written["split"] == "val" and written["n_images"] > 0
    assert written["mask_threshold"] == model.config.mask_threshold
    assert written["mask_relative"] == model.config.mask_relative and "0.00" in written["f1_by_relative"]
    assert max(written["f1_by_threshold"].values()) == written["f1_by_threshold"][f"{model.config.mask_threshold:.2f}"]
    assert ForensixModel.from_pretrained(tmp_path / "stage2" / "model").config.mask_threshold == model.config.mask_threshold


def test_loading_finished_stages_calibrates_only_what_is_missing_or_stale(tmp_path, monkeypatch):
    from forensix.train import pipeline

    pipeline.train_stages("tiny", tmp_path, stages=(1, 2), steps={1: 1, 2: 2}, progress=False)
    record = json.loads((tmp_path / "stage2" / "calibration.json").read_text())
    assert record["version"] == pipeline.CALIBRATION_VERSION
    calls = []
    real = pipeline.calibrate_mask_threshold
    monkeypatch.setattr(pipeline, "calibrate_mask_threshold", lambda *a, **k: calls.append(1) or real(*a, **k))
    model, _ = pipeline.train_stages("tiny", tmp_path, stages=(1, 2), steps={1: 1, 2: 2}, progress=False)
    assert calls == [] and model.config.mask_threshold == record["mask_threshold"]  # calibrated when trained
    (tmp_path / "stage2" / "calibration.json").write_text(json.dumps({**record, "version": 0}))  # an older calibration
    pipeline.train_stages("tiny", tmp_path, stages=(1, 2), steps={1: 1, 2: 2}, progress=False)
    assert calls == [1] and json.loads((tmp_path / "stage2" / "calibration.json").read_text())["version"] == pipeline.CALIBRATION_VERSION
    (tmp_path / "stage2" / "calibration.json").unlink()
    pipeline.train_stages("tiny", tmp_path, stages=(1, 2), steps={1: 1, 2: 2}, progress=False)
    assert calls == [1, 1]


def test_evaluation_scores_the_mask_at_the_models_threshold(fresh_tiny_model):
    from forensix.eval.model_quality import evaluate_model

    fresh_tiny_model.config.mask_threshold = 0.3
    result = evaluate_model(fresh_tiny_model, n=4, batch_size=4, progress=False, seed=5)
    forged = [(a, s) for a, s in zip(result.analyses, result.samples) if s.record.is_fake]
    assert forged and all(a.threshold == 0.3 for a, _ in forged)
    expected = np.mean([pixel_f1(a.mask_probs, s.mask, 0.3) for a, s in forged])
    assert result.summary["pixel_f1"] == pytest.approx(expected)


def test_platt_scaling_recovers_a_known_logistic_model():
    from forensix.eval.calibration import fit_platt

    rng = np.random.default_rng(0)
    margins = rng.normal(0, 2, 4000)
    labels = (rng.random(4000) < 1 / (1 + np.exp(-(0.5 * margins - 1.0)))).astype(int)
    weights = np.where(labels == 1, 0.5 / labels.mean(), 0.5 / (1 - labels.mean()))
    (scale,), bias = fit_platt(margins, labels)
    # class-balanced: the bias moves by the log prior ratio, the scale stays
    assert abs(scale - 0.5) < 0.06 and abs(bias - (-1.0 - np.log(labels.mean() / (1 - labels.mean())))) < 0.15
    assert weights.sum() == pytest.approx(len(labels))
    with pytest.raises(ForensixError, match="both classes"):
        fit_platt([0.1, 0.2], [1, 1])


def test_detection_fit_keeps_only_evidence_that_points_the_right_way():
    from forensix.eval.calibration import fit_detection

    rng = np.random.default_rng(1)
    labels = np.arange(400) % 2
    margin, score = rng.normal(size=400) + labels, rng.normal(size=400) + 2 * labels
    scale, mask_weight, bias = fit_detection(np.stack([margin, score], 1), labels)
    assert scale > 0 and mask_weight > scale  # both help, the stronger one more
    assert fit_detection(np.stack([-margin, score], 1), labels)[0] == 0.0  # a reversed margin is left out, not flipped
    assert fit_detection(np.stack([-margin, -score], 1), labels) == (1.0, 0.0, 0.0)  # neither: FakeScope's rule


def test_detection_calibration_lowers_the_ece_and_p_fake_follows_it():
    import torch

    from forensix.eval.calibration import calibrate_detection
    from forensix.data.forge import ForgeryGenerator
    from forensix.eval.metrics import expected_calibration_error
    from forensix.models import ForensixModel

    model = ForensixModel.from_config("tiny")
    logits = torch.randn(3, model.lm.config.vocab_size)
    torch.testing.assert_close(model.p_fake_from_logits(logits), model.answer_log_probs(logits).softmax(-1)[:, 0])
    gen = ForgeryGenerator(size=64, split="val", seed=0, p_authentic=0.5)
    samples = [gen.sample(i) for i in range(24)]
    fitted = calibrate_detection(model, samples)
    assert (model.config.detection_scale, model.config.detection_bias) == (1.0, 0.0)  # sets nothing
    assert fitted.declined or (fitted.scale >= 0 and fitted.mask_weight >= 0)
    model.config.detection_scale, model.config.detection_bias = fitted.scale, fitted.bias
    model.config.detection_mask_weight = fitted.mask_weight
    labels = [int(s.record.is_fake) for s in samples]
    from forensix.data.conversations import analysis_question

    p = model.detect([s.image for s in samples], question=analysis_question())
    assert abs(expected_calibration_error(p, labels) - fitted.ece_after) < 1e-4
    with pytest.raises(ValueError, match="mask_score"):  # a model whose p_fake reads the mask score needs it
        model.config.detection_mask_weight = 0.5
        model.p_fake_from_logits(logits)


def test_answers_start_with_the_verdict_that_p_fake_decides(fresh_tiny_model):
    """With a calibration that overrules the language model, the text's first word follows p_fake, batched or not,
    and p_fake is still read from the model's own logits (finite, the same in both paths)."""
    from forensix.data.forge import ForgeryGenerator

    model = fresh_tiny_model
    fake = model._answer_ids["fake"][0]

    def prefer_fake(logits, hook):  # the tiny random LM rarely starts with a verdict: make it say "fake"
        logits = logits.clone()
        logits[..., fake] += 50.0
        return logits

    images = [ForgeryGenerator(size=64, split="val", seed=2).sample(i).image for i in range(2)]
    with model.hooks([("lm.logits", prefer_fake)]):
        plain = model.analyze_batch(images, max_new_tokens=3)
        assert all(a.generated_ids[0] == fake and a.p_fake > 0.5 for a in plain)
        model.config.detection_scale, model.config.detection_bias = -1.0, 0.0  # reverses every verdict
        batched = model.analyze_batch(images, max_new_tokens=3)
        single = [model.analyze(im, max_new_tokens=3, capture_attention=False) for im in images]
    real = model._answer_ids["real"][0]
    for b, s1, before in zip(batched, single, plain):
        assert np.isfinite(b.p_fake) and b.p_fake == pytest.approx(1 - before.p_fake, abs=1e-5)
        assert b.p_fake == pytest.approx(s1.p_fake, abs=1e-5) and b.generated_ids == s1.generated_ids
        assert b.generated_ids[0] == real and b.verdict == "real"
