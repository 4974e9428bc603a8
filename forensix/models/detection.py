"""Detection by the FakeScope rule: the answer words' probabilities after the detection question, calibrated.

``p_fake = sigmoid(scale * margin + mask_weight * logit(mask_score) + bias)``, where ``margin`` is
``log P("fake") - log P("real")`` at the answer's first token and ``mask_score`` the localizer's own
evidence (the top-mean of the mask the mask encoder read); FakeScope's rule alone when scale,
mask_weight, bias = 1, 0, 0 (the calibration is fitted on validation data).

Example:
    >>> import torch
    >>> from forensix.config import get_config
    >>> logits = torch.zeros(2, 10); logits[0, 3] = 2.0
    >>> [round(m, 4) for m in detection_margin(logits, (3, 4)).tolist()]
    [2.0, 0.0]
    >>> calibrated_p_fake(detection_margin(logits, (3, 4)), get_config("tiny"), torch.full((2,), 0.5)).shape
    torch.Size([2])
    >>> verdict_tokens(logits, torch.tensor([0.9, 0.1]), (3, 4))
    [3, None]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from forensix.config import ForensixConfig
from forensix.data.conversations import DETECTION_QUESTION
from forensix.models.modes import eval_mode
from forensix.models.pixels import image_arrays
from forensix.models.vision_side import encode_images

if TYPE_CHECKING:
    from forensix.models.forensix_model import ForensixModel


def answer_log_probs(last_logits: Tensor, answers: tuple[int, int]) -> Tensor:
    """Log-probabilities ``[B, 2]`` of the answer tokens ``answers`` (fake, real) from next-token logits ``[B, V]``."""
    return last_logits.float().log_softmax(dim=-1)[:, list(answers)]


def detection_margin(last_logits: Tensor, answers: tuple[int, int]) -> Tensor:
    """``log P(fake) - log P(real)`` of the answer tokens, ``[B]``: the FakeScope evidence before calibration."""
    log_probs = answer_log_probs(last_logits, answers)
    return log_probs[:, 0] - log_probs[:, 1]


def calibrated_p_fake(margin: Tensor, config: ForensixConfig, mask_score: Tensor | None = None) -> Tensor:
    """``p_fake`` ``[B]`` from the margin and the mask score by ``config``'s detection calibration (module docstring)."""
    evidence = config.detection_scale * margin + config.detection_bias
    if config.detection_mask_weight:
        if mask_score is None:
            raise ValueError("p_fake_from_logits: this model's detection reads the mask score too; pass mask_score")
        evidence = evidence + config.detection_mask_weight * torch.logit(mask_score.float().clamp(1e-4, 1 - 1e-4))
    return torch.sigmoid(evidence)


def verdict_tokens(first_logits: Tensor, p_fake: Tensor, answers: tuple[int, int]) -> list[int | None]:
    """Per row of next-token logits ``[B, V]``, the answer token (fake / real) that ``p_fake`` decides, where
    the language model's own first token is one of them (else ``None``: the answer does not start with a verdict)."""
    fake, real = answers
    return [(fake if float(pi) >= 0.5 else real) if int(row.argmax()) in (fake, real) else None
            for row, pi in zip(first_logits, p_fake)]


@torch.no_grad()
def detection_evidence(model: ForensixModel, images: Any, question: str = DETECTION_QUESTION,
                       batch_size: int = 16) -> np.ndarray:
    """What ``p_fake``'s calibration combines, ``[n, 2]`` per image: the FakeScope margin and the logit of the mask score."""
    arrays = image_arrays(images)
    rows = []
    with eval_mode(model):
        for i in range(0, len(arrays), batch_size):
            vision = encode_images(model, arrays[i : i + batch_size])[1]
            score = torch.logit(vision.mask_score.float().clamp(1e-4, 1 - 1e-4))
            rows.append(torch.stack([model.detection_margin(model._answer_logits(vision, question)), score], 1).cpu())
    return torch.cat(rows).numpy().astype(np.float64)


@torch.no_grad()
def detect(model: ForensixModel, images: Any, question: str = DETECTION_QUESTION, batch_size: int = 16,
           masks: Sequence[Any] | None = None) -> np.ndarray:
    """Batched ``p_fake`` of ``images``, ``batch_size`` at a time; ``masks`` (one per image) replace the predicted masks."""
    arrays = image_arrays(images)
    with eval_mode(model):
        scores = [
            model.p_fake(encode_images(model, arrays[i : i + batch_size], None if masks is None else masks[i : i + batch_size])[1],
                         question).cpu()
            for i in range(0, len(arrays), batch_size)
        ]
    return torch.cat(scores).numpy()


__all__ = ["answer_log_probs", "calibrated_p_fake", "detect", "detection_evidence", "detection_margin", "verdict_tokens"]
