"""Models that ship inside the forensix package: ``ForensixModel.from_pretrained("forensix-small")``, offline.

A released model is an ordinary checkpoint directory (``config.json``, ``model.safetensors``, a sha256
``manifest.json``: :mod:`forensix.checkpoint` verifies every byte on load) in this package's folder (``forensix/weights/<name>/``),
with its model card beside it (``forensix/weights/<name>.md``: training data and licences, steps,
seeds, the command, held-out metrics with intervals, known failure modes). The language model's base
weights are not in it: they come from the packaged GGUF, as for any model trained here.

:func:`publish` copies a trained model directory there after loading it once (so a broken checkpoint is
never published) and writes the card.

Example:
    >>> sorted(RELEASED)
    ['forensix-small']
    >>> resolve_model_path("runs/demo/stage3/model").as_posix()
    'runs/demo/stage3/model'
"""

from __future__ import annotations

from pathlib import Path

from forensix.errors import ModelNotAvailableError

WEIGHTS = Path(__file__).resolve().parent

#: The model ``forensix analyze``, ``explain`` and ``eval --detector model`` use when none is named.
DEFAULT_MODEL = "forensix-small"

#: Released model names and what they are.
RELEASED = {"forensix-small": "the small preset (128 px, SmolLM2-135M-Instruct) trained through the three stages"}


def released_dir(name: str) -> Path:
    """Where the released model ``name`` lives (whether or not this checkout has its weights)."""
    return WEIGHTS / name


def model_card(name: str) -> Path:
    """The model card of the released model ``name``."""
    return WEIGHTS / f"{name}.md"


def resolve_model_path(path: str | Path) -> Path:
    """A model directory from a released name (``"forensix-small"``) or a path, unchanged.

    Raises :class:`ModelNotAvailableError` for a released name whose weights this checkout lacks.
    """
    if isinstance(path, str) and path in RELEASED:
        where = released_dir(path)
        if not (where / "config.json").is_file():
            raise ModelNotAvailableError(
                f"{path}: the released weights are not in this checkout ({where}); reinstall forensix, or train "
                "a model (`forensix train --stage all --preset small --out runs/small`) and pass its directory")
        return where
    return Path(path)


def publish(model_dir: str | Path, name: str, card: str, half: bool = True) -> Path:
    """Load ``model_dir`` (which verifies it), save it as ``forensix/weights/<name>`` and write the card.

    ``half`` stores its weights in float16 (half the bytes; ``benchmarks/release.py`` measures what that
    changes), which load back into float32.
    """
    import torch

    from forensix.models.forensix_model import ForensixModel
    from forensix.models.persistence import save_model

    if name not in RELEASED:
        raise ModelNotAvailableError(f"{name}: not a released model name; add it to RELEASED ({sorted(RELEASED)})")
    model = ForensixModel.from_pretrained(model_dir)
    target = released_dir(name)
    save_model(model, target, dtype=torch.float16 if half else None)  # atomic: replaces target once complete
    model_card(name).write_text(card)
    return target


__all__ = ["DEFAULT_MODEL", "RELEASED", "WEIGHTS", "model_card", "publish", "released_dir", "resolve_model_path"]
