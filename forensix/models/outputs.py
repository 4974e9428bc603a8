"""Typed records the model hands between its sides: the vision side's tensors and a generated reply.

Example:
    >>> import torch
    >>> v = VisionOutput(*(torch.zeros(4, 1) for _ in range(6)))
    >>> v.rows(1, 3).mask_score.shape
    torch.Size([2, 1])
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from torch import Tensor

from forensix.models.prompting import TokenBatch


@dataclass(frozen=True)
class VisionOutput:
    """What :meth:`~forensix.models.forensix_model.ForensixModel.encode_image` returns, one row per image.

    ``mask_logits`` ``[B, 1, H, W]`` (the localizer's), ``mask_score`` ``[B]`` (the top-mean of the mask
    the mask encoder read: the localizer's detection evidence), ``clue_logits`` ``[B, C]``, ``mask_tokens``
    ``[B, K, D]``, ``region_mask`` ``[B, 1, S, S]`` (the mask the mask encoder read: a given one, else the
    predicted probabilities) and ``image_tokens`` ``[B, N, D]``.
    """

    mask_logits: Tensor
    mask_score: Tensor
    clue_logits: Tensor
    mask_tokens: Tensor
    region_mask: Tensor
    image_tokens: Tensor

    def rows(self, start: int, stop: int) -> VisionOutput:
        """The images ``start:stop`` (a sub-batch), every tensor sliced alike."""
        return VisionOutput(**{f.name: getattr(self, f.name)[start:stop] for f in fields(self)})


@dataclass(frozen=True)
class Reply:
    """One generated answer: its ``ids`` (up to end-of-sequence) and ``text``, ``first_logits`` ``[V]``
    (next-token logits after the prompt, for ``p_fake``), ``tokens`` (its own unpadded prompt) and,
    when recorded, ``slot_attention`` ``[tokens, layers, heads, slots]``."""

    ids: list[int]
    text: str
    first_logits: Tensor
    tokens: TokenBatch
    slot_attention: Tensor | None = None


__all__ = ["Reply", "VisionOutput"]
