"""Clue head (ForgeryTalker's forgery prompter): multi-label prediction of forensic clue words.

It reads the same region summary as the mask encoder, the global image token and (``config.clue.evidence``)
the pixel contrasts of :mod:`forensix.models.clue_evidence`, and predicts which clues ("edge halo",
"noise mismatch", ...) are visible; predicted clues can be written into the language model's prompt.
After stage 2 it is refitted on the model's own predicted masks (:mod:`forensix.train.clue_fit`).

Hook points: ``clue_head.input`` ``[B, in_dim]``, ``clue_head.logits`` ``[B, n_clues]``.

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
    """Two-layer MLP over region features; train with :func:`torch.nn.functional.binary_cross_entropy_with_logits`.

    ``centre`` and ``spread`` (buffers, 0 and 1 until :meth:`standardize` sets them) put every input feature
    on one scale: the pixel contrasts are far smaller than the token features beside them.
    """

    def __init__(self, in_dim: int, n_clues: int, hidden: int = 128) -> None:
        super().__init__()
        self.register_buffer("centre", torch.zeros(in_dim))
        self.register_buffer("spread", torch.ones(in_dim))
        self.mlp = nn.Sequential(nn.LayerNorm(in_dim), nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, n_clues))
        self.hook_input = HookPoint("clue_head.input")
        self.hook_logits = HookPoint("clue_head.logits")

    def standardize(self, features: torch.Tensor) -> None:
        """Set ``centre`` and ``spread`` to the per-feature mean and standard deviation of ``features`` ``[N, in_dim]``."""
        self.centre.copy_(features.mean(0))
        self.spread.copy_(features.std(0).clamp_min(1e-4))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        features = self.hook_input(features)
        return self.hook_logits(self.mlp((features - self.centre) / self.spread))
