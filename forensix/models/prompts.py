"""Object-agnostic forgery prompts: learnable "authentic" and "forged" embeddings with no object words.

AnomalyCLIP-style: each state is a set of ``prompt_context`` learnable context vectors, pooled and
passed through a small shared encoder into the FL-Expert's comparison space. Nothing in them names
an object, so the localizer compares patches with *states*, not things.

Hook point: ``prompts.embeddings`` ``[2, prompt_dim]`` (row 0 authentic, row 1 forged, L2-normalised).

Example:
    >>> prompts = ForgeryPrompts(dim=16, context=2)
    >>> prompts().shape
    torch.Size([2, 16])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from forensix.hooks import HookPoint

#: Order of the prompt rows and of the FL-Expert's similarity channels.
PROMPT_STATES = ("authentic", "forged")


class ForgeryPrompts(nn.Module):
    """Two learnable object-agnostic prompts, returned L2-normalised."""

    def __init__(self, dim: int, context: int) -> None:
        super().__init__()
        self.context = nn.Parameter(torch.randn(len(PROMPT_STATES), context, dim) * 0.02)
        self.encoder = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, dim))
        self.hook_embeddings = HookPoint("prompts.embeddings")

    def forward(self) -> torch.Tensor:
        pooled = self.context.mean(dim=1)
        return self.hook_embeddings(F.normalize(pooled + self.encoder(pooled), dim=-1))
