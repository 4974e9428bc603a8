"""Self-supervised pre-training of the trace branch: which processing history does a small patch carry?

Before stage 2 asks the trace branch where an image was forged, this teaches it what forgeries leave
behind, on labels the data engine gives for free (:mod:`forensix.data.histories`): pristine, low-quality
JPEG, JPEG on a shifted grid, resampling, blur, sharpening, noise, median filtering. A linear head on the
mean and standard deviation of the branch's deepest features classifies the patch; the head is thrown
away afterwards and the branch keeps what it learned. Batches are a deterministic function of
``(seed, step)``. ``benchmarks/ablation.py`` (variant ``with_trace_pretraining``) measures what it buys.

Example:
    >>> from forensix.models import ForensixModel
    >>> model = ForensixModel.from_config("tiny")
    >>> history = pretrain_trace(model, steps=2, batch_size=4, size=32)
    >>> [sorted(h) for h in history][:1]
    [['accuracy', 'loss', 'step']]
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from forensix.data.histories import HISTORIES, HistoryPatches
from forensix.data.sources import PhotoPool
from forensix.train.loop import cosine_with_warmup


class _HistoryHead(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(2 * channels, len(HISTORIES))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        std, mean = torch.std_mean(features.flatten(2), dim=2)
        return self.linear(torch.cat([mean, std], dim=1))


def pretrain_trace(model: nn.Module, steps: int = 400, *, batch_size: int = 32, lr: float = 3e-3, size: int = 64,
                   seed: int = 0, photos: PhotoPool | None = None) -> list[dict[str, float]]:
    """Train ``model.trace`` to classify processing histories for ``steps``; returns per-step loss and accuracy."""
    trace = model.trace
    head = _HistoryHead(trace.cfg.channels[-1]).to(model.device)
    params = [p for p in trace.parameters()] + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: cosine_with_warmup(s, steps, 0.05))
    data = HistoryPatches(size=size, length=max(steps * batch_size, 1), seed=seed, photos=photos)
    order = np.random.default_rng([seed, 11]).permutation(len(data))
    was_training = trace.training
    trace.train()
    history = []
    try:
        for step in range(steps):
            items = [data[int(i)] for i in order[step * batch_size : (step + 1) * batch_size]]
            images = torch.stack([it["image"] for it in items]).to(model.device)
            labels = torch.stack([it["label"] for it in items]).to(model.device)
            logits = head(trace(images, grid=(1, 1)).features[-1])
            loss = F.cross_entropy(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            schedule.step()
            history.append({"step": step + 1, "loss": loss.item(),
                            "accuracy": float((logits.argmax(1) == labels).float().mean())})
    finally:
        trace.train(was_training)
    return history


__all__ = ["pretrain_trace"]
