"""Training conversations for the three stages, as chat messages.

User turns hold the literal placeholders ``<image>`` (and ``<mask>`` where a mask is given).
Detection answers start with ``fake.`` or ``real.``: the model reads ``p_fake`` from the logits of
that first answer word.

Example:
    >>> import numpy as np
    >>> from forensix.data.forge import ForgeryGenerator
    >>> s = ForgeryGenerator(size=64, seed=0).sample(0)
    >>> msgs = stage3_messages(s, np.random.default_rng(0))
    >>> msgs[0]["role"], "<image>" in msgs[0]["content"]
    ('user', True)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from forensix.data.describe import caption, explanation, localized_description, location_phrase
from forensix.data.forge import Sample

DETECTION_QUESTION = "Is this image real or fake?"
IMAGE_TOKEN = "<image>"
MASK_TOKEN = "<mask>"

Message = dict[str, str]

_CAPTION_PROMPTS = (
    "<image> Describe this image briefly.",
    "<image> What does this picture show?",
    "<image> Write a short caption for this image.",
    "<image> Give a one-sentence description of the image.",
)
_MASK_PROMPTS = (
    "<image> <mask> Describe the marked region.",
    "<image> <mask> What happened in the highlighted area?",
    "<image> <mask> Explain what is unusual about the masked region.",
    "<image> <mask> Is the marked region manipulated? Describe it.",
)
_LOCALIZE_PROMPTS = (
    "<image> Where has this image been manipulated?",
    "<image> Locate the manipulated region, if any.",
    "<image> Which part of the image was edited?",
)
_EXPLAIN_PROMPTS = (
    "<image> Explain whether this image was manipulated and why.",
    "<image> What forensic evidence does this image show?",
    "<image> Analyze this image for signs of tampering.",
)
_WHERE_FOLLOWUPS = ("Where?", "Where is the manipulated region?", "Which area was changed?")
_WHY_FOLLOWUPS = ("Why?", "What evidence shows that?", "How can you tell?")


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def _turns(*pairs: tuple[str, str]) -> list[Message]:
    out: list[Message] = []
    for q, a in pairs:
        out += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    return out


def analysis_question() -> str:
    """The default question of ``analyze``.

    Example:
        >>> analysis_question()
        'Is this image real or fake? Explain where and why.'
    """
    return DETECTION_QUESTION + " Explain where and why."


def detection_answer(sample: Sample, rng: np.random.Generator, detail: bool = True) -> str:
    """``fake. <where> <why>`` or ``real. <why>`` (only the first word when ``detail`` is False).

    Example:
        >>> from forensix.data.forge import ForgeryGenerator
        >>> detection_answer(ForgeryGenerator(size=64, p_authentic=1.0).sample(0), np.random.default_rng(0))[:5]
        'real.'
    """
    head = "fake." if sample.record.is_fake else "real."
    if not detail:
        return head
    if sample.record.is_fake:
        return f"{head} {localized_description(sample.record, sample.mask, rng)} {explanation(sample.record, sample.mask, rng)}"
    return f"{head} {explanation(sample.record, sample.mask, rng)}"


def stage1_messages(sample: Sample, rng: np.random.Generator) -> list[Message]:
    """Stage 1 (image-text alignment): a caption of the image content and look.

    Example:
        >>> from forensix.data.forge import ForgeryGenerator
        >>> m = stage1_messages(ForgeryGenerator(size=64).sample(0), np.random.default_rng(0))
        >>> [t["role"] for t in m]
        ['user', 'assistant']
    """
    return _turns((_pick(rng, _CAPTION_PROMPTS), caption(sample.record, sample.image, rng)))


def stage2_messages(sample: Sample, rng: np.random.Generator) -> list[Message]:
    """Stage 2 (mask-text alignment): describe the marked region and its cues.

    Example:
        >>> from forensix.data.forge import ForgeryGenerator
        >>> m = stage2_messages(ForgeryGenerator(size=64).sample(0), np.random.default_rng(0))
        >>> "<mask>" in m[0]["content"]
        True
    """
    r, mask = sample.record, sample.mask
    if r.is_fake:
        answer = f"{localized_description(r, mask, rng)} {explanation(r, mask, rng)}"
    else:
        answer = f"Nothing is marked: the image appears authentic. {explanation(r, mask, rng)}"
    return _turns((_pick(rng, _MASK_PROMPTS), answer))


def stage3_messages(sample: Sample, rng: np.random.Generator) -> list[Message]:
    """Stage 3 (instruction tuning): detect, localize, explain, analyze or a multi-turn dialogue.

    Example:
        >>> from forensix.data.forge import ForgeryGenerator
        >>> m = stage3_messages(ForgeryGenerator(size=64).sample(1), np.random.default_rng(0))
        >>> m[-1]["role"]
        'assistant'
    """
    r, mask = sample.record, sample.mask
    task = ("detect", "localize", "explain", "analyze", "dialogue")[int(rng.integers(5))]
    detect_q = f"{IMAGE_TOKEN} {DETECTION_QUESTION}"
    if task == "detect":
        return _turns((detect_q, detection_answer(sample, rng, detail=bool(rng.random() < 0.5))))
    if task == "analyze":
        return _turns((f"{IMAGE_TOKEN} {analysis_question()}", detection_answer(sample, rng)))
    if task == "localize":
        where = (localized_description(r, mask, rng) if r.is_fake
                 else "No region appears manipulated; the image looks authentic.")
        return _turns((_pick(rng, _LOCALIZE_PROMPTS), where))
    if task == "explain":
        return _turns((_pick(rng, _EXPLAIN_PROMPTS), detection_answer(sample, rng)))
    where = (f"The manipulated region is {location_phrase(mask)}." if r.is_fake
             else "Nowhere: no region appears manipulated.")
    return _turns(
        (detect_q, detection_answer(sample, rng, detail=False)),
        (_pick(rng, _WHERE_FOLLOWUPS), where),
        (_pick(rng, _WHY_FOLLOWUPS), explanation(r, mask, rng)),
    )


STAGE_MESSAGES: dict[int, Any] = {1: stage1_messages, 2: stage2_messages, 3: stage3_messages}

__all__ = [
    "DETECTION_QUESTION", "IMAGE_TOKEN", "MASK_TOKEN", "analysis_question", "detection_answer",
    "stage1_messages", "stage2_messages", "stage3_messages", "STAGE_MESSAGES",
]
