"""Clue head (ForgeryTalker's forgery prompter): multi-label prediction of forensic clue words.

It reads the same region summary as the mask encoder plus the global image token and predicts which
clues ("edge halo", "noise mismatch", ...) are visible; predicted clues can be written into the
language model's prompt.

Hook point: ``clue_head.logits`` ``[B, n_clues]``.

Example:
    >>> import torch
    >>> head = ClueHead(in_dim=10, n_clues=4)
    >>> head(torch.rand(2, 10)).shape
    torch.Size([2, 4])
"""

from __future__ import annotations

import torch
from torch import nn

from forensix.hooks import HookPoint


class ClueHead(nn.Module):
    """Two-layer MLP over region features; train with :func:`torch.nn.functional.binary_cross_entropy_with_logits`."""

    def __init__(self, in_dim: int, n_clues: int, hidden: int = 128) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.LayerNorm(in_dim), nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, n_clues))
        self.hook_logits = HookPoint("clue_head.logits")

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.hook_logits(self.mlp(features))
