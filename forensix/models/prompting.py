"""Turn chat messages with ``<image>`` and ``<mask>`` slots into token ids, labels and slot positions.

The conversation is rendered with the tokenizer's own chat template (with forensix's system
prompt), split at the slots and at the assistant answers, and tokenized piece by piece: slot pieces
become placeholder ids whose embeddings the model overwrites with image or mask tokens, assistant
answers (and their end-of-turn token) are the only supervised labels. The prompter text is written
right after the mask slot: region words (where the mask lies, its size) and the clue words predicted
by the clue head (ForgeryTalker's region and forgery prompters).

Example:
    >>> from forensix.models.language import load_language_model
    >>> tok = load_language_model("tiny").tokenizer
    >>> enc = encode_conversation(tok, [{"role": "user", "content": "<image> Real or fake?"},
    ...                                 {"role": "assistant", "content": "fake."}],
    ...                           system="Be brief.", n_image=4, n_mask=2)
    >>> len(enc.image_positions), tok.decode([i for i, l in zip(enc.ids, enc.labels) if l != -100])
    (4, 'fake.<|im_end|>')
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from forensix.config import ForensixConfig
from forensix.errors import BadPromptError

IMAGE_SLOT = "<image>"
MASK_SLOT = "<mask>"
IGNORE = -100
_SLOTS = re.compile(f"({re.escape(IMAGE_SLOT)}|{re.escape(MASK_SLOT)})")
_ASSISTANT = "<|im_start|>assistant\n"
_END = "<|im_end|>"


@dataclass
class Encoded:
    """One tokenized conversation."""

    ids: list[int] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    image_positions: list[int] = field(default_factory=list)
    mask_positions: list[int] = field(default_factory=list)
    region_positions: list[int] = field(default_factory=list)  # the region words after the mask slots

    def extend(self, ids: list[int], supervised: bool) -> None:
        self.ids.extend(ids)
        self.labels.extend(ids if supervised else [IGNORE] * len(ids))

    def truncated(self, max_tokens: int | None) -> Encoded:
        """The first ``max_tokens`` tokens (slots must lie inside: they are never cut)."""
        if max_tokens is None or len(self.ids) <= max_tokens:
            return self
        if max(self.image_positions + self.mask_positions + self.region_positions, default=-1) >= max_tokens:
            raise BadPromptError(f"the prompt is longer than max_train_tokens={max_tokens}; shorten it or raise the limit")
        return Encoded(self.ids[:max_tokens], self.labels[:max_tokens], self.image_positions, self.mask_positions,
                       self.region_positions)


def validate_messages(messages: list[dict], max_chars: int) -> None:
    """Raise :class:`BadPromptError` for empty, over-long or malformed conversations."""
    if not isinstance(messages, list) or not messages:
        raise BadPromptError("messages: give a non-empty list of {'role', 'content'} dicts")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in {"user", "assistant", "system"}:
            raise BadPromptError(f"messages[{i}]: expected a dict with role user/assistant/system, got {message!r:.80}")
        content = message.get("content")
        if not isinstance(content, str) or not content.strip():
            raise BadPromptError(f"messages[{i}] ({message.get('role')}): empty content; write a question or answer")
        if len(content) > max_chars:
            raise BadPromptError(
                f"messages[{i}] ({message['role']}): {len(content)} characters, more than the limit of {max_chars}; shorten it"
            )
    text = "".join(m["content"] for m in messages)
    if text.count(IMAGE_SLOT) != 1:
        raise BadPromptError(f"the conversation must contain exactly one {IMAGE_SLOT} slot, found {text.count(IMAGE_SLOT)}")
    if text.count(MASK_SLOT) > 1:
        raise BadPromptError(f"the conversation may contain at most one {MASK_SLOT} slot, found {text.count(MASK_SLOT)}")


def _supervised_spans(text: str, messages: list[dict]) -> list[tuple[int, int]]:
    spans, cursor = [], 0
    for message in messages:
        if message["role"] != "assistant":
            continue
        start = text.index(_ASSISTANT + message["content"] + _END, cursor) + len(_ASSISTANT)
        end = start + len(message["content"]) + len(_END)
        spans.append((start, end))
        cursor = end
    return spans


def with_mask_slot(messages: list[dict]) -> list[dict]:
    """Insert ``<mask>`` right after ``<image>`` when the conversation has no mask slot of its own.

    The region prompter always speaks: the mask tokens follow the image tokens in every prompt.
    """
    if any(MASK_SLOT in m["content"] for m in messages):
        return messages
    out = [dict(m) for m in messages]
    for message in out:
        if IMAGE_SLOT in message["content"]:
            message["content"] = message["content"].replace(IMAGE_SLOT, f"{IMAGE_SLOT}{MASK_SLOT}", 1)
            break
    return out


def encode_conversation(
    tokenizer, messages: list[dict], *, system: str, n_image: int, n_mask: int, region_text: str = "",
    clue_text: str = "", add_generation_prompt: bool = False, max_chars: int = 4000,
) -> Encoded:
    """Tokenize ``messages`` (see the module docstring); slot and region-word positions index into ``ids``."""
    validate_messages(messages, max_chars)
    messages = with_mask_slot(messages)
    full = [{"role": "system", "content": system}, *messages]
    text = tokenizer.apply_chat_template(full, tokenize=False, add_generation_prompt=add_generation_prompt)
    boundaries = sorted({0, len(text), *(b for span in _supervised_spans(text, messages) for b in span)})
    supervised = {start for start, _ in _supervised_spans(text, messages)}
    placeholder = tokenizer.pad_token_id
    enc = Encoded()
    for start, end in zip(boundaries, boundaries[1:]):
        for piece in _SLOTS.split(text[start:end]):
            if piece == IMAGE_SLOT:
                enc.image_positions.extend(range(len(enc.ids), len(enc.ids) + n_image))
                enc.extend([placeholder] * n_image, supervised=False)
            elif piece == MASK_SLOT:
                enc.mask_positions.extend(range(len(enc.ids), len(enc.ids) + n_mask))
                enc.extend([placeholder] * n_mask, supervised=False)
                if region_text:
                    words = tokenizer(region_text, add_special_tokens=False)["input_ids"]
                    enc.region_positions.extend(range(len(enc.ids), len(enc.ids) + len(words)))
                    enc.extend(words, supervised=False)
                if clue_text:
                    enc.extend(tokenizer(clue_text, add_special_tokens=False)["input_ids"], supervised=False)
            elif piece:
                enc.extend(tokenizer(piece, add_special_tokens=False)["input_ids"], supervised=start in supervised)
    return enc


@dataclass
class TokenBatch:
    """Right-padded batch of encoded conversations."""

    ids: torch.Tensor
    labels: torch.Tensor
    attention_mask: torch.Tensor
    image_slots: torch.Tensor
    mask_slots: torch.Tensor
    region_slots: torch.Tensor
    lengths: list[int]


def pad_batch(encoded: list[Encoded], pad_id: int, side: str = "right") -> TokenBatch:
    """Stack conversations padded on ``side`` (``"left"`` for batched generation); slot and region-word masks are ``[B, T]``."""
    width = max(len(e.ids) for e in encoded)
    shape = (len(encoded), width)
    ids = torch.full(shape, pad_id, dtype=torch.long)
    labels = torch.full(shape, IGNORE, dtype=torch.long)
    attention = torch.zeros(shape, dtype=torch.long)
    image_slots = torch.zeros(shape, dtype=torch.bool)
    mask_slots = torch.zeros(shape, dtype=torch.bool)
    region_slots = torch.zeros(shape, dtype=torch.bool)
    for row, e in enumerate(encoded):
        n = len(e.ids)
        start = width - n if side == "left" else 0
        ids[row, start : start + n] = torch.tensor(e.ids)
        labels[row, start : start + n] = torch.tensor(e.labels)
        attention[row, start : start + n] = 1
        image_slots[row, [start + p for p in e.image_positions]] = True
        mask_slots[row, [start + p for p in e.mask_positions]] = True
        region_slots[row, [start + p for p in e.region_positions]] = True
    return TokenBatch(ids, labels, attention, image_slots, mask_slots, region_slots, [len(e.ids) for e in encoded])


def tokenize(
    tokenizer: Any, config: ForensixConfig, conversations: Sequence[list[dict]], prompter_words: Sequence[tuple[str, str]],
    add_generation_prompt: bool = False, side: str = "right", max_tokens: int | None = None,
) -> TokenBatch:
    """Encode conversations with image/mask slots, as ``config`` sizes them, into a padded :class:`TokenBatch`
    (each cut at ``max_tokens``); ``prompter_words`` (``(region words, clue words)`` per conversation) follow the mask tokens.

    Example:
        >>> from forensix.config import get_config
        >>> from forensix.models.language import load_language_model
        >>> tok = load_language_model("tiny").tokenizer
        >>> batch = tokenize(tok, get_config("tiny"), [[{"role": "user", "content": "<image> Fake?"}]], [("", "")], True)
        >>> int(batch.image_slots.sum()) == get_config("tiny").image_token_grid ** 2
        True
    """
    lc = config.language
    encoded = [
        encode_conversation(
            tokenizer, messages, system=lc.system_prompt, n_image=config.image_token_grid**2,
            n_mask=config.mask_encoder.num_tokens, region_text=region, clue_text=clues,
            add_generation_prompt=add_generation_prompt, max_chars=lc.max_prompt_chars,
        ).truncated(max_tokens)
        for messages, (region, clues) in zip(conversations, prompter_words)
    ]
    return pad_batch(encoded, tokenizer.pad_token_id, side=side)


__all__ = ["IGNORE", "IMAGE_SLOT", "MASK_SLOT", "Encoded", "TokenBatch", "encode_conversation", "pad_batch", "tokenize", "validate_messages", "with_mask_slot"]
