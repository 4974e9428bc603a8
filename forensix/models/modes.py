"""Run a module in eval mode for a while and give every submodule its own training mode back.

Example:
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Dropout(), nn.Dropout()); net[1].eval()
    Dropout(p=0.5, inplace=False)
    >>> with eval_mode(net):
    ...     net[0].training
    False
    >>> net[0].training, net[1].training
    (True, False)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode inside the context; the previous training mode of every module is restored after."""
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for module, mode in modes.items():
            module.training = mode


__all__ = ["eval_mode"]
