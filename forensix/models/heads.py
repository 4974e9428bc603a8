"""Prototype new heads: attach a module to any hook point, train it with the stage loop, remove it.

A head reads the tensor at its hook point on every forward pass; its latest output is in
``registry.outputs[name]``. With a ``target`` (a key of the training batch) and a ``loss_fn`` it
contributes the loss term ``name`` when a stage asks for it.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from forensix.hooks import HookPoint
    >>> point, reg = HookPoint("x.out"), HeadRegistry()
    >>> _ = reg.add("probe", nn.Linear(4, 1), point, target="y", loss_fn=nn.functional.mse_loss)
    >>> _ = point(torch.ones(2, 4))
    >>> reg.outputs["probe"].shape, "probe" in reg
    (torch.Size([2, 1]), True)
    >>> reg.remove("probe"); "probe" in reg
    False
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from forensix.errors import BadConfigError
from forensix.hooks import HookPoint


@dataclass
class _HeadInfo:
    hook: HookPoint
    handle: Any
    target: str | None
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None


class HeadRegistry(nn.Module):
    """Holds user heads (their parameters are part of the model) and their hook handles."""

    def __init__(self) -> None:
        super().__init__()
        self.modules_by_name = nn.ModuleDict()
        self._info: dict[str, _HeadInfo] = {}
        self.outputs: dict[str, torch.Tensor] = {}

    def __contains__(self, name: object) -> bool:
        return name in self._info

    def __iter__(self):
        return iter(self._info)

    def add(self, name: str, module: nn.Module, hook: HookPoint, *, target: str | None = None,
            loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> nn.Module:
        """Attach ``module`` to ``hook``; ``target``+``loss_fn`` make it trainable by the stage loop."""
        if name in self._info or not name.isidentifier():
            raise BadConfigError(f"head name {name!r}: use a new Python identifier (existing: {list(self._info)})")
        if (target is None) != (loss_fn is None):
            raise BadConfigError(f"head {name!r}: give both target and loss_fn, or neither")

        def run(tensor: torch.Tensor, point: HookPoint) -> None:
            self.outputs[name] = module(tensor)

        self.modules_by_name[name] = module
        self._info[name] = _HeadInfo(hook, hook.add_hook(run), target, loss_fn)
        return module

    def remove(self, name: str) -> None:
        if name not in self._info:
            raise BadConfigError(f"no head named {name!r}; heads: {list(self._info)}")
        self._info.pop(name).handle.remove()
        del self.modules_by_name[name]
        self.outputs.pop(name, None)

    def losses(self, batch: dict[str, Any], names: list[str]) -> dict[str, torch.Tensor]:
        """Loss terms of the named heads against ``batch[target]`` (from the latest forward pass)."""
        terms = {}
        for name in names:
            info = self._info[name]
            if info.loss_fn is None:
                raise BadConfigError(f"head {name!r} has no loss_fn/target, so it cannot be trained")
            if info.target not in batch:
                raise BadConfigError(f"head {name!r} needs batch[{info.target!r}]; the batch has {sorted(batch)}")
            output = self.outputs[name]
            terms[name] = info.loss_fn(output, batch[info.target].to(output.device))
        return terms
