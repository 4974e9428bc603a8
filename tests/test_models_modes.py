"""Leave the model as you found it (:mod:`forensix.models.modes`): eval mode, preserved state, the
attention backend and analysis mode restore everything they change, also when the body raises."""

from __future__ import annotations

import pytest
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModel, ViTConfig, ViTModel

from forensix.hooks import attention_implementation
from forensix.models.modes import analysis_mode, eval_mode, preserved_model_state


def tiny_vit():
    return ViTModel(ViTConfig(image_size=16, patch_size=8, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                              intermediate_size=16, attn_implementation="sdpa"), add_pooling_layer=False)


def tiny_clip():
    return CLIPVisionModel(CLIPVisionConfig(image_size=16, patch_size=8, hidden_size=8, num_hidden_layers=1,
                                            num_attention_heads=2, intermediate_size=16, attn_implementation="sdpa"))


def test_eval_mode_gives_every_submodule_its_own_flag_back_after_an_error():
    net = nn.Sequential(nn.Dropout(), nn.Dropout())
    net[1].eval()
    with pytest.raises(RuntimeError), eval_mode(net):
        assert not net[0].training
        raise RuntimeError("boom")
    assert (net[0].training, net[1].training) == (True, False)


def test_preserved_state_restores_flags_grads_and_removes_new_hooks():
    net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)).train()
    net[1].weight.requires_grad_(False)
    with pytest.raises(RuntimeError), preserved_model_state(net):
        net.eval()
        for p in net.parameters():
            p.requires_grad_(True)
        net[0].register_forward_hook(lambda *args: None)
        raise RuntimeError("boom")
    assert net.training and net[0].weight.requires_grad and not net[1].weight.requires_grad
    assert not net[0]._forward_hooks


def test_analysis_mode_freezes_and_switches_the_language_model_backend_then_restores():
    class Composite(nn.Module):
        def __init__(self):
            super().__init__()
            self.lm, self.head = tiny_vit(), nn.Linear(2, 2)

    model = Composite().train()
    with analysis_mode(model):
        assert not model.training and not any(p.requires_grad for p in model.parameters())
        assert model.lm.config._attn_implementation == "eager"
    assert model.training and all(p.requires_grad for p in model.parameters())
    assert model.lm.config._attn_implementation == "sdpa"
    with analysis_mode(model, backend=None):
        assert model.lm.config._attn_implementation == "sdpa"


def test_the_eager_backend_covers_composite_modules_and_restores_on_error():
    class Composite(nn.Module):
        def __init__(self):
            super().__init__()
            self.vision, self.other = tiny_vit(), tiny_clip()

    model = Composite()
    with pytest.raises(KeyError):
        with attention_implementation(model, "eager"):
            assert model.vision.config._attn_implementation == "eager"
            assert model.other.config._attn_implementation == "eager"
            raise KeyError("boom")
    assert model.vision.config._attn_implementation == "sdpa"
    assert model.other.config._attn_implementation == "sdpa"
