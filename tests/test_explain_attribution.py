"""Token attribution: IG equals captum's per-token loop, completeness, batching, patches, results."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from forensix.errors import BadCheckpointError, BadConfigError
from forensix.explain.captum_reference import captum_token_attribution
from forensix.explain.patch_attribution import attribute_patches
from forensix.explain.replay import P_FAKE
from forensix.explain.token_attribution import TokenAttribution, attribute_tokens, merge_subwords


@pytest.fixture(scope="module")
def analysis(tiny_model):
    img = np.random.default_rng(0).integers(0, 255, (64, 80, 3), dtype=np.uint8)
    return tiny_model.analyze(img, max_new_tokens=3)


def model_state(model):
    hooks = sum(len(getattr(m, d)) for m in model.modules() for d in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks"))
    return (
        [m.training for m in model.modules()],
        [p.requires_grad for p in model.parameters()],
        hooks,
        model.lm.config._attn_implementation,
    )


def rel_max_diff(a, b):
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("baseline", ["zeros", "pad"])  # equal embeddings in tiny (padding_idx row), different code paths
def test_ig_equals_captum_llm_gradient_attribution(tiny_model, analysis, baseline):
    ours = attribute_tokens(tiny_model, analysis, n_steps=4, baseline=baseline)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = captum_token_attribution(tiny_model, analysis, n_steps=4, baseline=baseline)
    n = len(analysis.generated_ids)
    assert ours.scores.shape == (n + 1, len(analysis.prompt_ids))
    assert ours.target_tokens[-1] == P_FAKE and ours.target_index[-1] == -1
    assert rel_max_diff(ours.scores[:n], ref) <= 1e-3


def test_ig_completeness(tiny_model, analysis):
    # a token baseline (id 0 everywhere): smooth path, Gauss-Legendre converges fast. (The zero
    # baseline's path changes mostly near 0, where pre-RMSNorm models are scale invariant.)
    coarse, fine = (attribute_tokens(tiny_model, analysis, n_steps=n, baseline=0) for n in (2, 16))
    delta = fine.target_values - fine.baseline_values
    assert torch.allclose(fine.scores.sum(1), delta, atol=2e-3, rtol=1e-3)
    assert float(fine.completeness_gap.abs().max()) < float(coarse.completeness_gap.abs().max())
    assert fine.baseline == "custom:0"


def test_batched_equals_own_per_token_loop(tiny_model, analysis):
    full = attribute_tokens(tiny_model, analysis, n_steps=4, chunk_size=3)
    rows = [attribute_tokens(tiny_model, analysis, n_steps=4, targets=[t]).scores[0] for t in full.target_index[:-1]]
    rows.append(attribute_tokens(tiny_model, analysis, n_steps=4, targets=[P_FAKE]).scores[0])
    assert torch.allclose(full.scores, torch.stack(rows), rtol=1e-4, atol=1e-6)


def test_result_api_and_round_trip(tiny_model, analysis, tmp_path):
    r = attribute_tokens(tiny_model, analysis, n_steps=2, targets=[0, P_FAKE])
    assert r.image_map(P_FAKE).shape == analysis.image_token_grid
    assert torch.equal(r.image_map(1), r.scores[1, analysis.image_positions].view(analysis.image_token_grid))
    assert r.input_tokens[analysis.image_positions[1]] == "<img 0,1>"
    assert r.input_tokens[analysis.mask_positions[0]] == "<mask 0>"
    long = r.to_frame()
    assert list(long.columns) == ["target", "target_token", "position", "input_token", "kind", "score"]
    assert len(long) == r.scores.numel() and set(long.kind) == {"text", "image", "mask"}
    assert r.to_frame(wide=True).shape == tuple(r.scores.shape)
    w = r.words()
    assert torch.allclose(w.scores.sum(1), r.scores.sum(1), atol=1e-5) and len(w.words) < len(r.input_tokens)
    html = str(getattr(r.show(), "data", r.show()))
    assert "<script" not in html and "http" not in html and "<img 0,0>" not in html  # escaped
    back = TokenAttribution.load(r.save(tmp_path / "attr.safetensors"))
    assert torch.equal(back.scores, r.scores) and back.input_tokens == r.input_tokens and back.image_grid == r.image_grid
    with pytest.raises(BadCheckpointError):
        TokenAttribution.load(tmp_path / "missing.safetensors")


def test_merge_subwords_hand_made():
    tokens = ["<|im_start|>", "Ġfore", "ns", "ix", ",", "Ġan", "Ġimage", "Ċ", "Ġre", "sampling", "<img 0,0>", "ab"]
    assert merge_subwords(tokens) == [[0], [1, 2, 3], [4], [5], [6], [7], [8, 9], [10], [11]]
    assert merge_subwords([" top", "-", "left", " cor", "ner"]) == [[0], [1], [2], [3, 4]]


def test_bad_arguments(tiny_model, analysis):
    with pytest.raises(BadConfigError):
        attribute_tokens(tiny_model, analysis, method="saliency")
    with pytest.raises(BadConfigError):
        attribute_tokens(tiny_model, analysis, targets=[99])
    with pytest.raises(BadConfigError):
        attribute_tokens(tiny_model, analysis, baseline="noise")


@pytest.mark.parametrize("method", ["ablation", "occlusion"])
def test_patch_attribution_shapes_and_identity_baseline(tiny_model, analysis, method):
    img = analysis.image
    r = attribute_patches(tiny_model, img, method=method, batch_size=8)
    s = tiny_model.config.image_size
    g = s // tiny_model.vision.patch_size
    assert r.pixels.shape == (s, s) and r.grid.shape == (g, g) and r.heatmap().shape == img.shape[:2]
    pixels, _ = tiny_model.preprocess(img)
    same = attribute_patches(tiny_model, img, method=method, baselines=pixels, target=0, analysis=analysis)
    assert float(same.pixels.abs().max()) < 1e-5  # occluding with the image itself changes nothing (batched float rounding aside)


def test_model_restored_on_exception(tiny_model, analysis):
    before = model_state(tiny_model)

    def boom(*_):
        raise RuntimeError("injected")

    handle = tiny_model.lm.register_forward_hook(boom)
    try:
        with pytest.raises(RuntimeError, match="injected"):
            attribute_tokens(tiny_model, analysis, n_steps=2)
        with pytest.raises(RuntimeError, match="injected"):
            attribute_patches(tiny_model, analysis.image, target=0, analysis=analysis)
    finally:
        handle.remove()
    assert model_state(tiny_model) == before
    attribute_tokens(tiny_model, analysis, n_steps=2, targets=[0])
    assert model_state(tiny_model) == before
