"""Golden tests of attention rollout / gradient rollout and of the model helpers."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModel, ViTConfig, ViTModel

from forensix.errors import BadConfigError, ForensixError
from forensix.explain import (
    attention_rollout,
    gradient_rollout,
    relevance_to_patches,
    rollout_maps,
    upsample_to_pixels,
    vision_attentions,
)

GRID = (3, 5)


def random_attentions(layers=4, batch=3, heads=2, tokens=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        torch.softmax(3 * torch.randn(batch, heads, tokens, tokens, generator=g, dtype=torch.float64), -1)
        for _ in range(layers)
    ]


def random_gradients(layers=4, batch=3, heads=2, tokens=16, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, heads, tokens, tokens, generator=g, dtype=torch.float64) for _ in range(layers)]


# ---------------------------------------------------------------- naive references (explicit loops)


def naive_rollout(atts, fusion, discard, start, n_prefix):
    atts = [a.numpy() for a in atts]
    n_batch, n_heads, t, _ = atts[0].shape
    out = []
    for b in range(n_batch):
        result = np.eye(t)
        for layer in range(start, len(atts)):
            fused = np.zeros((t, t))
            for i in range(t):
                for j in range(t):
                    vals = [atts[layer][b, h, i, j] for h in range(n_heads)]
                    fused[i, j] = {"mean": sum(vals) / n_heads, "max": max(vals), "min": min(vals)}[fusion]
            if discard > 0:
                m = t - n_prefix - 1 if n_prefix > 0 else t - 1
                k = int(np.floor(discard * m + 1e-9))
                for i in range(t):
                    free = [(fused[i, j], j) for j in range(t) if j != i and j >= n_prefix]
                    for _, j in sorted(free)[:k]:
                        fused[i, j] = 0.0
            a_hat = fused + np.eye(t)
            for i in range(t):
                a_hat[i] = a_hat[i] / a_hat[i].sum()
            result = a_hat @ result
        out.append(result)
    return np.stack(out)


def naive_grad_rollout(atts, grads, start):
    n_batch, n_heads, t, _ = atts[0].shape
    out = []
    for b in range(n_batch):
        result = np.eye(t)
        for layer in range(start, len(atts)):
            cam = np.zeros((t, t))
            for h in range(n_heads):
                cam += np.maximum(grads[layer][b, h].numpy() * atts[layer][b, h].numpy(), 0)
            cam /= n_heads
            result = result + cam @ result
        out.append(result)
    return np.stack(out)


def vit_explain_rollout(atts, fusion):
    """vit-explain's rollout (batch 1 at a time): rows 'normalised' without keepdim, which
    divides column j by the sum of row j."""
    t = atts[0].shape[-1]
    out = []
    for b in range(atts[0].shape[0]):
        result = torch.eye(t, dtype=atts[0].dtype)
        for a in atts:
            fused = {"mean": a[b].mean(0), "max": a[b].amax(0), "min": a[b].amin(0)}[fusion]
            a_hat = (fused + torch.eye(t, dtype=a.dtype)) / 2
            a_hat = a_hat / a_hat.sum(dim=-1)
            result = a_hat @ result
        out.append(result)
    return torch.stack(out)


# ---------------------------------------------------------------- rollout math


@pytest.mark.parametrize("fusion", ["mean", "max", "min"])
@pytest.mark.parametrize("discard", [0.0, 0.4])
@pytest.mark.parametrize("start", [0, 2])
@pytest.mark.parametrize("n_prefix", [1, 0])
def test_rollout_matches_naive_reference(fusion, discard, start, n_prefix):
    tokens = n_prefix + GRID[0] * GRID[1]
    atts = random_attentions(tokens=tokens)
    got = attention_rollout(atts, head_fusion=fusion, discard_ratio=discard, start_layer=start, n_prefix_tokens=n_prefix)
    want = naive_rollout(atts, fusion, discard, start, n_prefix)
    assert got.shape == (3, tokens, tokens)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.sum(-1).numpy(), 1.0, rtol=1e-10)  # products of row-stochastic matrices


def test_discard_keeps_cls_column_and_diagonal():
    atts = random_attentions(layers=1, tokens=16)
    r = attention_rollout(atts, head_fusion="mean", discard_ratio=0.9, n_prefix_tokens=1)
    assert (r[:, :, 0] > 0).all() and (torch.diagonal(r, dim1=-2, dim2=-1) > 0).all()
    # 0.9 of the 14 free entries per row = 12 zeroed, 2 + CLS + self left
    assert ((r > 0).sum(-1)[:, 1:] == 4).all()


def test_vit_explain_no_keepdim_differs():
    atts = random_attentions(tokens=16)
    ours = attention_rollout(atts, head_fusion="max")
    theirs = vit_explain_rollout(atts, "max")
    assert not torch.allclose(ours, theirs, atol=1e-3)
    assert not torch.allclose(theirs.sum(-1), torch.ones(3, 16, dtype=theirs.dtype), atol=1e-3)
    # with mean fusion of softmax rows every row of A + I sums to 2, so the bug is invisible there
    torch.testing.assert_close(attention_rollout(atts, head_fusion="mean"), vit_explain_rollout(atts, "mean"))


@pytest.mark.parametrize("start", [0, 1])
def test_gradient_rollout_matches_naive_reference(start):
    atts, grads = random_attentions(), random_gradients()
    got = gradient_rollout(atts, grads, start_layer=start)
    np.testing.assert_allclose(got.numpy(), naive_grad_rollout(atts, grads, start), rtol=1e-10, atol=1e-12)


def test_gradient_rollout_pairs_each_layer_with_its_own_gradient():
    atts = random_attentions(layers=3)
    # gradient positive on layer 0 only: own pairing keeps layer 0's attention, reversed pairs it with layer 2
    grads = [torch.ones_like(atts[0]), -torch.ones_like(atts[1]), -torch.ones_like(atts[2])]
    ours = gradient_rollout(atts, grads)
    reversed_pairing = naive_grad_rollout(atts, grads[::-1], 0)
    np.testing.assert_allclose(ours.numpy(), np.eye(16) + atts[0].mean(1).numpy(), rtol=1e-10)
    assert not np.allclose(ours.numpy(), reversed_pairing, atol=1e-3)


def test_relevance_to_patches_cls_and_mean_on_non_square_grid():
    r = torch.rand(3, 16, 16, dtype=torch.float64)
    cls = relevance_to_patches(r, grid=GRID, n_prefix_tokens=1)
    assert cls.shape == (3, 3, 5)
    for b in range(3):
        for i in range(3):
            for j in range(5):
                assert cls[b, i, j] == r[b, 0, 1 + i * 5 + j]
    r0 = torch.rand(2, 15, 15, dtype=torch.float64)
    mean = relevance_to_patches(r0, grid=GRID, n_prefix_tokens=0)  # no CLS: mean over patch rows
    torch.testing.assert_close(mean, r0.mean(1).reshape(2, 3, 5))
    with pytest.raises(BadConfigError, match="query='cls'"):
        relevance_to_patches(r0, grid=GRID, n_prefix_tokens=0, query="cls")
    with pytest.raises(BadConfigError, match="grid"):
        relevance_to_patches(r, grid=(4, 4), n_prefix_tokens=1)


def test_upsample_to_pixels_normalises_each_map():
    maps = torch.stack([torch.arange(15.0).reshape(3, 5), torch.full((3, 5), 2.0)])
    up = upsample_to_pixels(maps, size=(24, 40))
    assert up.shape == (2, 24, 40)
    assert up[0].min() == 0 and up[0].max() == 1
    assert (up[1] == 0).all()  # constant map


def test_bad_arguments_raise_forensix_errors():
    atts = random_attentions(layers=2)
    for kwargs in ({"head_fusion": "median"}, {"discard_ratio": 1.0}, {"start_layer": 2}):
        with pytest.raises(ForensixError):
            attention_rollout(atts, **kwargs)
    with pytest.raises(ForensixError):
        attention_rollout([])
    with pytest.raises(ForensixError):
        gradient_rollout(atts, atts[:1])


# ---------------------------------------------------------------- model helpers


def tiny_vit():
    torch.manual_seed(0)
    cfg = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    return ViTModel(cfg)


def tiny_clip():
    torch.manual_seed(0)
    cfg = CLIPVisionConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    return CLIPVisionModel(cfg)


def snapshot(model):
    return {
        "attn": [m.config._attn_implementation for m in model.modules() if hasattr(m, "config")],
        "training": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "hooks": [
            (sorted(m._forward_hooks), sorted(m._forward_pre_hooks), sorted(m._backward_hooks)) for m in model.modules()
        ],
        "capture_flag": [m.__dict__.get("_output_capturing_hooks_installed") for m in model.modules()],
        "grads": [p.grad for p in model.parameters()],
    }


@pytest.mark.parametrize("make", [tiny_vit, tiny_clip], ids=["vit", "clip"])
@pytest.mark.parametrize("method", ["rollout", "grad"])
@pytest.mark.parametrize("size", [(32, 32), (24, 40)])
def test_rollout_maps_on_tiny_models(make, method, size):
    model = make().train()
    list(model.modules())[3].eval()  # mixed training flags must come back as they were
    next(iter(model.parameters())).requires_grad_(False)
    before = snapshot(model)
    assert before["attn"][0] == "sdpa"
    x = torch.rand(2, 3, *size)
    r = rollout_maps(model, x, method=method)
    grid = (size[0] // 8, size[1] // 8)
    assert r.grid == grid and r.n_prefix_tokens == 1
    assert r.patch.shape == (2, *grid) and r.pixel.shape == (2, *size)
    assert torch.isfinite(r.patch).all() and r.pixel.min() >= 0 and r.pixel.max() <= 1
    assert snapshot(model) == before
    if method == "rollout":  # same as rolling out the captured attentions by hand
        atts = vision_attentions(model, x)
        assert len(atts) == 2 and atts[0].shape == (2, 2, 1 + grid[0] * grid[1], 1 + grid[0] * grid[1])
        torch.testing.assert_close(atts[0].sum(-1), torch.ones(2, 2, atts[0].shape[-1]))
        want = relevance_to_patches(attention_rollout(atts), grid=grid)
        torch.testing.assert_close(r.patch, want)


def test_gradients_match_plain_backward():
    model = tiny_vit()
    x = torch.rand(2, 3, 24, 40)
    atts, grads = vision_attentions(model, x, with_grad=True)
    ref = copy.deepcopy(model).eval()
    ref.config._attn_implementation = "eager"
    out = ref(x, output_attentions=True, interpolate_pos_encoding=True)
    for a in out.attentions:
        a.retain_grad()
    out.pooler_output.norm(dim=-1).sum().backward()
    for a, ra in zip(atts, out.attentions):
        torch.testing.assert_close(a, ra.detach())
    for g, ra in zip(grads, out.attentions):
        torch.testing.assert_close(g, ra.grad)
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("make", [tiny_vit, tiny_clip], ids=["vit", "clip"])
@pytest.mark.parametrize("method", ["rollout", "grad"])
def test_model_restored_when_forward_raises(make, method):
    model = make().train()
    seen = {}

    def boom(module, args):
        seen["attn"] = model.config._attn_implementation
        seen["training"] = model.training
        raise RuntimeError("injected failure")

    layer = [m for m in model.modules() if isinstance(m, nn.ModuleList)][0][1]
    handle = layer.register_forward_pre_hook(boom)
    before = snapshot(model)
    with pytest.raises(RuntimeError, match="injected failure"):
        rollout_maps(model, torch.rand(2, 3, 32, 32), method=method)
    assert seen == {"attn": "eager", "training": False}  # the switch happened inside
    assert snapshot(model) == before
    handle.remove()


def test_custom_encoder_without_config_needs_a_square_grid_or_grid():
    class Encoder(nn.Module):
        """Any module returning ``attentions``: here 2 layers over 3x5 patches, no CLS token."""

        def forward(self, x, output_attentions=False):
            b = x.shape[0]
            att = torch.softmax(torch.randn(b, 1, 15, 15), -1)
            return {"last_hidden_state": x.flatten(1), "attentions": (att, att)}

    r = rollout_maps(Encoder(), torch.rand(2, 3, 24, 40), grid=(3, 5), n_prefix_tokens=0)
    assert r.patch.shape == (2, 3, 5) and r.pixel.shape == (2, 24, 40)
    with pytest.raises(BadConfigError, match="grid"):
        rollout_maps(Encoder(), torch.rand(2, 3, 24, 40))
