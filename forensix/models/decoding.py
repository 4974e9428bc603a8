"""Greedy decoding with n-gram drafts (prompt-lookup speculative decoding) for one sequence.

On a CPU, decoding one token reads every weight of the language model once, so its cost is set by
memory bandwidth, not arithmetic. Checking several *guessed* tokens in one forward pass costs about
the same as decoding one. :class:`NGramDrafts` guesses the continuation by finding the last few
tokens earlier in the context (the prompt and the answer so far) or in earlier answers of the same
model (explanations reuse their phrasing); :func:`greedy_decode` keeps the longest guessed prefix
that greedy decoding itself would have produced and the model's own next token after it. The
output is greedy decoding's output (up to floating-point rounding of a multi-token forward).
With ``no_repeat_ngram=n`` a token that would repeat an ``n``-gram of the answer is never chosen
(:func:`banned_tokens`, the rule of ``transformers``' ``no_repeat_ngram_size``), drafts included.

Example:
    >>> drafts = NGramDrafts(n=2, max_draft=3)
    >>> drafts.add([5, 6, 7, 8, 9])
    >>> drafts.propose([1, 5, 6])
    [7, 8, 9]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from transformers import LogitsProcessor


class NGramDrafts:
    """Draft tokens by n-gram lookup: in the current context first, then in remembered sequences.

    ``n``: the longest n-gram matched (shorter ones are tried down to 2); ``max_draft``: tokens
    proposed at most; ``capacity``: remembered tokens (oldest sequences are dropped first).
    """

    def __init__(self, n: int = 3, max_draft: int = 6, capacity: int = 50_000) -> None:
        self.n, self.max_draft, self.capacity = n, max_draft, capacity
        self._sequences: list[list[int]] = []
        self._index: dict[tuple[int, ...], tuple[int, int]] = {}
        self._size = 0

    def add(self, ids: Sequence[int]) -> None:
        """Remember a finished sequence (e.g. an answer) for later lookups."""
        seq = [int(i) for i in ids]
        if len(seq) < 3:
            return
        self._sequences.append(seq)
        self._size += len(seq)
        if self._size <= self.capacity or len(self._sequences) == 1:
            self._index_sequence(len(self._sequences) - 1)
            return
        while self._size > self.capacity and len(self._sequences) > 1:  # drop the oldest, then index afresh
            self._size -= len(self._sequences.pop(0))
        self._index = {}
        for k in range(len(self._sequences)):
            self._index_sequence(k)

    def _index_sequence(self, k: int) -> None:
        seq = self._sequences[k]
        for size in range(2, self.n + 1):
            for end in range(size, len(seq)):
                self._index[tuple(seq[end - size : end])] = (k, end)

    def propose(self, context: Sequence[int]) -> list[int]:
        """Up to ``max_draft`` tokens that followed the context's last n-gram before ([] if none)."""
        context = list(context)
        for size in range(min(self.n, len(context)), 1, -1):
            key = context[-size:]
            for end in range(len(context) - 1, size - 1, -1):  # most recent earlier occurrence in the context
                if context[end - size : end] == key:
                    return context[end : end + self.max_draft]
            found = self._index.get(tuple(key))
            if found is not None:
                seq, end = self._sequences[found[0]], found[1]
                return seq[end : end + self.max_draft]
        return []


@dataclass
class Decoded:
    """Generated ids, the logits of the first step, and per forward pass the rows that produced tokens."""

    ids: list[int]
    first_logits: torch.Tensor
    kept_rows: list[slice] = field(default_factory=list)
    forward_passes: int = 0


def banned_tokens(ids: Sequence[int], n: int) -> list[int]:
    """Tokens that would complete an ``n``-gram already in ``ids`` (none when ``n`` is 0).

    Example:
        >>> banned_tokens([5, 6, 7, 5, 6], 3), banned_tokens([5, 6, 7, 5, 6], 0)
        ([7], [])
    """
    if n <= 0 or len(ids) < n:
        return []
    prefix = list(ids[len(ids) - n + 1 :])
    return sorted({ids[i + n - 1] for i in range(len(ids) - n + 1) if list(ids[i : i + n - 1]) == prefix})


def _choose(logits: torch.Tensor, ids: Sequence[int], no_repeat_ngram: int) -> int:
    """The greedy token after ``ids`` from one row of logits, never one that repeats an n-gram."""
    banned = banned_tokens(ids, no_repeat_ngram)
    if banned:
        logits = logits.clone()
        logits[banned] = float("-inf")
    return int(logits.argmax())


class FirstTokens(LogitsProcessor):
    """For ``transformers``' ``generate``: the first token of each row is ``choose(first_logits)[row]``
    (``None`` keeps the model's own), as :func:`greedy_decode`'s ``first_token`` does for one sequence.

    Example:
        >>> scores = torch.tensor([[0.0, 2.0, 1.0], [3.0, 0.0, 0.0]])
        >>> FirstTokens(lambda s: [2, None])(torch.zeros(2, 0, dtype=torch.long), scores).argmax(-1).tolist()
        [2, 0]
        >>> scores.tolist()  # unchanged
        [[0.0, 2.0, 1.0], [3.0, 0.0, 0.0]]
    """

    def __init__(self, choose: Callable[[torch.Tensor], Sequence[int | None]]) -> None:
        self.choose, self.done = choose, False

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self.done:
            return scores
        self.done = True
        chosen = self.choose(scores)
        scores = scores.clone()  # the raw logits generate() returns (p_fake is read from them) stay as they were
        for row, token in enumerate(chosen):
            if token is not None:
                scores[row] = float("-inf")
                scores[row, token] = 0.0
        return scores


@torch.no_grad()
def greedy_decode(
    lm: nn.Module, inputs_embeds: torch.Tensor, *, max_new_tokens: int, eos_token_id: int | None,
    drafts: NGramDrafts | None = None, prompt_ids: Sequence[int] = (), no_repeat_ngram: int = 0,
    first_token: Callable[[torch.Tensor], int | None] | None = None,
) -> Decoded:
    """Greedy decoding of one sequence (``inputs_embeds`` ``[1, P, D]``, no padding) with drafts.

    ``prompt_ids`` (the prompt's token ids, placeholders at embedding slots) is searched for drafts
    too. ``kept_rows[c]`` says which query rows of forward pass ``c`` predicted a kept token (the
    last prompt row for the first pass), for callers that record per-token attention.
    ``no_repeat_ngram`` > 0 never lets the answer repeat one of its own n-grams; ``first_token`` (the
    first step's logits -> a token, or ``None`` for the model's own) chooses the answer's first token.
    """
    from transformers import DynamicCache

    if inputs_embeds.shape[0] != 1:
        raise ValueError("greedy_decode decodes one sequence; use generate() for batches")
    cache = DynamicCache(config=lm.config)
    logits = lm(inputs_embeds=inputs_embeds, cache=cache, use_cache=True, logits_to_keep=1).logits
    first = logits[0, -1]
    chosen = first_token(first) if first_token is not None else None
    ids, kept, passes = [int(first.argmax()) if chosen is None else int(chosen)], [slice(-1, None)], 1
    prompt = [int(i) for i in prompt_ids]
    while len(ids) < max_new_tokens and ids[-1] != eos_token_id:
        guess = drafts.propose(prompt + ids)[: max_new_tokens - len(ids)] if drafts is not None else []
        step = torch.tensor([[ids[-1], *guess]], device=inputs_embeds.device)
        rows = lm(input_ids=step, cache=cache, use_cache=True, logits_to_keep=step.shape[1]).logits[0]
        passes += 1
        accepted = 0
        pred = _choose(rows[0], ids, no_repeat_ngram)
        while accepted < len(guess) and guess[accepted] == pred and guess[accepted] != eos_token_id:
            accepted += 1
            pred = _choose(rows[accepted], ids + guess[:accepted], no_repeat_ngram)
        new = guess[:accepted] + [pred]
        if accepted < len(guess):
            cache.crop(-(len(guess) - accepted))  # forget the rejected guesses
        ids.extend(new)
        kept.append(slice(0, len(new)))
    ids = ids[:max_new_tokens]
    if eos_token_id in ids:
        ids = ids[: ids.index(eos_token_id) + 1]
    return Decoded(ids=ids, first_logits=first, kept_rows=kept, forward_passes=passes)
