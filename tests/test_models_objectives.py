"""The localizer's objective terms and the self-correlation layer, against hand computations."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from forensix.config import LocalizerConfig, get_config
from forensix.errors import BadConfigError
from forensix.models import ForensixModel
from forensix.models.correlation import SelfCorrelation
from forensix.models.mask_encoder import top_mean
from forensix.models.objectives import LocalizerOutput, boundary_band, localizer_loss, pixel_contrast, pixel_terms

PLAIN = LocalizerConfig(pixel_loss="bce", edge_weight=0.0, deep_supervision=0.0, image_loss=0.0, contrastive=0.0,
                        correlation_topk=0)


def _target(h: int = 10, w: int = 10, box: tuple[int, int] = (2, 4)) -> torch.Tensor:
    t = torch.zeros(1, 1, h, w)
    t[..., box[0]:box[1], box[0]:box[1]] = 1
    return t


def test_balanced_bce_weighs_each_class_by_half_over_its_share():
    target = _target()  # 4 of 100 pixels forged
    logits = torch.zeros_like(target)
    got = pixel_terms(logits, target, LocalizerConfig(pixel_loss="balanced", edge_weight=0.0, dice_weight=0.0))["pixel"]
    w_forged, w_authentic = min(0.5 / 0.04, 10.0), 0.5 / 0.96
    expected = math.log(2) * (4 * w_forged + 96 * w_authentic) / 100
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_plain_bce_and_dice_match_their_formulas():
    target = _target()
    logits = torch.linspace(-3, 3, 100).view(1, 1, 10, 10)
    terms = pixel_terms(logits, target, PLAIN)
    assert terms["pixel"].item() == pytest.approx(F.binary_cross_entropy_with_logits(logits, target).item(), rel=1e-6)
    p = logits.sigmoid()
    dice = 1 - (2 * (p * target).sum() + 1) / (p.sum() + target.sum() + 1)
    assert terms["dice"].item() == pytest.approx(dice.item(), rel=1e-6)


def test_the_edge_band_is_the_ring_around_the_boundary_and_raises_its_weight():
    target = _target(12, 12, (3, 9))  # a 6 x 6 square
    band = boundary_band(target, 1)
    assert int(band.sum()) == 8 * 8 - 4 * 4  # dilated 8 x 8 minus eroded 4 x 4
    logits = torch.zeros_like(target)
    plain = pixel_terms(logits, target, PLAIN)["pixel"]
    edged = pixel_terms(logits, target, LocalizerConfig(pixel_loss="bce", edge_weight=3.0))["pixel"]
    assert edged.item() == pytest.approx(plain.item() * (144 + 3 * 48) / 144, rel=1e-6)


def test_image_loss_trains_authentic_images_and_deep_supervision_reads_every_level():
    authentic = torch.zeros(1, 1, 10, 10)
    logits = torch.full_like(authentic, 2.0)
    out = LocalizerOutput(logits=logits, levels=[torch.full((1, 1, 5, 5), 2.0)], features=torch.randn(1, 4, 10, 10))
    cfg = LocalizerConfig(pixel_loss="bce", image_loss=1.0, deep_supervision=0.5, contrastive=0.0)
    terms = localizer_loss(out, authentic, cfg)
    assert "dice" not in terms  # no forged pixel
    assert terms["image"].item() == pytest.approx(F.softplus(torch.tensor(2.0)).item(), rel=1e-6)
    assert terms["levels"].item() == pytest.approx(0.5 * F.softplus(torch.tensor(2.0)).item(), rel=1e-6)
    assert float(top_mean(torch.arange(200.0).view(1, 1, 10, 20))) == pytest.approx(198.5)


def test_pixel_contrast_is_low_when_classes_separate_and_skips_images_without_both():
    target = torch.zeros(2, 1, 8, 8)
    target[0, :, :, :4] = 1  # image 1 is authentic: skipped
    separated = torch.cat([target, 1 - target], dim=1)
    assert pixel_contrast(separated, target).item() < pixel_contrast(torch.randn(2, 2, 8, 8), target).item()
    mixed = torch.randn(2, 2, 8, 8, requires_grad=True)
    assert pixel_contrast(mixed, torch.zeros(2, 1, 8, 8)).item() == 0.0
    loss = pixel_contrast(mixed, target)
    loss.backward()
    assert mixed.grad[1].abs().sum() == 0 and mixed.grad[0].abs().sum() > 0


def test_an_unknown_pixel_loss_is_a_clear_error():
    with pytest.raises(BadConfigError, match="pixel_loss"):
        pixel_terms(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4), LocalizerConfig(pixel_loss="hinge"))


def test_self_correlation_finds_a_copied_patch_and_ignores_neighbours():
    torch.manual_seed(0)
    layer = SelfCorrelation(channels=32, topk=2, exclude=1)
    with torch.no_grad():
        layer.project.weight.copy_(torch.eye(32).view(32, 32, 1, 1))
        layer.project.bias.zero_()
    x = torch.randn(1, 32, 12, 12)
    x[..., 1:4, 1:4] = x[..., 8:11, 7:10]
    maps = layer(x)
    assert maps.shape == (1, 2, 12, 12)
    copied = maps[0, 0, 1:4, 1:4].mean()
    elsewhere = maps[0, 0, 5:7, 0:6].mean()
    assert copied > 0.99 and elsewhere < 0.7


def test_self_correlation_pools_large_grids_and_keeps_their_size():
    layer = SelfCorrelation(channels=3, topk=4, max_grid=8)
    maps = layer(torch.randn(2, 3, 40, 24))
    assert maps.shape == (2, 4, 40, 24)


def test_the_recipe_changes_the_pieces_and_the_mask_loss_of_the_model():
    full = ForensixModel.from_config(get_config("tiny", localizer={"correlation_topk": 4, "deep_supervision": 0.5}))
    plain = ForensixModel.from_config(get_config("tiny", localizer={"correlation_topk": 0, "deep_supervision": 0.0}))
    assert full.fl_expert.correlation is not None and plain.fl_expert.correlation is None
    assert full.fl_expert.level_heads is not None and plain.fl_expert.level_heads is None
    assert "fl_expert.correlation" in full.hook_names()
    images = torch.rand(2, 3, 64, 64)
    masks = torch.zeros(2, 1, 64, 64)
    masks[0, :, 10:30, 10:30] = 1
    batch = {"image": images, "mask": masks, "messages": [[], []]}
    out = full(batch, losses=("mask",), mask_source="gt")
    out["loss"].backward()
    assert full.fl_expert.correlation.project.weight.grad is not None
    assert all(h.weight.grad is not None for h in full.fl_expert.level_heads)
    with pytest.raises(BadConfigError, match="correlation_topk"):
        ForensixModel.from_config(get_config("tiny", localizer={"correlation_topk": -1}))


def test_without_semantic_maps_the_mask_reads_the_trace_evidence_only():
    model = ForensixModel.from_config(get_config("tiny", localizer={"semantic_maps": False})).eval()
    pixels = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        before = model.localizer_logits(pixels)
        for p in model.fl_expert.project.parameters():  # the maps' projection no longer reaches the mask
            p.add_(torch.randn_like(p))
        after = model.localizer_logits(pixels)
    torch.testing.assert_close(before, after)
    with_maps = ForensixModel.from_config("tiny")
    assert with_maps.fl_expert.bottleneck[0].in_channels == model.fl_expert.bottleneck[0].in_channels + 2 * len(
        model.fl_expert.project)
