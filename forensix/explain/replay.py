"""Teacher-forced replay of an analysis: its prompt and generated tokens run through the model again.

Token attribution (:mod:`~forensix.explain.token_attribution`), patch attribution
(:mod:`~forensix.explain.patch_attribution`), the captum reference
(:mod:`~forensix.explain.captum_reference`) and gradient grounding (:mod:`~forensix.explain.grounding`)
all score the tokens an analysis generated. :func:`teacher_force` rebuilds the analysis's prompt
embeddings (vision slots filled) and checks that they are the analysis's own; :func:`append_generated`
appends the generated prefix, so one pass gives every token's logits; :func:`target_values` reads the
targets off them (a token's log-probability, or the ``p_fake`` log-odds);
:func:`forensix.models.modes.analysis_mode` freezes the model for the run and restores it afterwards;
:func:`batched_grads` and :func:`grads_from_cotangents`
take many gradients in one backward pass.

Example:
    >>> import numpy as np
    >>> from forensix.models.forensix_model import ForensixModel
    >>> from forensix.models.modes import analysis_mode
    >>> model = ForensixModel.from_config("tiny")
    >>> a = model.analyze(np.zeros((64, 64, 3), np.uint8), max_new_tokens=3)
    >>> n = len(a.generated_ids)
    >>> with analysis_mode(model):
    ...     forced = teacher_force(model, a)
    ...     seq, keep = append_generated(forced, forced.prompt_embeds[None], n, model.lm.get_input_embeddings())
    ...     logits = model.lm(inputs_embeds=seq, use_cache=False, logits_to_keep=keep).logits
    >>> target_values(model, logits, forced, resolve_targets(None, n)).shape == (1, n + 1)
    True
    >>> input_labels(model, a)[a.image_positions[0]]
    '<img 0,0>'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from forensix.errors import BadConfigError
from forensix.models.outputs import VisionOutput

__all__ = [
    "P_FAKE",
    "ForcedSequence",
    "teacher_force",
    "append_generated",
    "target_values",
    "resolve_targets",
    "input_labels",
    "grads_from_cotangents",
    "batched_grads",
]

#: Name of the ``p_fake`` target (FakeScope log-odds of "fake" vs "real").
P_FAKE = "p_fake"


@dataclass
class ForcedSequence:
    """The teacher-forced sequence of an analysis: prompt embeddings ``[P, D]`` (slots filled), prompt
    ids ``[P]``, generated ids ``[N]``, the vision features and the tokenized prompt (``TokenBatch``)."""

    prompt_embeds: Tensor
    prompt_ids: Tensor
    generated: Tensor
    vision: VisionOutput
    tokens: Any


def teacher_force(model: Any, analysis: Any, pixels: Tensor | None = None) -> ForcedSequence:
    """Rebuild ``analysis``'s prompt with ``model`` (from ``pixels``, default: the analysed image) and
    check it is the one the analysis was generated from; see the module example.
    """
    if pixels is None:
        pixels, _ = model.preprocess(analysis.image)
    with torch.no_grad():
        vision = model.encode_image(pixels, model.region_for(analysis.image))
    messages = [{"role": "user", "content": analysis.question}]
    tokens = model.tokenize([messages], model.prompter_words(vision), add_generation_prompt=True)
    ids = tokens.ids[0].tolist()
    if ids != list(analysis.prompt_ids):
        raise BadConfigError(
            "analysis: its prompt ids differ from what this model builds for its image and question; "
            "attribute with the model that made the analysis (and the same weights)"
        )
    with torch.no_grad():
        embeds = model.embed(tokens, vision)[0]
    gen = torch.tensor(list(analysis.generated_ids), dtype=torch.long, device=model.device)
    return ForcedSequence(embeds.detach(), tokens.ids[0].to(model.device), gen, vision, tokens)


def append_generated(forced: ForcedSequence, prompt_embeds: Tensor, needed: int, embed: nn.Module) -> tuple[Tensor, int]:
    """``[B, P + needed − 1, D]`` inputs: ``prompt_embeds`` ``[B, P, D]`` with the first ``needed − 1``
    generated tokens appended (embedded by ``embed``), and how many last logits predict the ``needed`` tokens.

    Example:
        >>> forced = ForcedSequence(torch.zeros(4, 8), torch.zeros(4), torch.tensor([5, 6, 7]), None, None)
        >>> seq, keep = append_generated(forced, torch.zeros(2, 4, 8), 3, torch.nn.Embedding(10, 8))
        >>> tuple(seq.shape), keep
        ((2, 6, 8), 3)
    """
    b = prompt_embeds.shape[0]
    if needed <= 1:
        return prompt_embeds, 1
    suffix = embed(forced.generated[: needed - 1])[None].to(prompt_embeds.dtype).expand(b, -1, -1)
    return torch.cat([prompt_embeds, suffix], dim=1), needed


def target_values(model: Any, logits: Tensor, forced: ForcedSequence, index: list[int]) -> Tensor:
    """``[B, K]`` target values from the kept logits ``[B, keep, V]`` (row ``t`` predicts generated token ``t``):
    ``log p(token_t | prefix)`` for ``t >= 0``, the ``p_fake`` log-odds (``model.answer_log_probs`` at the
    last prompt position) for ``t = −1``.

    Example:
        >>> forced = ForcedSequence(torch.zeros(1, 1), torch.zeros(1), torch.tensor([1, 0]), {}, None)
        >>> target_values(None, torch.zeros(1, 2, 4), forced, [0, 1]).exp().tolist()
        [[0.25, 0.25]]
    """
    logp = logits.float().log_softmax(-1)
    cols = []
    for i in index:
        if i < 0:
            ans = model.answer_log_probs(logits[:, 0])
            cols.append(ans[:, 0] - ans[:, 1])
        else:
            cols.append(logp[:, i, forced.generated[i]])
    return torch.stack(cols, dim=1)


def resolve_targets(targets: Sequence[int | str] | None, n_generated: int) -> list[int]:
    """Generated-token indices of ``targets`` (indices, negative ones counted from the end, or :data:`P_FAKE`),
    −1 standing for ``p_fake``; None: every generated token, then ``p_fake``.

    Example:
        >>> resolve_targets(None, 2), resolve_targets([-1, "p_fake"], 3)
        ([0, 1, -1], [2, -1])
    """
    if targets is None:
        return list(range(n_generated)) + [-1]
    out = []
    for t in targets:
        if isinstance(t, str):
            if t != P_FAKE:
                raise BadConfigError(f"targets: {t!r} is not a target; use generated-token indices or {P_FAKE!r}")
            out.append(-1)
        else:
            i = int(t)
            if not -n_generated <= i < n_generated:
                raise BadConfigError(f"targets: index {i} out of range for {n_generated} generated tokens")
            out.append(i % n_generated)
    if not out:
        raise BadConfigError("targets: empty; pass None (all tokens and p_fake) or a list")
    return out


def input_labels(model: Any, analysis: Any) -> list[str]:
    """A label per prompt position: the decoded token, ``<img ROW,COL>`` for an image slot and
    ``<mask K>`` for a mask slot; see the module example."""
    labels = [model.tokenizer.decode([i]) for i in analysis.prompt_ids]
    gh, gw = analysis.image_token_grid
    for k, p in enumerate(analysis.image_positions):
        labels[p] = f"<img {k // gw},{k % gw}>"
    for k, p in enumerate(analysis.mask_positions):
        labels[p] = f"<mask {k}>"
    return labels


def grads_from_cotangents(outputs: Tensor, inputs: Tensor, cot: Tensor, chunk: int) -> Tensor:
    """Vector-Jacobian products ``cot[k] · d outputs / d inputs``, ``chunk`` at a time in one batched
    backward pass each (``is_grads_batched``); one pass per row if an op has no batching rule.

    Example:
        >>> x = torch.tensor([1.0, 2.0], requires_grad=True)
        >>> grads_from_cotangents(x ** 2, x, torch.eye(2), chunk=2).tolist()
        [[2.0, 0.0], [0.0, 4.0]]
    """
    out = []
    for lo in range(0, cot.shape[0], chunk):
        part = cot[lo : lo + chunk]
        last = lo + chunk >= cot.shape[0]
        try:
            (g,) = torch.autograd.grad(outputs, inputs, grad_outputs=part, is_grads_batched=True, retain_graph=not last)
        except RuntimeError:
            g = torch.stack([torch.autograd.grad(outputs, inputs, grad_outputs=c, retain_graph=True)[0] for c in part])
        out.append(g)
    return torch.cat(out)


def batched_grads(outputs: Tensor, inputs: Tensor, rows: list[int], chunk: int) -> Tensor:
    """``d outputs[:, k].sum() / d inputs`` for each ``k`` in ``rows``: ``[len(rows), *inputs.shape]``.

    Example:
        >>> x = torch.tensor([[1.0, 2.0]], requires_grad=True)
        >>> batched_grads(x * torch.tensor([3.0, 5.0]), x, [1], chunk=1).tolist()
        [[[0.0, 5.0]]]
    """
    eye = torch.zeros(len(rows), *outputs.shape, dtype=outputs.dtype, device=outputs.device)
    for j, k in enumerate(rows):
        eye[j, :, k] = 1.0
    return grads_from_cotangents(outputs, inputs, eye, chunk)
