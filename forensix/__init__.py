"""forensix: explainable image forgery detection and localization with a multimodal language model.

The public API lives in the subpackages; the most used names are re-exported here lazily (so that
``import forensix`` stays fast and does not load torch models until asked).

Example:
    >>> import forensix
    >>> forensix.get_config("tiny").preset
    'tiny'
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "ForensixError": "forensix.errors",
    "get_config": "forensix.config",
    "ForensixConfig": "forensix.config",
    "ForensixModel": "forensix.models",
    "Analysis": "forensix.models",
    "ForgeryGenerator": "forensix.data",
    "forge": "forensix.data",
    "SyntheticForgeryDataset": "forensix.data",
    "load_dataset": "forensix.data",
    "read_image": "forensix.data",
    "get_stage": "forensix.train",
    "train_stage": "forensix.train",
    "TrainConfig": "forensix.train",
    "train_stages": "forensix.train.pipeline",
    "evaluate_model": "forensix.eval.model_quality",
    "evaluate_detector": "forensix.eval.detectors",
    "get_detector": "forensix.baselines",
    "attention_rollout": "forensix.explain",
    "ground": "forensix.explain.grounding",
    "attribute_tokens": "forensix.explain.token_attribution",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'forensix' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = ["__version__", *_EXPORTS]
