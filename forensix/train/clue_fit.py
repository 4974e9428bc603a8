"""Refit the clue head on the model's own predicted masks, before instruction tuning.

In stage 2 the clue head reads the region summary of the *true* mask (the mask encoder learns from it
there); at inference it reads the *predicted* one, whose contrasts are weaker and noisier. Stage 3 therefore
starts by refitting the head on what it will see: each training image goes through the vision side as
:meth:`~forensix.models.forensix_model.ForensixModel.analyze` runs it (the ``clue_head.input`` hook point
records the head's input), and the head alone is trained on those inputs against the clue words the
forgery's record implies. Everything else stays frozen, and the language model then trains (stage 3)
with the clue words it will read at inference.

Example:
    >>> from forensix.models.forensix_model import ForensixModel
    >>> from forensix.eval.model_quality import held_out_samples
    >>> model = ForensixModel.from_config("tiny")
    >>> fit = fit_clue_head(model, held_out_samples(8, 64, split="train"), epochs=20)
    >>> fit.loss_after < fit.loss_before
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from forensix.data.describe import clue_vector
from forensix.errors import ForensixError
from forensix.models.modes import eval_mode
from forensix.models.vision_side import encode_images

#: Training images the refit reads per preset (the small preset: about 2 minutes on 2 CPU cores).
CLUE_FIT_SAMPLES = {"tiny": 16, "small": 1536, "paper": 8192}


@dataclass(frozen=True)
class ClueFit:
    """What :func:`fit_clue_head` did: images read, epochs, and the BCE on those images before and after."""

    n_images: int
    epochs: int
    loss_before: float
    loss_after: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@torch.no_grad()
def clue_head_inputs(model, images: Sequence[Any], batch_size: int = 16) -> torch.Tensor:
    """The clue head's input ``[N, in_dim]`` for ``images``, recorded at ``clue_head.input`` as inference computes it."""
    recorded: list[torch.Tensor] = []
    record = [("clue_head.input", lambda tensor, hook: recorded.append(tensor.detach().float().cpu()))]
    with eval_mode(model), model.hooks(record):
        for start in range(0, len(images), batch_size):
            encode_images(model, list(images[start : start + batch_size]))
    return torch.cat(recorded)


def fit_clue_head(model, samples: Sequence[Any], *, epochs: int = 100, lr: float = 3e-3, weight_decay: float = 1e-2,
                  batch_size: int = 128, seed: int = 0) -> ClueFit:
    """Train ``model.clue_head`` alone on its inputs for ``samples`` (``Sample`` objects of a training split,
    forged and authentic) against their clue words; the rest of the model is untouched (see the module example)."""
    if not samples:
        raise ForensixError("fit_clue_head: no samples; pass training samples (forensix.data.datasets)")
    head = model.clue_head
    inputs = clue_head_inputs(model, [s.image for s in samples])
    targets = torch.from_numpy(np.stack([clue_vector(s.record) for s in samples]))
    device = head.centre.device
    inputs, targets = inputs.to(device), targets.to(device)
    head.standardize(inputs)
    generator = torch.Generator().manual_seed(seed)
    parameters = list(head.mlp.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    was_training, flags = head.training, [p.requires_grad for p in parameters]
    for p in parameters:
        p.requires_grad_(True)

    def loss_now() -> float:
        with torch.no_grad():
            return float(F.binary_cross_entropy_with_logits(head.mlp((inputs - head.centre) / head.spread), targets))

    before = loss_now()
    head.train()
    for _ in range(epochs):
        order = torch.randperm(len(inputs), generator=generator).to(device)
        for start in range(0, len(inputs), batch_size):
            chosen = order[start : start + batch_size]
            loss = F.binary_cross_entropy_with_logits(head.mlp((inputs[chosen] - head.centre) / head.spread), targets[chosen])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    head.train(was_training)
    for p, flag in zip(parameters, flags):
        p.requires_grad_(flag)
    return ClueFit(n_images=len(samples), epochs=epochs, loss_before=before, loss_after=loss_now())


__all__ = ["CLUE_FIT_SAMPLES", "ClueFit", "clue_head_inputs", "fit_clue_head"]
