"""Saving and loading a ForensixModel: ``config.json`` + ``model.safetensors`` + a sha256 manifest (no pickle).

Example:
    >>> import tempfile, torch
    >>> from forensix.models.forensix_model import ForensixModel
    >>> model = ForensixModel.from_config("tiny")
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     again = load_model(ForensixModel, save_model(model, f"{tmp}/m"))
    >>> all(torch.equal(v, again.trainable_state()[k]) for k, v in trainable_state(model).items())
    True
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from forensix.checkpoint import read_checkpoint, write_checkpoint
from forensix.config import ForensixConfig
from forensix.errors import BadCheckpointError, BadConfigError, ForensixError
from forensix.weights import resolve_model_path

if TYPE_CHECKING:
    from forensix.models.forensix_model import ForensixModel

#: The ``format`` a forensix model's ``config.json`` declares.
MODEL_FORMAT = "forensix-model"


def trainable_state(model: ForensixModel) -> dict[str, torch.Tensor]:
    """Every tensor needed to restore ``model``, except a frozen pretrained LM's base weights.

    Tied tensors (the LM's input and output embeddings) are stored once; heads are not stored.
    """
    save_base_lm = model.config.language.source == "tiny"
    state, seen = {}, set()
    for key, value in model.state_dict(keep_vars=True).items():
        if key.startswith("lm.") and not save_base_lm and "lora_" not in key:
            continue
        if key.startswith("heads.") or value.data_ptr() in seen:
            continue
        seen.add(value.data_ptr())
        state[key] = value.detach()
    return state


def save_model(model: ForensixModel, path: str | Path, dtype: torch.dtype | None = None) -> Path:
    """Write ``model``'s config and :func:`trainable_state` to the directory ``path``, atomically; ``dtype``
    (e.g. ``torch.float16``) stores the floating-point tensors in that type (they load back into the
    model's own, float32 on a CPU)."""
    meta = {"config": {"forensix_config": model.config.to_dict(), "lora": model.lora_enabled, "format": MODEL_FORMAT}}
    state = trainable_state(model)
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    return write_checkpoint(path, tensors={"model": state}, meta=meta)


def _read_model_checkpoint(path: str | Path) -> tuple[Path, dict[str, dict[str, torch.Tensor]], dict]:
    """The verified tensors and ``config.json`` entry of a forensix model directory (or a released name)."""
    path = resolve_model_path(path)
    tensors, meta = read_checkpoint(path)
    info = meta.get("config")
    if not isinstance(info, dict) or info.get("format") != MODEL_FORMAT or "model" not in tensors:
        raise BadCheckpointError(f"{path}: not a forensix model checkpoint (config.json/model.safetensors missing or foreign)")
    return path, tensors, info


def _unstandardized_clue_buffers(expected: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A checkpoint saved before the clue head standardized its inputs used them as they are: centre 0, spread 1."""
    return {k: (torch.zeros_like if k.endswith("centre") else torch.ones_like)(expected[k])
            for k in ("clue_head.centre", "clue_head.spread") if k in expected}


def load_model(cls: type[ForensixModel], path: str | Path) -> ForensixModel:
    """Build ``cls`` from a directory written by :func:`save_model` (or a released model's name) and load
    its weights, verified against the manifest and the config; in eval mode."""
    path, tensors, info = _read_model_checkpoint(path)
    try:
        config = ForensixConfig.from_dict(info["forensix_config"])
    except BadConfigError as err:
        raise BadCheckpointError(f"{path}: config.json is invalid: {err}") from err
    try:
        model = cls(config)
        if info.get("lora"):
            model.enable_lora()
    except ForensixError:
        raise
    except (TypeError, ValueError, RuntimeError) as err:  # values the config types allow but the modules refuse
        raise BadCheckpointError(f"{path}: config.json describes a model that cannot be built ({err})") from err
    expected = trainable_state(model)
    got = {**_unstandardized_clue_buffers(expected), **tensors["model"]} if "clue_head.centre" not in tensors["model"] else tensors["model"]
    if set(expected) != set(got):
        missing, unexpected = sorted(set(expected) - set(got))[:5], sorted(set(got) - set(expected))[:5]
        raise BadCheckpointError(f"{path}: weights do not match the config (missing {missing}, unexpected {unexpected})")
    wrong = [k for k, v in got.items() if v.shape != expected[k].shape][:5]
    if wrong:
        raise BadCheckpointError(f"{path}: weights {wrong} have shapes other than the config's model; re-save it")
    model.load_state_dict(got, strict=False)
    return model.eval()


def warm_start(model: ForensixModel, source: str | Path) -> dict[str, list[str]]:
    """Copy into ``model`` every weight of the saved model ``source`` (a directory or a released name) whose
    name and shape it shares; the rest of ``model`` keeps its initialisation.

    This is how a longer or changed recipe continues from committed weights: a module the source lacks
    (say the DCT stream of a newer trace branch) starts fresh, one it has but ``model`` lacks (LoRA weights
    of a finished stage 3, before ``model`` enables LoRA) is left out. Returns both lists, by name.

    Example:
        >>> import tempfile, torch
        >>> from forensix.models.forensix_model import ForensixModel
        >>> old = ForensixModel.from_config("tiny", trace={"dct": False})
        >>> new = ForensixModel.from_config("tiny", trace={"dct": True})
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     report = warm_start(new, save_model(old, f"{tmp}/m"))
        >>> sorted({k.split(".")[1] for k in report["fresh"]}), report["left_out"]
        (['dct'], [])
        >>> torch.equal(new.trace.stages[0][0].weight, old.trace.stages[0][0].weight)
        True
    """
    path, tensors, _ = _read_model_checkpoint(source)
    expected, got = trainable_state(model), tensors["model"]
    shared = {k: v for k, v in got.items() if k in expected and v.shape == expected[k].shape}
    if not shared:
        raise BadCheckpointError(f"{path}: shares no weight with this model (another preset?); warm-start from a model "
                                 "of the same preset")
    model.load_state_dict(shared, strict=False)
    return {"fresh": sorted(set(expected) - set(shared)), "left_out": sorted(set(got) - set(shared))}


__all__ = ["MODEL_FORMAT", "load_model", "save_model", "trainable_state", "warm_start"]
