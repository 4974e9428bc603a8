"""The clue head's pixel evidence, its refit on predicted masks, per-clue thresholds, and old checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forensix.checkpoint import write_checkpoint
from forensix.config import ForensixConfig, get_config
from forensix.data.describe import CLUES
from forensix.errors import ForensixError
from forensix.eval.clue_calibration import calibrate_clues, choose_clue_thresholds
from forensix.eval.metrics import clue_f1
from forensix.eval.model_quality import held_out_samples
from forensix.models import ForensixModel
from forensix.models.analysis import Analysis
from forensix.models.clue_evidence import CONTRASTS, pixel_contrast
from forensix.models.persistence import MODEL_FORMAT, trainable_state
from forensix.models.prompter import clue_text
from forensix.train.clue_fit import fit_clue_head


def _photo(seed: int = 0, size: int = 64) -> torch.Tensor:
    """A smooth random image (low-pass noise), so texture contrasts have something to differ from."""
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.random((1, 3, size // 8, size // 8), dtype=np.float32))
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)


def _square(size: int = 64) -> torch.Tensor:
    mask = torch.zeros(1, 1, size, size)
    mask[..., 16:40, 20:44] = 1
    return mask


def _contrast(images: torch.Tensor, mask: torch.Tensor, name: str) -> float:
    return float(pixel_contrast(images, mask)[0, CONTRASTS.index(name)])


def test_a_uniform_mask_sees_no_contrast():
    contrast = pixel_contrast(_photo(), torch.full((1, 1, 64, 64), 0.5))
    assert contrast.shape == (1, len(CONTRASTS))
    assert torch.allclose(contrast, torch.zeros_like(contrast), atol=1e-3)


def test_contrasts_name_the_change_inside_the_mask():
    image, mask = 0.7 * _photo(), _square()
    inside = mask.bool().expand(1, 3, 64, 64)
    shifted = image.clone()
    shifted[inside] += 0.2
    noisy = image.clone()
    noisy[inside] += 0.05 * torch.randn(int(inside.sum()), generator=torch.Generator().manual_seed(0))
    assert _contrast(shifted, mask, "red") - _contrast(image, mask, "red") == pytest.approx(0.2, abs=0.02)
    assert _contrast(noisy, mask, "residual") > 1.0 + _contrast(image, mask, "residual")
    assert _contrast(noisy.clamp(0, 1), mask, "gradient") > _contrast(image, mask, "gradient")


def test_a_copied_region_matches_elsewhere():
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 40:56, 40:56] = 1
    copied = image.clone()
    copied[..., 40:56, 40:56] = image[..., 4:20, 4:20]
    assert _contrast(copied, mask, "self-similarity") > _contrast(image, mask, "self-similarity") + 0.3


def test_fit_trains_the_clue_head_alone():
    model = ForensixModel.from_config("tiny")
    before = {k: v.clone() for k, v in trainable_state(model).items()}
    flags = [p.requires_grad for p in model.parameters()]
    fit = fit_clue_head(model, held_out_samples(12, 64, split="train"), epochs=30)
    assert fit.loss_after < fit.loss_before and fit.n_images == 12
    after = trainable_state(model)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("clue_head.") for k in changed)
    assert [p.requires_grad for p in model.parameters()] == flags
    with pytest.raises(ForensixError, match="no samples"):
        fit_clue_head(model, [])


def test_per_clue_thresholds_beat_one_threshold_on_their_data():
    rng = np.random.default_rng(0)
    truth = (rng.random((200, 4)) < 0.2).astype(np.float32)
    probs = np.clip(0.1 + 0.25 * truth + 0.1 * rng.random((200, 4)), 0, 1)  # positives near 0.4: below 0.5
    thresholds = choose_clue_thresholds(probs, truth)
    assert all(t < 0.5 for t in thresholds)
    assert clue_f1((probs >= np.array(thresholds)).astype(np.float32), truth) > clue_f1((probs >= 0.5).astype(np.float32), truth)


def test_calibrated_thresholds_are_what_analysis_and_prompter_use(tiny_model):
    calibration = calibrate_clues(tiny_model, held_out_samples(8, 64, split="val"))
    assert len(calibration.thresholds) == len(CLUES) and calibration.f1_after >= calibration.f1_at_half
    config = get_config("tiny")
    config.clue_thresholds = tuple([0.9] * (len(CLUES) - 1) + [0.2])
    logits = torch.logit(torch.full((1, len(CLUES)), 0.3))
    assert clue_text(logits, config) == [f" Clues: {CLUES[-1]}."]
    analysis = Analysis(image=np.zeros((4, 4, 3), np.uint8), question="", text="", mask_probs=np.zeros((4, 4)), p_fake=0.5,
                        clue_probs=dict.fromkeys(CLUES, 0.3), clue_thresholds=dict(zip(CLUES, config.clue_thresholds)))
    assert analysis.clues == [CLUES[-1]]


def test_a_checkpoint_from_before_the_clue_evidence_still_loads(tmp_path):
    old = ForensixModel.from_config("tiny", clue={"evidence": False})
    state = {k: v for k, v in trainable_state(old).items() if k not in ("clue_head.centre", "clue_head.spread")}
    saved = old.config.to_dict()
    del saved["clue"], saved["clue_thresholds"]
    write_checkpoint(tmp_path / "old", tensors={"model": state}, meta={"config": {"forensix_config": saved, "lora": False,
                                                                                 "format": MODEL_FORMAT}})
    loaded = ForensixModel.from_pretrained(tmp_path / "old")
    assert loaded.config.clue.evidence is False and torch.equal(loaded.clue_head.spread, torch.ones_like(loaded.clue_head.spread))
    assert ForensixConfig.from_dict(get_config("tiny").to_dict()).clue.evidence is True
