"""Grounding maps: shapes, no extra pass, metrics table, HTML, round trip, restoration."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forensix.errors import BadConfigError
from forensix.explain.grounding import Grounding, ground, location_token_indices, pooling_matrix


@pytest.fixture(scope="module")
def analysis(tiny_model):
    img = np.random.default_rng(1).integers(0, 255, (48, 72, 3), dtype=np.uint8)
    return tiny_model.analyze(img, max_new_tokens=4)


def count_lm_calls(model):
    calls = []
    return calls, model.lm.register_forward_hook(lambda *_: calls.append(1))


@pytest.mark.parametrize("method", ["attention", "gradient"])
def test_maps_for_every_token(tiny_model, analysis, method):
    g = ground(analysis, method=method, model=tiny_model)
    n = len(analysis.generated_ids)
    assert g.maps.shape == (n, 48, 72) and g.tokens == analysis.generated_tokens
    assert float(g.maps.min()) >= 0.0 and float(g.maps.max()) <= 1.0
    assert torch.allclose(g.maps.flatten(1).amax(1), torch.ones(n))
    assert g.map_for(0).shape == (48, 72)


def test_attention_method_runs_no_model_pass(tiny_model, analysis):
    calls, handle = count_lm_calls(tiny_model)
    try:
        g = ground(analysis, head_fusion="max", layers=[-1], rollout_start=1)
    finally:
        handle.remove()
    assert calls == [] and g.maps.shape[0] == len(analysis.generated_ids)
    assert ((g.mask_share > 0) & (g.mask_share < 1)).all()


def test_attention_composition_on_hand_made_analysis():
    from forensix.models.analysis import Analysis

    # one token attending only to image token (0, 0) of a 2x2 token grid over a 4x4 patch grid, identity vision attention
    att = torch.zeros(1, 1, 1, 6)
    att[..., 0] = 1.0
    vis = [torch.eye(17)[None]]
    a = Analysis(image=np.zeros((64, 64, 3), np.uint8), question="q", text="x", mask_probs=np.zeros((64, 64), np.float32),
                 p_fake=0.5, generated_ids=[1], generated_tokens=["x"], image_positions=[0, 1, 2, 3], mask_positions=[4, 5],
                 image_token_grid=(2, 2), slot_attention=att, vision_attention=vis, vision_grid=(4, 4))
    g = ground(a)
    assert torch.allclose(g.patch_maps[0][:2, :2], torch.full((2, 2), 0.25)) and float(g.patch_maps[0][2:].sum()) == 0
    assert float(g.maps[0, :24, :24].min()) > 0.5 and float(g.maps[0, 40:, 40:].max()) == 0.0
    assert torch.allclose(pooling_matrix((4, 4), (2, 2)).sum(1), torch.ones(4, dtype=torch.float64))


def test_region_word_attention_lands_on_the_binary_mask_the_words_state():
    from forensix.models.analysis import Analysis

    # slots: 4 image tokens, 2 mask tokens, 3 region words; the token attends 0.5 to the mask tokens, 0.5 to the words
    att = torch.zeros(1, 1, 1, 9)
    att[..., 4:6] = 0.25
    att[..., 6:] = 0.5 / 3
    probs = np.zeros((64, 64), np.float32)
    probs[:, :32] = 0.2  # weak probabilities over the left half
    probs[:16, :16] = 0.9  # the binary mask (threshold 0.5): the top-left corner
    a = Analysis(image=np.zeros((64, 64, 3), np.uint8), question="q", text="x", mask_probs=probs, p_fake=0.5, threshold=0.5,
                 generated_ids=[1], generated_tokens=["x"], image_positions=[0, 1, 2, 3], mask_positions=[4, 5],
                 region_positions=[7, 8, 9], image_token_grid=(2, 2), slot_attention=att,
                 vision_attention=[torch.eye(17)[None]], vision_grid=(4, 4))
    g = ground(a)
    inside = 0.5 * 0.9 / probs.sum() + 0.5 / 256  # mask part over the probabilities + region part over the 16x16 mask
    left = 0.5 * 0.2 / probs.sum()
    assert float(g.mask_share[0]) == pytest.approx(1.0)
    assert float(g.maps[0, 0, 0]) == pytest.approx(1.0) and float(g.maps[0, 40, 8]) == pytest.approx(left / inside, rel=1e-5)
    assert float(g.maps[0, :, 32:].max()) == 0.0
    with pytest.raises(BadConfigError, match="3 region words"):
        ground(Analysis(**{**a.__dict__, "slot_attention": att[..., :8]}))


def test_evaluate_table(tiny_model, analysis):
    g = ground(analysis)
    mask = np.zeros((48, 72), np.uint8)
    mask[8:30, 10:40] = 1
    t = g.evaluate(mask)
    assert list(t.columns) == ["index", "token", "is_location", "pointing", "energy", "auroc"] and len(t) == len(g.tokens)
    assert t.energy.between(0, 1).all()
    d = g.evaluate(mask, model=tiny_model, deletion=True, tokens=[0], deletion_steps=4)
    assert {"deletion_auc", "insertion_auc"} <= set(d.columns) and len(d) == 1
    with pytest.raises(BadConfigError):
        g.evaluate(mask, deletion=True)
    assert list(g.to_frame().columns) == ["index", "token", "is_location", "peak_row", "peak_col", "mask_share"]


def test_location_tokens():
    toks = [" The", " region", " in", " the", " upper", " left", " corner", ",", " near", " the", " Bottom", "-", "right", " edge"]
    assert location_token_indices(toks) == [4, 5, 6, 10, 12, 13]
    assert location_token_indices(["Ġcenter", "ed", "Ġcentury"]) == [0]


def test_show_and_round_trip(analysis, tmp_path):
    g = ground(analysis)
    html = str(getattr(g.show(), "data", g.show()))
    assert html.count("data:image/png;base64,") == len(g.tokens) and "<script" not in html and "http" not in html
    back = Grounding.load(g.save(tmp_path / "g.safetensors"))
    assert torch.equal(back.maps, g.maps) and back.tokens == g.tokens and np.array_equal(back.image, g.image)


def test_errors_and_restoration(tiny_model, analysis):
    with pytest.raises(BadConfigError):
        ground(analysis, method="gradient")
    with pytest.raises(BadConfigError):
        ground(analysis, layers=[7])
    before = ([m.training for m in tiny_model.modules()], [p.requires_grad for p in tiny_model.parameters()],
              tiny_model.lm.config._attn_implementation)

    def boom(*_):
        raise RuntimeError("injected")

    handle = tiny_model.lm.register_forward_hook(boom)
    try:
        with pytest.raises(RuntimeError, match="injected"):
            ground(analysis, method="gradient", model=tiny_model)
    finally:
        handle.remove()
    after = ([m.training for m in tiny_model.modules()], [p.requires_grad for p in tiny_model.parameters()],
             tiny_model.lm.config._attn_implementation)
    assert after == before
    assert not tiny_model.lm._forward_hooks
