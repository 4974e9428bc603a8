"""Hook points (:mod:`forensix.hooks`): the primitives on plain modules, then every named point of
the composite model, the activation cache, edits through hooks, restoration after errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from transformers import ViTConfig, ViTModel

from forensix.errors import BadConfigError, UnknownHookError
from forensix.hooks import Cache, HookedModule, HookPoint, add_hooks, attention_implementation, resolve_names


class TwoLayers(HookedModule):
    def __init__(self) -> None:
        super().__init__()
        self.first, self.second = nn.Linear(3, 3), nn.Linear(3, 2)
        self.hook_hidden, self.hook_out = HookPoint("two.hidden"), HookPoint("two.out")
        self.setup_hooks()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hook_out(self.second(self.hook_hidden(torch.relu(self.first(x)))))


def test_a_hooked_module_finds_its_named_points_and_caches_them():
    model, x = TwoLayers(), torch.randn(4, 3)
    assert model.hook_names() == ["two.hidden", "two.out"]
    out, cache = model.run_with_cache(x)
    assert isinstance(cache, Cache) and set(cache) == {"two.hidden", "two.out"}
    assert torch.equal(cache["two.out"], out) and not cache["two.out"].requires_grad
    _, only = model.run_with_cache(x, "two.hid*")
    assert set(only) == {"two.hidden"}


def test_a_hook_that_returns_a_tensor_replaces_the_value_and_is_removed_after():
    model, x = TwoLayers(), torch.randn(4, 3)
    plain = model(x)
    with model.hooks([("two.hidden", lambda t, hook: torch.zeros_like(t))]):
        edited = model(x)
    assert torch.allclose(edited, model.second.bias.expand_as(edited))
    assert torch.equal(model(x), plain) and not model.hook_hidden.has_hooks


def test_hooks_are_removed_when_the_body_raises():
    point = HookPoint("p")
    with pytest.raises(RuntimeError), add_hooks({"p": point}, [("p", lambda t, hook: t + 1)]):
        assert point.has_hooks
        raise RuntimeError("boom")
    assert not point.has_hooks


def test_names_resolve_by_glob_and_an_unknown_name_suggests_near_ones():
    names = ["lm.layers.0.out", "lm.layers.1.out", "lm.logits"]
    assert resolve_names("lm.layers.*.out", names) == ["lm.layers.0.out", "lm.layers.1.out"]
    with pytest.raises(UnknownHookError, match="lm.logits"):
        resolve_names("lm.logit", names)


def test_attention_backend_switches_every_config_and_restores_also_on_error():
    vit = ViTModel(ViTConfig(image_size=16, patch_size=8, hidden_size=8, num_hidden_layers=1,
                             num_attention_heads=2, intermediate_size=16))
    before = vit.config._attn_implementation
    with pytest.raises(KeyError), attention_implementation(nn.ModuleDict({"vit": vit}), "eager"):
        assert vit.config._attn_implementation == "eager"
        raise KeyError("boom")
    assert vit.config._attn_implementation == before
    with pytest.raises(BadConfigError, match="no-such-backend"), attention_implementation(vit, "no-such-backend"):
        pass


# ------------------------------------------------------------------------------------------ the composite model

EXPECTED_TINY_HOOKS = [
    "vision.embed",
    "vision.blocks.0.attn.pattern", "vision.blocks.0.out", "vision.blocks.1.attn.pattern", "vision.blocks.1.out",
    "trace.dct", "trace.residuals", "trace.out", "vision.fused", "prompts.embeddings",
    "fl_expert.similarity.0", "fl_expert.similarity.1", "fl_expert.correlation", "fl_expert.mask_logits",
    "mask_encoder.region", "mask_encoder.tokens", "clue_head.input", "clue_head.logits", "projector.out",
    "lm.embed_tokens", "lm.layers.0.attn.pattern", "lm.layers.0.out", "lm.layers.1.attn.pattern", "lm.layers.1.out",
    "lm.logits",
]


def test_hook_names_complete_and_stable(tiny_model):
    assert tiny_model.hook_names() == EXPECTED_TINY_HOOKS


def test_cache_holds_the_tensors_the_forward_used(tiny_model, stage2_batch):
    tiny_model.eval()
    out, cache = tiny_model.run_with_cache(stage2_batch, names_filter=["fl_expert.mask_logits", "clue_head.logits", "lm.logits"])
    assert set(cache) == {"fl_expert.mask_logits", "clue_head.logits", "lm.logits"}
    torch.testing.assert_close(cache["fl_expert.mask_logits"], out["mask_logits"].detach(), rtol=0, atol=0)
    torch.testing.assert_close(cache["clue_head.logits"], out["clue_logits"].detach(), rtol=0, atol=0)
    assert cache["lm.logits"].shape[:2] == (3, cache["lm.logits"].shape[1])


def test_full_cache_captures_attention_patterns_and_restores_backend(tiny_model, stage2_batch):
    before = (tiny_model.lm.config._attn_implementation, tiny_model.vision.model.config._attn_implementation)
    _, cache = tiny_model.run_with_cache(stage2_batch)
    assert set(cache) == set(EXPECTED_TINY_HOOKS)
    pattern = cache["lm.layers.1.attn.pattern"]
    assert pattern.ndim == 4 and torch.allclose(pattern.sum(-1)[0, :, :5], torch.ones(1))
    assert cache["vision.blocks.0.attn.pattern"].shape == (3, 2, 17, 17)
    assert (tiny_model.lm.config._attn_implementation, tiny_model.vision.model.config._attn_implementation) == before


def test_hook_can_edit_the_forward(tiny_model, stage2_batch):
    tiny_model.eval()
    with torch.no_grad():
        base = tiny_model(stage2_batch, losses=("mask",))["losses"]["mask"]
        with tiny_model.hooks([("fl_expert.mask_logits", lambda t, hook: torch.full_like(t, -20.0))]):
            edited = tiny_model(stage2_batch, losses=("mask",))
    assert (edited["mask_logits"] == -20).all()
    assert not torch.isclose(base, edited["losses"]["mask"])


def test_editing_an_attention_pattern_changes_the_lm(tiny_model, stage2_batch):
    tiny_model.eval()

    def uniform(t, hook):
        causal = torch.ones_like(t).tril(diagonal=t.shape[-1] - t.shape[-2])
        return causal / causal.sum(-1, keepdim=True)

    with torch.no_grad():
        _, base = tiny_model.run_with_cache(stage2_batch, "lm.logits", losses=("lm",))
        with tiny_model.hooks([("lm.layers.*.attn.pattern", uniform)]):
            _, edited = tiny_model.run_with_cache(stage2_batch, "lm.logits", losses=("lm",))
    assert (base["lm.logits"] - edited["lm.logits"]).abs().max() > 1e-4


def test_hooks_removed_and_model_restored_after_an_exception(tiny_model, stage2_batch):
    tiny_model.train()
    before = tiny_model.lm.config._attn_implementation

    def boom(t, hook):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        with tiny_model.hooks([("lm.layers.0.attn.pattern", boom)]):
            tiny_model(stage2_batch, losses=("lm",))
    assert all(not hp._forward_hooks for hp in tiny_model._hook_points.values())
    assert tiny_model.lm.config._attn_implementation == before
    assert tiny_model.training
    with pytest.raises(RuntimeError, match="boom"):
        with tiny_model.hooks([("trace.out", boom)]):
            tiny_model.analyze(np.zeros((64, 64, 3), np.uint8))
    assert all(not hp._forward_hooks for hp in tiny_model._hook_points.values())
    assert tiny_model.training, "analyze must restore training mode even when it raises"
    tiny_model.eval()


def test_unknown_hook_name_is_a_clear_error(tiny_model):
    with pytest.raises(UnknownHookError, match="fl_expert.mask_logits"):
        with tiny_model.hooks([("fl_expert.mask_logit", lambda t, h: None)]):
            pass
