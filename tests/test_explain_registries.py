"""Registries of explanation methods: listing, lookup (a registered method is what runs), unknown names."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from transformers import ViTConfig, ViTModel

import forensix.explain as explain
from forensix.errors import BadConfigError, ForensixError, UnknownMethodError
from forensix.explain.grounding import GROUNDING_METHODS, GroundingMaps, ground, list_grounding_methods
from forensix.explain.registry import lookup
from forensix.explain.rollout import (HEAD_FUSIONS, ROLLOUT_METHODS, RolloutVariant, attention_rollout, fuse_heads,
                                      list_rollout_methods, rollout_maps)
from forensix.explain.token_attribution import (ATTRIBUTION_METHODS, AttributionScores, attribute_tokens,
                                                list_attribution_methods)


def tiny_vit():
    torch.manual_seed(0)
    return ViTModel(ViTConfig(image_size=16, patch_size=8, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
                              intermediate_size=8))


@pytest.mark.parametrize(("listed", "registry", "expected"), [
    (list_grounding_methods, GROUNDING_METHODS, ["attention", "gradient"]),
    (list_attribution_methods, ATTRIBUTION_METHODS, ["ig"]),
    (list_rollout_methods, ROLLOUT_METHODS, ["grad", "rollout"]),
])
def test_listing_names_every_registered_method(listed, registry, expected):
    assert listed() == sorted(registry) == expected
    assert getattr(explain, listed.__name__) is listed


def test_lookup_returns_the_registered_entry():
    assert lookup(GROUNDING_METHODS, "gradient", argument="method", kind="grounding method") is GROUNDING_METHODS["gradient"]
    assert all(callable(m) for m in [*GROUNDING_METHODS.values(), *ATTRIBUTION_METHODS.values(), *HEAD_FUSIONS.values()])
    assert all(isinstance(v, RolloutVariant) and callable(v.combine) for v in ROLLOUT_METHODS.values())


@pytest.mark.parametrize(("call", "argument", "choices"), [
    (lambda: ground(None, method="saliency"), "method", list_grounding_methods()),
    (lambda: attribute_tokens(None, None, method="saliency"), "method", list_attribution_methods()),
    (lambda: rollout_maps(None, torch.rand(1, 3, 16, 16), method="saliency"), "method", list_rollout_methods()),
    (lambda: fuse_heads(torch.ones(1, 2, 3, 3), "median"), "head_fusion", sorted(HEAD_FUSIONS)),
    (lambda: attention_rollout([torch.ones(1, 2, 3, 3)], head_fusion="median"), "head_fusion", sorted(HEAD_FUSIONS)),
])
def test_unknown_name_names_the_argument_and_the_choices(call, argument, choices):
    with pytest.raises(UnknownMethodError) as info:
        call()
    assert isinstance(info.value, BadConfigError) and isinstance(info.value, ForensixError)
    message = str(info.value)
    assert f"{argument}='" in message and str(choices) in message


def test_unknown_name_of_another_type_is_the_same_error():
    with pytest.raises(UnknownMethodError, match="method=None"):
        lookup(GROUNDING_METHODS, None, argument="method", kind="grounding method")


def test_ground_runs_a_newly_registered_method(monkeypatch):
    seen = {}

    def constant(analysis, model, settings):
        seen["settings"] = settings
        return GroundingMaps(torch.full((1, 4, 4), 0.5), torch.zeros(1, 2, 2), torch.zeros(1))

    monkeypatch.setitem(GROUNDING_METHODS, "constant", constant)
    analysis = SimpleNamespace(generated_tokens=["fake"], image=np.zeros((4, 4, 3), np.uint8))
    g = ground(analysis, method="constant", layers=[-1], sigma=2.0)
    assert g.method == "constant" and float(g.maps.mean()) == 0.5
    assert seen["settings"].layers == (-1,) and seen["settings"].sigma == 2.0
    assert "constant" in list_grounding_methods()


def test_attribute_tokens_runs_a_newly_registered_method(monkeypatch, tiny_model):
    def uniform(model, forced, targets, settings):
        n = len(forced.prompt_ids)
        return AttributionScores(torch.ones(len(targets), n) / n, torch.ones(len(targets)), torch.zeros(len(targets)))

    monkeypatch.setitem(ATTRIBUTION_METHODS, "uniform", uniform)
    analysis = tiny_model.analyze(np.zeros((64, 64, 3), np.uint8), max_new_tokens=2)
    attr = attribute_tokens(tiny_model, analysis, method="uniform", targets=["p_fake"])
    assert attr.method == "uniform" and torch.allclose(attr.completeness_gap, torch.zeros(1), atol=1e-6)


def test_rollout_maps_runs_a_newly_registered_variant(monkeypatch):
    calls = []

    def identity(attentions, gradients, n_prefix, settings):
        calls.append((gradients is not None, n_prefix, settings.start_layer))
        b, _, t, _ = attentions[0].shape
        return torch.eye(t).expand(b, t, t)

    monkeypatch.setitem(ROLLOUT_METHODS, "identity", RolloutVariant(needs_gradients=True, combine=identity))
    r = rollout_maps(tiny_vit(), torch.rand(1, 3, 16, 16), method="identity", start_layer=1)
    assert calls == [(True, 1, 1)] and r.method == "identity" and r.patch.shape == (1, 2, 2)
