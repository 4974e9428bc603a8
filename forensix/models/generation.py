"""Greedy replies of the language model to conversations about images (batched or drafted decoding).

Example:
    >>> import numpy as np
    >>> from forensix.models.forensix_model import ForensixModel
    >>> model = ForensixModel.from_config("tiny")
    >>> vision = model.encode_image(model.preprocess(np.zeros((64, 64, 3), np.uint8))[0])
    >>> reply = generate_replies(model, vision, [[{"role": "user", "content": "<image> Real or fake?"}]], max_new_tokens=4)[0]
    >>> isinstance(reply.text, str), len(reply.ids) <= 4
    (True, True)
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from transformers import LogitsProcessorList

from forensix.hooks import HOOKED_ATTENTION, add_hooks, attention_implementation
from forensix.models.decoding import Decoded, FirstTokens, greedy_decode
from forensix.models.lora import merged_lora
from forensix.models.outputs import Reply, VisionOutput

if TYPE_CHECKING:
    from forensix.models.forensix_model import ForensixModel


@torch.no_grad()
def generate_replies(
    model: ForensixModel, vision: VisionOutput, conversations: Sequence[list[dict]], max_new_tokens: int | None = None,
    slot_attention: bool = False,
) -> list[Reply]:
    """Greedy replies, one per image and conversation (left-padded batch).

    Each :class:`~forensix.models.outputs.Reply` has ``ids``, ``text``, ``first_logits`` (next-token logits
    after the prompt, for ``p_fake``), ``tokens`` (its own unpadded :class:`TokenBatch`) and, for a single image with
    ``slot_attention``, the attention of every generated token to the image and mask slots and the region words.
    In eval mode LoRA adapters are folded into the base weights while decoding (see
    :func:`~forensix.models.lora.merged_lora`; the weights are restored exactly afterwards). One
    conversation is decoded with n-gram drafts from the prompt and this model's earlier answers
    (:func:`~forensix.models.decoding.greedy_decode`; ``language.draft_tokens`` = 0 turns the
    drafts off), a batch with ``transformers``' ``generate``; either way an answer never repeats one of its
    own token n-grams of ``language.no_repeat_ngram`` tokens (0: plain greedy decoding), and an answer that
    starts with a verdict starts with the one the calibrated ``p_fake`` decides (:meth:`~forensix.models.forensix_model.ForensixModel.verdict_token`).
    """
    words = model.prompter_words(vision)
    tokens = model.tokenize(conversations, words, add_generation_prompt=True, side="left")
    embeds = model.embed(tokens, vision)
    if slot_attention and len(conversations) != 1:
        raise ValueError("slot attention is recorded for one image at a time")
    slots = torch.cat([tokens.image_slots[0].nonzero()[:, 0], tokens.mask_slots[0].nonzero()[:, 0],
                       tokens.region_slots[0].nonzero()[:, 0]])
    records: list[torch.Tensor] = []  # per forward pass and layer: [heads, query rows, slots]

    def keep_slot_rows(pattern: torch.Tensor, hook) -> None:
        records.append(pattern[0, :, :, slots].float().cpu())

    # Hooks a user put on the language model see one forward pass per generated token: no drafts then.
    user_lm_hooks = any(hp.has_hooks for name, hp in model._hook_points.items() if name.startswith("lm."))
    drafts = None if user_lm_hooks else model._drafts
    hooks = [("lm.layers.*.attn.pattern", keep_slot_rows)] if slot_attention else []
    backend = attention_implementation(model.lm, HOOKED_ATTENTION) if slot_attention else contextlib.nullcontext()
    fold = merged_lora(model.lm) if not model.lm.training else contextlib.nullcontext()
    max_new = max_new_tokens or model.config.language.max_new_tokens
    no_repeat = model.config.language.no_repeat_ngram

    def verdict(first_logits: torch.Tensor) -> list[int | None]:
        return model.verdict_token(first_logits, vision.mask_score)

    eos = model.tokenizer.eos_token_id
    with backend, fold, add_hooks(model._hook_points, hooks):
        if len(conversations) == 1:
            decoded = [greedy_decode(model.lm, embeds, max_new_tokens=max_new, eos_token_id=eos, drafts=drafts,
                                     prompt_ids=tokens.ids[0].tolist(), no_repeat_ngram=no_repeat,
                                     first_token=lambda logits: verdict(logits[None])[0])]
        else:
            with warnings.catch_warnings():  # it says what we want: n-grams of the answer only, not of the prompt
                warnings.filterwarnings("ignore", message="Passing `no_repeat_ngram_size`", category=UserWarning)
                out = model.lm.generate(
                    inputs_embeds=embeds, attention_mask=tokens.attention_mask.to(model.device), max_new_tokens=max_new,
                    do_sample=False, return_dict_in_generate=True, output_logits=True, pad_token_id=model.tokenizer.pad_token_id,
                    no_repeat_ngram_size=no_repeat, logits_processor=LogitsProcessorList([FirstTokens(verdict)]),
                )
            decoded = [Decoded(ids=out.sequences[row].tolist(), first_logits=out.logits[0][row])
                       for row in range(len(conversations))]
    replies = []
    for row, result in enumerate(decoded):
        ids = result.ids[: result.ids.index(eos)] if eos in result.ids else result.ids
        if model._drafts is not None:
            model._drafts.add(ids)
        replies.append(Reply(
            ids=ids,
            text=model.tokenizer.decode(ids, skip_special_tokens=True).strip(),
            first_logits=result.first_logits,
            tokens=model.tokenize([conversations[row]], words[row : row + 1], add_generation_prompt=True),
            slot_attention=_token_slot_attention(records, result.kept_rows, len(ids)) if records else None,
        ))
    return replies


def _token_slot_attention(records: list[torch.Tensor], kept_rows: list[slice], n_tokens: int) -> torch.Tensor:
    """``[n_tokens, layers, heads, slots]`` from per-pass, per-layer records and the rows each pass kept."""
    n_layers = len(records) // len(kept_rows)
    passes = [torch.stack(records[i : i + n_layers]) for i in range(0, len(records), n_layers)]  # [L, H, rows, S]
    rows = [p[:, :, keep].permute(2, 0, 1, 3) for p, keep in zip(passes, kept_rows)]
    return torch.cat(rows)[:n_tokens]


__all__ = ["generate_replies"]
