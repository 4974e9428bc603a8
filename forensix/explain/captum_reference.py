"""Reference for token attribution: captum's own per-token Integrated Gradients on the same inputs.

:func:`captum_token_attribution` runs ``LLMGradientAttribution(LayerIntegratedGradients(lm, embedding))``,
one full IG per generated token, on the teacher-forced sequence of an analysis
(:mod:`~forensix.explain.replay`); :func:`~forensix.explain.token_attribution.attribute_tokens` must
agree with it (``tests/test_explain_attribution.py``) while doing all tokens in one batched pass.

Example:
    >>> import numpy as np
    >>> from forensix.models.forensix_model import ForensixModel
    >>> model = ForensixModel.from_config("tiny")
    >>> a = model.analyze(np.zeros((64, 64, 3), np.uint8), max_new_tokens=2)
    >>> captum_token_attribution(model, a, n_steps=2, targets=[0]).shape == (1, len(a.prompt_ids))
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from forensix.explain.replay import input_labels, resolve_targets, teacher_force
from forensix.models.modes import analysis_mode

__all__ = ["captum_token_attribution"]


class _SlotEmbedding(nn.Module):
    """Token embedding for captum's id-based inputs: id −2 at a slot position = that slot's vision
    embedding, id −1 = a zero vector (the "zeros" baseline), other ids = the LM's embedding."""

    def __init__(self, embed: nn.Module, prompt_embeds: Tensor) -> None:
        super().__init__()
        self.embed = embed
        self.register_buffer("prompt_embeds", prompt_embeds, persistent=False)

    def forward(self, ids: Tensor) -> Tensor:
        out = self.embed(ids.clamp(min=0)).to(self.prompt_embeds.dtype)
        out = out.masked_fill((ids == -1)[..., None], 0.0)
        p = min(ids.shape[1], self.prompt_embeds.shape[0])
        slot = (ids[:, :p] == -2)[..., None]
        return torch.cat([torch.where(slot, self.prompt_embeds[None, :p], out[:, :p]), out[:, p:]], dim=1)


class _CaptumLM(nn.Module):
    def __init__(self, lm: nn.Module, embedding: _SlotEmbedding) -> None:
        super().__init__()
        self.lm = lm
        self.embedding = embedding

    @property
    def device(self) -> torch.device:
        return self.embedding.prompt_embeds.device

    def forward(self, input_ids: Tensor) -> Any:
        return self.lm(inputs_embeds=self.embedding(input_ids), use_cache=False)


def captum_token_attribution(
    model: Any, analysis: Any, *, n_steps: int = 16, baseline: Literal["zeros", "pad"] = "zeros",
    targets: Sequence[int] | None = None, backend: str | None = None,
) -> Tensor:
    """Reference: captum's ``LLMGradientAttribution(LayerIntegratedGradients(lm, embedding))`` —
    one full IG per generated token — on the same teacher-forced inputs; ``[targets, prompt]``.

    The slots enter captum's id-based input through :class:`_SlotEmbedding` (the layer that
    LayerIG interpolates), so the computation is the one :func:`attribute_tokens` does.
    ``backend``: LM attention backend during the run (None: the model's own).
    """
    from captum.attr import LayerIntegratedGradients, LLMGradientAttribution, TextTokenInput

    index = [i for i in resolve_targets(targets, len(analysis.generated_ids)) if i >= 0]
    with analysis_mode(model, backend):
        forced = teacher_force(model, analysis)
        layer = _SlotEmbedding(model.lm.get_input_embeddings(), forced.prompt_embeds)
        wrapper = _CaptumLM(model.lm, layer)
        ids = forced.prompt_ids.clone()
        slots = list(analysis.image_positions) + list(analysis.mask_positions)
        ids[slots] = -2
        inp = TextTokenInput("x", model.tokenizer)
        inp.inp_tensor = inp.itp_tensor = ids[None]
        inp.values = input_labels(model, analysis)
        inp.n_itp_features = len(inp.values)
        inp.baselines = -1 if baseline == "zeros" else int(model.tokenizer.pad_token_id)
        attr = LLMGradientAttribution(LayerIntegratedGradients(wrapper, layer), model.tokenizer)
        gen = forced.generated[: max(index) + 1]
        res = attr.attribute(inp, target=gen, n_steps=int(n_steps))
        return res.token_attr[index].detach().float().cpu()
