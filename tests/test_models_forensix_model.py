"""The composite model: shapes, save/load, p_fake, overfitting, heads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forensix.config import get_config
from forensix.errors import BadCheckpointError, BadPromptError
from forensix.models import ForensixModel


@pytest.mark.parametrize("batch,height,width", [(1, 64, 64), (3, 64, 64), (3, 64, 96), (1, 96, 48)])
def test_vision_side_shapes(tiny_model, batch, height, width):
    cfg = tiny_model.config
    with torch.no_grad():
        out = tiny_model.encode_image(torch.rand(batch, 3, height, width))
    assert out.mask_logits.shape == (batch, 1, height, width)
    assert out.clue_logits.shape[0] == batch
    assert out.image_tokens.shape == (batch, cfg.image_token_grid**2, tiny_model.lm.config.hidden_size)
    assert out.mask_tokens.shape == (batch, cfg.mask_encoder.num_tokens, tiny_model.lm.config.hidden_size)


def test_p_fake_is_the_two_token_softmax_of_the_logits(tiny_model):
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    _, cache = tiny_model.run_with_cache(image, names_filter="lm.logits")
    first = cache["lm.logits"][0] if isinstance(cache["lm.logits"], list) else cache["lm.logits"]
    last = first[0, -1].double()
    fake, real = tiny_model._answer_ids["fake"][0], tiny_model._answer_ids["real"][0]
    log_probs = last.log_softmax(-1)
    by_hand = float(torch.exp(log_probs[fake]) / (torch.exp(log_probs[fake]) + torch.exp(log_probs[real])))
    analysis = tiny_model.analyze(image, capture_attention=False)
    assert analysis.p_fake == pytest.approx(by_hand, abs=1e-5)
    from forensix.data.conversations import DETECTION_QUESTION

    same_question = tiny_model.analyze(image, DETECTION_QUESTION, capture_attention=False)
    assert tiny_model.detect([image])[0] == pytest.approx(same_question.p_fake, abs=1e-5)


def test_detect_reads_the_given_masks_instead_of_the_predicted_ones(tiny_model):
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    region = np.zeros((64, 64), bool)
    region[8:30, 20:50] = True
    given = tiny_model.detect([image, image], masks=[region, np.zeros_like(region)])
    with torch.no_grad():
        pixels, _ = tiny_model.preprocess([image])
        by_hand = tiny_model.p_fake(tiny_model.encode_image(pixels, torch.from_numpy(region).float()[None, None]))
    assert given[0] == pytest.approx(float(by_hand), abs=1e-6)
    assert given[0] != pytest.approx(given[1], abs=1e-6)  # the mask tokens reach the verdict
    assert tiny_model.detect([image])[0] != pytest.approx(given[0], abs=1e-6)
    large = np.kron(image, np.ones((2, 2, 1), np.uint8))  # each mask goes with its image and is resized with it
    assert tiny_model.detect([large], masks=[np.kron(region, np.ones((2, 2), bool))]).shape == (1,)


def test_region_words_describe_the_mask_the_mask_encoder_reads(fresh_tiny_model):
    model = fresh_tiny_model
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    region = np.zeros((64, 64), np.float32)
    region[44:, 44:] = 1  # bottom-right corner, 400 of 4096 pixels
    pixels, _ = model.preprocess([image])
    with torch.no_grad():
        given = model.encode_image(pixels, torch.from_numpy(region)[None, None])
        predicted = model.encode_image(pixels)
    assert model.prompter_words(given)[0][0] == ""  # region words are off until stage 3
    model.config.region_in_prompt = True
    region, clues = model.prompter_words(given)[0]
    assert region.startswith(" Region: in the bottom-right of the image") and "about 10% of the image" in region
    assert clues == model.clue_text(given.clue_logits)[0]
    model.config.mask_threshold = 1.01  # nothing of the predicted mask passes: the prompter says so
    assert model.region_text(predicted.region_mask) == [" Region: none."]
    model.config.mask_threshold = 0.0  # every pixel passes
    assert model.region_text(predicted.region_mask)[0].endswith("a large area (about 100% of the image).")
    a = model.analyze(image)
    prompt = model.tokenizer.decode(a.prompt_ids)
    assert "(about 100% of the image). Clues:" in prompt
    words = model.tokenizer.decode([a.prompt_ids[p] for p in a.region_positions])
    assert words.startswith(" Region:") and words.endswith("(about 100% of the image).")
    assert a.region_positions[0] == a.mask_positions[-1] + 1
    assert a.slot_attention.shape[-1] == len(a.image_positions) + len(a.mask_positions) + len(a.region_positions)


def test_a_batch_whose_answers_are_all_cut_is_a_clear_error(fresh_tiny_model, stage2_batch):
    model = fresh_tiny_model
    with torch.no_grad():
        vision = model.encode_image(stage2_batch["image"])
    tokens = model.tokenize(stage2_batch["messages"], model.prompter_words(vision))
    answers_start = min(int((row != -100).nonzero()[0]) for row in tokens.labels)
    model.config.language.max_train_tokens = answers_start  # the prompts fit, no answer token does
    with pytest.raises(BadPromptError, match=f"every answer of this batch was cut: .* all {answers_start} training tokens"):
        model(stage2_batch, losses=("lm",))


def test_analyze_returns_text_mask_p_fake_and_bookkeeping(tiny_model):
    image = np.random.default_rng(1).integers(0, 255, (70, 90, 3), dtype=np.uint8)
    a = tiny_model.analyze(image)
    assert a.mask_probs.shape == (70, 90) and a.mask.dtype == np.uint8
    assert 0.0 <= a.p_fake <= 1.0
    assert len(a.image_positions) == tiny_model.config.image_token_grid**2
    assert len(a.mask_positions) == tiny_model.config.mask_encoder.num_tokens
    assert a.slot_attention.shape[1:] == (2, 4, len(a.image_positions) + len(a.mask_positions))
    assert a.slot_attention.shape[0] == len(a.generated_ids)
    assert "p_fake" in a._repr_html_()


def test_chat_keeps_history(tiny_model):
    conv = tiny_model.chat(np.zeros((64, 64, 3), np.uint8))
    conv.ask("Is this image real or fake?")
    conv.ask("Where?")
    assert [m["role"] for m in conv.history] == ["user", "assistant", "user", "assistant"]
    assert "<image>" in conv.history[0]["content"] and "<image>" not in conv.history[2]["content"]
    with pytest.raises(BadPromptError):
        conv.ask("   ")


def test_save_load_round_trip_is_bit_exact(fresh_tiny_model, stage2_batch, tmp_path):
    model = fresh_tiny_model
    model.enable_lora()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    model.save_pretrained(tmp_path / "m")
    loaded = ForensixModel.from_pretrained(tmp_path / "m")
    for key, value in model.trainable_state().items():
        assert torch.equal(value, loaded.trainable_state()[key]), key
    model.eval()
    with torch.no_grad():
        a = model(stage2_batch)["loss"]
        b = loaded(stage2_batch)["loss"]
    assert torch.equal(a, b)


def test_tampered_checkpoint_is_refused(tiny_model, tmp_path):
    path = tiny_model.save_pretrained(tmp_path / "m")
    weights = path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(BadCheckpointError, match="sha256"):
        ForensixModel.from_pretrained(path)


def test_tiny_model_overfits_eight_samples():
    from forensix.data.datasets import SyntheticForgeryDataset
    from forensix.models.forensix_model import PIECES
    from forensix.train import TrainConfig, get_stage, train_stage

    # BCE + dice only: every term then reaches 0 on data it can memorise (the other terms: test_models_objectives.py)
    plain = {"pixel_loss": "bce", "edge_weight": 0.0, "deep_supervision": 0.0, "image_loss": 0.0, "contrastive": 0.0}
    model = ForensixModel.from_config(get_config("tiny", localizer=plain))
    data = SyntheticForgeryDataset(stage=1, size=64, length=8, seed=0)
    spec = get_stage(1, trainable=tuple(p for p in PIECES if p != "heads"), losses=("lm", "mask"))
    result = train_stage(model, spec, data, TrainConfig(steps=60, batch_size=8, lr=1e-2, warmup=0.05), progress=False)
    first, last = result.history[0]["loss"], np.mean([r["loss"] for r in result.history[-5:]])
    assert last <= 0.1 * first, (first, last)


def test_a_new_head_trains_with_the_stage_loop_and_is_removed(fresh_tiny_model):
    from torch import nn

    from forensix.data.datasets import SyntheticForgeryDataset
    from forensix.train import TrainConfig, get_stage, train_stage

    model = fresh_tiny_model
    head = nn.Sequential(nn.Flatten(1), nn.Linear(16 * 32, 1))  # 4 x 4 fused tokens of width 32
    model.add_head("fake_probe", head, "vision.fused", target="is_fake",
                   loss_fn=lambda out, y: nn.functional.binary_cross_entropy_with_logits(out[:, 0], y))
    data = SyntheticForgeryDataset(stage=2, size=64, length=16, seed=0)
    spec = get_stage(2, trainable=(), losses=("fake_probe",))
    result = train_stage(model, spec, data, TrainConfig(steps=30, batch_size=8, lr=1e-2), progress=False)
    assert result.history[-1]["fake_probe"] < result.history[0]["fake_probe"]
    assert all(not p.requires_grad for n, p in model.named_parameters() if not n.startswith("heads."))
    model.remove_head("fake_probe")
    assert "fake_probe" not in model.heads and not model._hook_points["vision.fused"]._forward_hooks


def test_presets_are_known_and_validated():
    from forensix.errors import BadConfigError

    assert get_config("small").language.source == "smollm2-135m"
    with pytest.raises(BadConfigError, match="tiny"):
        get_config("huge")


@pytest.mark.parametrize("decoder", [(16,), (16, 8, 8), (16, 8, 8, 4, 4)])
def test_a_shallow_decoder_still_returns_mask_logits_at_input_resolution(decoder):
    model = ForensixModel.from_config("tiny", localizer={"decoder_channels": decoder})
    with torch.no_grad():
        logits = model.encode_image(torch.rand(2, 3, 64, 96)).mask_logits
    assert logits.shape == (2, 1, 64, 96)
    assert len(model.fl_expert.up) == len(decoder) - 1


def test_a_decoder_deeper_than_the_trace_branch_is_a_clear_error():
    from forensix.errors import BadConfigError

    with pytest.raises(BadConfigError, match="decoder_channels"):
        ForensixModel.from_config("tiny", localizer={"decoder_channels": (16, 8, 8, 4, 4, 4)})


def test_decoding_with_lora_folded_in_matches_the_adapter_path_and_restores_the_weights(fresh_tiny_model):
    from forensix.models.lora import merged_lora

    model = fresh_tiny_model
    model.enable_lora()
    for name, param in model.lm.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.5)
    model.eval()
    before = {n: p.detach().clone() for n, p in model.lm.named_parameters()}
    tokens = torch.randint(0, 100, (2, 12))
    with torch.no_grad():
        reference = model.lm(input_ids=tokens).logits
        with merged_lora(model.lm) as n_merged:
            folded = model.lm(input_ids=tokens).logits
        after = model.lm(input_ids=tokens).logits
    assert n_merged > 0
    layers = [m for m in model.lm.modules() if hasattr(m, "get_delta_weight")]
    for layer in layers:
        layer.enable_adapters(False)
    with torch.no_grad():
        base_only = model.lm(input_ids=tokens).logits
    for layer in layers:
        layer.enable_adapters(True)
    assert (base_only - reference).abs().max() > 1e-2  # the adapters matter
    torch.testing.assert_close(folded, reference, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(after, reference, rtol=0, atol=0)
    for name, param in model.lm.named_parameters():
        assert torch.equal(param, before[name]), name
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    model.analyze(image, capture_attention=False)
    assert not any(layer.disable_adapters for layer in layers)
    for name, param in model.lm.named_parameters():
        assert torch.equal(param, before[name]), name


def test_local_anomaly_zscores_match_a_naive_per_channel_computation():
    from forensix.models.trace import LocalAnomaly

    torch.manual_seed(0)
    x = torch.rand(2, 3, 6, 7)
    x[0, 1, 2:4, 2:4] += 5.0  # an outlying patch in one channel of one image
    z = LocalAnomaly(3, window=3).zscores(x)
    for b in range(2):
        for c in range(3):
            plane = x[b, c]
            ref = (plane - plane.mean()) / (plane.std(correction=0) + 1e-4)
            torch.testing.assert_close(z[b, c], ref.abs())
            local = torch.zeros_like(ref)
            for i in range(6):
                for j in range(7):
                    local[i, j] = ref[max(0, i - 1) : i + 2, max(0, j - 1) : j + 2].mean()
            torch.testing.assert_close(z[b, 3 + c], local)
            torch.testing.assert_close(z[b, 6 + c], local.abs())
    assert z[0, 1, 2:4, 2:4].min() > z[0, 1].flatten().sort().values[-5]  # the patch stands out


def test_local_anomaly_starts_as_the_identity_and_learns():
    from forensix.models.trace import LocalAnomaly

    layer = LocalAnomaly(4, window=5)
    x = torch.rand(2, 4, 8, 8)
    assert torch.equal(layer(x), x)
    layer(x).square().sum().backward()
    assert layer.mix.weight.grad.abs().sum() > 0


def test_the_anomaly_layers_follow_the_config():
    with_layers = ForensixModel.from_config("tiny")
    without = ForensixModel.from_config("tiny", trace={"anomaly_window": 0})
    count = lambda m: sum(type(x).__name__ == "LocalAnomaly" for x in m.trace.modules())  # noqa: E731
    assert count(with_layers) == len(with_layers.config.trace.channels) - 1 and count(without) == 0


def test_trace_branch_fast_paths_equal_the_plain_formulas():
    """The folded residual scale, the box-filter energy and the stem without its concatenation compute
    what the plain formulas say, and training still back-propagates through them."""
    import torch.nn.functional as F

    from forensix.config import get_config
    from forensix.models.trace import TraceBranch

    torch.manual_seed(0)
    branch = TraceBranch(get_config("tiny").trace, width=32)
    images = torch.rand(2, 3, 40, 56, requires_grad=True)
    x = images * 255.0
    clip = branch.cfg.residual_clip
    plain = torch.cat([F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), branch.srm, groups=3),
                       branch.constrained(x)], dim=1).clamp(-clip, clip) / clip
    residuals = branch.residuals(images)
    torch.testing.assert_close(residuals, plain, atol=1e-4, rtol=1e-4)  # 1e-4 of a clip: float rounding

    per_colour = residuals[:, :9].reshape(2, 3, 3, 40, 56).pow(2).mean(dim=1)
    energy = torch.log(F.avg_pool2d(per_colour, 7, stride=1, padding=3, count_include_pad=False) + 1e-3) / 4.0
    torch.testing.assert_close(branch.residual_energy(residuals), energy, atol=1e-5, rtol=1e-5)

    stem = torch.cat([images - 0.5, residuals, energy], dim=1)
    expected = branch.stages[0](stem)
    torch.testing.assert_close(branch(images, grid=(4, 4)).features[0], expected, atol=1e-4, rtol=1e-4)
    branch(images, grid=(4, 4)).tokens.sum().backward()
    assert images.grad is not None and torch.isfinite(images.grad).all()
