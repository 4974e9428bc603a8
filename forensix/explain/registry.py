"""Registries of explanation methods: one lookup, and one error, for every kind of method.

Each kind keeps its registry (a dict from name to method) beside its methods:
:data:`~forensix.explain.grounding.GROUNDING_METHODS`, :data:`~forensix.explain.token_attribution.ATTRIBUTION_METHODS`,
:data:`~forensix.explain.rollout.ROLLOUT_METHODS` and :data:`~forensix.explain.rollout.HEAD_FUSIONS`. A function
that takes a method's name finds it with :func:`lookup`, so adding a method is adding an entry, and an
unknown name raises :class:`~forensix.errors.UnknownMethodError` naming the argument and the choices.

Example:
    >>> lookup({"mean": sum}, "mean", argument="head_fusion", kind="head fusion") is sum
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from forensix.errors import UnknownMethodError

__all__ = ["lookup"]

T = TypeVar("T")


def lookup(registry: Mapping[str, T], name: str, *, argument: str, kind: str) -> T:
    """``registry[name]``; an unknown ``name`` raises :class:`~forensix.errors.UnknownMethodError`.

    Example:
        >>> lookup({"attention": 1, "gradient": 2}, "saliency", argument="method", kind="grounding method")
        Traceback (most recent call last):
        ...
        forensix.errors.UnknownMethodError: method='saliency': not a grounding method; choose one of ['attention', 'gradient']
    """
    if not isinstance(name, str) or name not in registry:
        raise UnknownMethodError(f"{argument}={name!r}: not a {kind}; choose one of {sorted(registry)}")
    return registry[name]
