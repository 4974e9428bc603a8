"""The prompter words written after the mask tokens: where the region lies and which clues the clue head sees.

Soft mask tokens alone do not teach the language model *where*; the region words it can copy
(ForgeryTalker's region prompter), and the clue words name the clue head's findings (its forgery prompter).

Example:
    >>> import torch
    >>> from forensix.config import get_config
    >>> cfg = get_config("tiny")
    >>> cfg.region_in_prompt = True
    >>> m = torch.zeros(1, 1, 64, 64); m[..., :20, :20] = 1
    >>> region_text(m, cfg)
    [' Region: in the top-left of the image, near the top and left edges, a medium-sized area (about 10% of the image).']
"""

from __future__ import annotations

from torch import Tensor

from forensix.config import ForensixConfig
from forensix.data.describe import CLUES, location_phrase, size_phrase
from forensix.eval.calibration import image_threshold
from forensix.models.outputs import VisionOutput

#: Training tokens added for the region words (the longest phrases take about 45 SmolLM2 tokens), so they do not cut the answer.
REGION_WORDS_ROOM = 48


def clue_cuts(config: ForensixConfig) -> dict[str, float]:
    """The probability at which each clue is named: its own calibrated threshold, else ``clue_threshold``.

    Example:
        >>> from forensix.config import get_config
        >>> clue_cuts(get_config("tiny"))["edge halo"]
        0.5
    """
    cuts = config.clue_thresholds or (config.clue_threshold,) * len(CLUES)
    return dict(zip(CLUES, cuts))


def clue_text(clue_logits: Tensor, config: ForensixConfig) -> list[str]:
    """The forgery prompter's words, one string per image of ``clue_logits`` ``[B, C]`` ('' when ``clues_in_prompt`` is off).

    Example:
        >>> from forensix.config import get_config
        >>> import torch
        >>> clue_text(torch.full((1, len(CLUES)), -9.0), get_config("tiny"))
        [' Clues: none.']
    """
    if not config.clues_in_prompt:
        return [""] * clue_logits.shape[0]
    cuts = clue_cuts(config)
    texts = []
    for row in clue_logits.sigmoid().tolist():
        names = [c for c, p in zip(CLUES, row) if p >= cuts[c]]
        texts.append(f" Clues: {', '.join(names)}." if names else " Clues: none.")
    return texts


def region_text(region_mask: Tensor, config: ForensixConfig) -> list[str]:
    """The region prompter's words: where the mask the mask encoder reads lies, and its size ('' when
    ``region_in_prompt`` is off); see the module example.

    ``region_mask`` ``[B, 1, S, S]`` holds probabilities (the predicted mask, binarised where the model's
    ``mask_cut`` cuts it) or a given mask in {0, 1}.
    """
    if not config.region_in_prompt:
        return [""] * region_mask.shape[0]
    texts = []
    for probs in region_mask[:, 0].float().cpu().numpy():
        binary = probs >= image_threshold(probs, config.mask_threshold, config.mask_relative)
        texts.append(f" Region: {location_phrase(binary)}, {size_phrase(binary)}." if binary.any() else " Region: none.")
    return texts


def prompter_words(vision: VisionOutput, config: ForensixConfig) -> list[tuple[str, str]]:
    """What follows the mask tokens in each prompt: ``(region words, clue words)`` per image of ``vision``."""
    return list(zip(region_text(vision.region_mask, config), clue_text(vision.clue_logits, config)))


def train_token_limit(config: ForensixConfig) -> int:
    """Where training sequences are cut: ``language.max_train_tokens``, plus room for the region words when they are on.

    Example:
        >>> from forensix.config import get_config
        >>> cfg = get_config("tiny")
        >>> before = train_token_limit(cfg); cfg.region_in_prompt = True
        >>> train_token_limit(cfg) - before
        48
    """
    return config.language.max_train_tokens + (REGION_WORDS_ROOM if config.region_in_prompt else 0)


__all__ = ["REGION_WORDS_ROOM", "clue_text", "prompter_words", "region_text", "train_token_limit"]
