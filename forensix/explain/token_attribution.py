"""Token attribution: which prompt tokens, image tokens and mask tokens each generated token rests on.

:func:`attribute_tokens` runs a method of :data:`ATTRIBUTION_METHODS` (:func:`list_attribution_methods`),
by default ``"ig"``: Integrated Gradients on the language model's input embeddings for
every generated token (target: ``log p(token_t | prefix)``) and for ``p_fake`` (target: the
FakeScope log-odds ``log p("fake") − log p("real")`` at the last prompt position, the logits
:attr:`Analysis.p_fake` comes from). The sequence (prompt + generated ids) is teacher-forced
(:mod:`~forensix.explain.replay`) *once per batch of interpolation steps*: the steps are the batch
dimension and all targets share one backward pass (``torch.autograd.grad(..., is_grads_batched=True)``),
chunked over targets. Only the prompt positions move along the path (generated positions keep their
embeddings), as in captum's ``LLMGradientAttribution(LayerIntegratedGradients(...))``, which
:func:`~forensix.explain.captum_reference.captum_token_attribution` runs as the per-token reference.
Attribution to image patches by perturbation: :mod:`~forensix.explain.patch_attribution`.

Example:
    >>> import numpy as np
    >>> from forensix.models.forensix_model import ForensixModel
    >>> model = ForensixModel.from_config("tiny")
    >>> a = model.analyze(np.zeros((64, 64, 3), np.uint8), max_new_tokens=3)
    >>> attr = attribute_tokens(model, a, n_steps=4)
    >>> attr.scores.shape == (len(a.generated_ids) + 1, len(a.prompt_ids))
    True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from torch import Tensor

from forensix.errors import BadConfigError
from forensix.explain.registry import lookup
from forensix.explain.replay import (P_FAKE, ForcedSequence, append_generated, grads_from_cotangents,
                                     input_labels, resolve_targets, target_values, teacher_force)
from forensix.explain.results import escape, html_result, load_result, save_result
from forensix.inline import score_colour
from forensix.models.modes import analysis_mode

__all__ = ["ATTRIBUTION_METHODS", "AttributionScores", "AttributionSettings", "TokenAttribution", "Words", "attribute_tokens",
           "list_attribution_methods", "merge_subwords"]


# --------------------------------------------------------------------------- words


class Words(NamedTuple):
    """Word-level attribution: ``words[j]`` covers input positions ``groups[j]``; ``scores`` ``[targets, words]``."""

    words: list[str]
    scores: Tensor
    groups: list[list[int]]


def _starts_word(token: str) -> bool:
    if not token or token[0] in " Ġ\n\tĊ▁" or not token[0].isalnum():
        return True
    return token.startswith("<") and token.endswith(">")


def merge_subwords(tokens: Sequence[str]) -> list[list[int]]:
    """Group token positions into words: a token that starts without a space (`` ``/``Ġ``/``▁``)
    and with a letter or digit continues the previous word; special tokens (``<...>``), slots,
    punctuation and newlines stand alone.

    Example:
        >>> merge_subwords(["Ġfore", "ns", "ix", ",", "Ġan", "<img 0,0>", "Ġimage"])
        [[0, 1, 2], [3], [4], [5], [6]]
    """
    groups: list[list[int]] = []
    prev_special = True
    for i, tok in enumerate(tokens):
        special = tok.startswith("<") and tok.endswith(">") or (bool(tok) and not tok[0].isalnum() and tok[0] not in " Ġ▁")
        if groups and not prev_special and not _starts_word(tok):
            groups[-1].append(i)
        else:
            groups.append([i])
        prev_special = special
    return groups


# --------------------------------------------------------------------------- result


@dataclass
class TokenAttribution:
    """Attribution of target tokens (rows) to prompt positions (columns).

    ``scores[k, j]``: IG attribution of target ``k`` to prompt position ``j`` (summed over the
    embedding dimension). ``target_values`` / ``baseline_values``: the target function at the input
    and at the baseline; completeness says ``scores.sum(1) ≈ target_values − baseline_values``.
    ``target_index[k]``: the generated-token index of target ``k`` (−1 for ``p_fake``).
    """

    scores: Tensor
    target_tokens: list[str]
    input_tokens: list[str]
    target_index: list[int]
    input_ids: list[int]
    image_positions: list[int]
    mask_positions: list[int]
    image_grid: tuple[int, int]
    target_values: Tensor
    baseline_values: Tensor
    method: str = "ig"
    n_steps: int = 16
    baseline: str = "zeros"
    meta: dict[str, Any] = field(default_factory=dict)

    # ---------------------------------------------------------------- derived
    @property
    def completeness_gap(self) -> Tensor:
        """``scores.sum(1) − (target_values − baseline_values)`` per target (→ 0 with more steps)."""
        return self.scores.sum(1) - (self.target_values - self.baseline_values)

    def _row(self, target: int | str) -> int:
        if isinstance(target, str):
            if target == P_FAKE and -1 in self.target_index:
                return self.target_index.index(-1)
            if target in self.target_tokens:
                return self.target_tokens.index(target)
            stripped = [t.strip() for t in self.target_tokens]
            if target.strip() in stripped:
                return stripped.index(target.strip())
            raise BadConfigError(f"target={target!r}: not among the targets {self.target_tokens[:8]}...; pass a row index")
        row = int(target)
        if not -len(self.target_tokens) <= row < len(self.target_tokens):
            raise BadConfigError(f"target={target}: there are {len(self.target_tokens)} targets")
        return row

    def image_map(self, target: int | str) -> Tensor:
        """Attribution of ``target`` (row index, token string or ``"p_fake"``) to the image tokens, ``[gh, gw]``."""
        row = self.scores[self._row(target)]
        return row[self.image_positions].reshape(self.image_grid)

    def words(self) -> Words:
        """Sum scores over the subword tokens of each word (see :func:`merge_subwords`)."""
        groups = merge_subwords(self.input_tokens)
        words = ["".join(self.input_tokens[i] for i in g).replace("Ġ", " ").strip() or self.input_tokens[g[0]] for g in groups]
        scores = torch.stack([self.scores[:, g].sum(1) for g in groups], dim=1)
        return Words(words, scores, groups)

    def to_frame(self, wide: bool = False):
        """pandas frame: long (``target``, ``target_token``, ``position``, ``input_token``, ``kind``, ``score``)
        or wide (targets x input positions)."""
        import pandas as pd

        kinds = ["text"] * len(self.input_tokens)
        for p in self.image_positions:
            kinds[p] = "image"
        for p in self.mask_positions:
            kinds[p] = "mask"
        s = self.scores.detach().cpu().numpy()
        if wide:
            cols = [f"{j}:{t}" for j, t in enumerate(self.input_tokens)]
            return pd.DataFrame(s, index=[f"{k}:{t}" for k, t in enumerate(self.target_tokens)], columns=cols)
        n_t, n_p = s.shape
        return pd.DataFrame({
            "target": np.repeat(np.arange(n_t), n_p),
            "target_token": np.repeat(np.array(self.target_tokens, dtype=object), n_p),
            "position": np.tile(np.arange(n_p), n_t),
            "input_token": np.tile(np.array(self.input_tokens, dtype=object), n_t),
            "kind": np.tile(np.array(kinds, dtype=object), n_t),
            "score": s.ravel(),
        })

    def _html(self, max_targets: int = 64) -> str:
        rows = []
        for k in range(min(len(self.target_tokens), max_targets)):
            row = self.scores[k].detach().cpu().numpy()
            vmax = float(np.abs(row).max()) or 1.0
            spans = "".join(
                f'<span title="{j}: {v:+.4f}" style="background:{score_colour(v, vmax)};padding:0 1px;'
                f'border-radius:2px;white-space:pre">{escape(t)}</span>'
                for j, (t, v) in enumerate(zip(self.input_tokens, row))
            )
            gh, gw = self.image_grid
            img = self.image_map(k).detach().cpu().numpy()
            cells = "".join(
                "<tr>" + "".join(
                    f'<td style="width:10px;height:10px;background:{score_colour(img[r, c], vmax)};border:1px solid #ddd"></td>'
                    for c in range(gw)
                ) + "</tr>"
                for r in range(gh)
            )
            gap = float(self.completeness_gap[k])
            rows.append(
                f'<tr><td style="vertical-align:top;padding:4px"><b>{escape(repr(self.target_tokens[k]))}</b><br>'
                f'<small>f={float(self.target_values[k]):.3f}, gap={gap:+.3f}</small></td>'
                f'<td style="vertical-align:top;padding:4px"><table style="border-collapse:collapse">{cells}</table></td>'
                f'<td style="padding:4px;font-family:monospace;font-size:11px;line-height:1.6">{spans}</td></tr>'
            )
        more = len(self.target_tokens) - max_targets
        tail = f"<p><i>{more} more targets not shown</i></p>" if more > 0 else ""
        return (
            '<div style="font-family:sans-serif;font-size:12px">'
            f"<p>{escape(self.method.upper())} attribution, {self.n_steps} steps, baseline {escape(self.baseline)}; "
            '<span style="background:rgba(220,40,40,.6)">positive</span> / '
            '<span style="background:rgba(40,90,220,.6)">negative</span>, scaled per row</p>'
            '<table style="border-collapse:collapse"><tr><th>target</th><th>image tokens</th><th>prompt</th></tr>'
            + "".join(rows) + "</table>" + tail + "</div>"
        )

    def show(self, max_targets: int = 64) -> Any:
        """Self-contained HTML (inline CSS only) as ``IPython.display.HTML`` (a ``str`` without IPython)."""
        return html_result(self._html(max_targets))

    def _repr_html_(self) -> str:
        return self._html()

    # ---------------------------------------------------------------- persistence
    def save(self, path: str | Path) -> Path:
        """Write a ``.safetensors`` file (scores and values) with the tokens and settings as JSON metadata."""
        meta = {
            "target_tokens": self.target_tokens, "input_tokens": self.input_tokens, "target_index": self.target_index,
            "input_ids": self.input_ids, "image_positions": self.image_positions, "mask_positions": self.mask_positions,
            "image_grid": list(self.image_grid), "method": self.method, "n_steps": self.n_steps,
            "baseline": self.baseline, "meta": self.meta,
        }
        tensors = {"scores": self.scores, "target_values": self.target_values, "baseline_values": self.baseline_values}
        return save_result(path, tensors, meta, kind="TokenAttribution")

    @classmethod
    def load(cls, path: str | Path) -> TokenAttribution:
        """Read a file written by :meth:`save`."""
        t, m = load_result(path, kind="TokenAttribution")
        return cls(scores=t["scores"], target_values=t["target_values"], baseline_values=t["baseline_values"],
                   target_tokens=m["target_tokens"], input_tokens=m["input_tokens"], target_index=m["target_index"],
                   input_ids=m["input_ids"], image_positions=m["image_positions"], mask_positions=m["mask_positions"],
                   image_grid=tuple(m["image_grid"]), method=m["method"], n_steps=m["n_steps"],
                   baseline=m["baseline"], meta=m["meta"])


# --------------------------------------------------------------------------- methods


class AttributionScores(NamedTuple):
    """What a token attribution method returns: ``scores`` ``[K, P]`` (target ``k``, prompt position ``j``) and
    the targets' values at the input and at the baseline, ``[K]`` each (see :class:`TokenAttribution`)."""

    scores: Tensor
    target_values: Tensor
    baseline_values: Tensor


@dataclass(frozen=True)
class AttributionSettings:
    """The settings :func:`attribute_tokens` hands every attribution method; each reads the ones it uses.

    Example:
        >>> AttributionSettings(n_steps=4).baseline
        'zeros'
    """

    n_steps: int = 16
    baseline: str | int | Tensor = "zeros"
    riemann: str = "gausslegendre"
    chunk_size: int = 8


def _baseline_embeds(model: Any, forced: ForcedSequence, baseline: str | int | Tensor) -> Tensor:
    if isinstance(baseline, Tensor):
        if tuple(baseline.shape) != tuple(forced.prompt_embeds.shape):
            raise BadConfigError(f"baseline: tensor of shape {tuple(baseline.shape)}; pass [P, D] = {tuple(forced.prompt_embeds.shape)}")
        return baseline.to(forced.prompt_embeds)
    if baseline == "zeros":
        return torch.zeros_like(forced.prompt_embeds)
    if baseline == "pad" or isinstance(baseline, int):
        token = model.tokenizer.pad_token_id if baseline == "pad" else int(baseline)
        with torch.no_grad():
            return model.lm.get_input_embeddings()(torch.full_like(forced.prompt_ids, token)).to(forced.prompt_embeds.dtype)
    raise BadConfigError(f"baseline={baseline!r}: choose 'zeros', 'pad', a token id or a [P, D] tensor")


def _ig_params(n_steps: int, riemann: str) -> tuple[list[float], list[float]]:
    from captum.attr._utils.approximation_methods import approximation_parameters

    if int(n_steps) < 1:
        raise BadConfigError(f"n_steps={n_steps}: must be >= 1")
    try:
        step_fn, alpha_fn = approximation_parameters(riemann)
    except ValueError as err:
        raise BadConfigError(f"riemann={riemann!r}: {err}; use 'gausslegendre' or 'riemann_trapezoid'") from err
    return step_fn(int(n_steps)), alpha_fn(int(n_steps))


def _head_cotangents(model: Any, hidden: Tensor, forced: ForcedSequence, index: list[int]) -> Tensor:
    """``d target_k / d hidden`` for every target ``k``: ``[K, *hidden.shape]``, nonzero only at the
    target's position. Token targets sit at distinct positions, so one backward pass through the
    output layer serves them all (plus one for ``p_fake``); the transformer is not involved."""
    head = model.lm.get_output_embeddings()
    h = hidden.detach().requires_grad_(True)
    cot = torch.zeros(len(index), *h.shape, dtype=h.dtype, device=h.device)
    with torch.enable_grad():
        positions = sorted({i for i in index if i >= 0})
        if positions:
            pos = torch.tensor(positions, device=h.device)
            logp = head(h[:, pos]).float().log_softmax(-1)
            vals = logp[:, torch.arange(len(positions)), forced.generated[pos]]
            (g_tok,) = torch.autograd.grad(vals.sum(), h)
        if -1 in index:
            ans = model.answer_log_probs(head(h[:, :1])[:, 0])
            (g_pf,) = torch.autograd.grad((ans[:, 0] - ans[:, 1]).sum(), h)
    for k, i in enumerate(index):
        if i < 0:
            cot[k] = g_pf
        else:
            cot[k, :, i] = g_tok[:, i]
    return cot


def _integrated_gradients(model: Any, forced: ForcedSequence, index: list[int], settings: AttributionSettings) -> AttributionScores:
    """Integrated Gradients from the baseline to the prompt embeddings: the interpolation steps form one
    batch, and every target's gradient comes from one batched backward pass per ``chunk_size`` targets."""
    step_sizes, alphas = _ig_params(settings.n_steps, settings.riemann)
    embed = model.lm.get_input_embeddings()
    x = forced.prompt_embeds[None]
    base = _baseline_embeds(model, forced, settings.baseline)[None]
    needed = max(index) + 1
    with torch.no_grad():  # completeness: f(input), f(baseline)
        seq, keep = append_generated(forced, torch.cat([x, base]), needed, embed)
        ends = target_values(model, model.lm(inputs_embeds=seq, use_cache=False, logits_to_keep=keep).logits, forced, index)
    with torch.enable_grad():
        scaled = torch.cat([base + a * (x - base) for a in alphas], dim=0).requires_grad_()
        seq, keep = append_generated(forced, scaled, needed, embed)
        hidden = model.lm.base_model(inputs_embeds=seq, use_cache=False).last_hidden_state[:, -keep:]
        cot = _head_cotangents(model, hidden.detach(), forced, index)  # [K, S, keep, D]
        grads = grads_from_cotangents(hidden, scaled, cot, max(1, int(settings.chunk_size)))
    weights = torch.tensor(step_sizes).float().view(1, -1, 1, 1).to(grads.device)
    total = (grads * weights).sum(1)  # [K, P, D]
    scores = (total * (x - base)).sum(-1).detach().float().cpu()
    return AttributionScores(scores, ends[0].float().cpu(), ends[1].float().cpu())


#: Token attribution methods by name: ``method(model, forced, targets, settings) -> AttributionScores``, run in
#: :func:`~forensix.explain.replay.analysis_mode` on the analysis's :class:`~forensix.explain.replay.ForcedSequence`
#: (``targets``: generated-token indices, −1 for ``p_fake``).
ATTRIBUTION_METHODS: dict[str, Callable[[Any, ForcedSequence, list[int], AttributionSettings], AttributionScores]] = {
    "ig": _integrated_gradients,
}


def list_attribution_methods() -> list[str]:
    """Names of the token attribution methods :func:`attribute_tokens` accepts.

    Example:
        >>> list_attribution_methods()
        ['ig']
    """
    return sorted(ATTRIBUTION_METHODS)


def attribute_tokens(
    model: Any,
    analysis: Any,
    *,
    method: str = "ig",
    n_steps: int = 16,
    baseline: Literal["zeros", "pad"] | int | Tensor = "zeros",
    targets: Sequence[int | str] | None = None,
    riemann: str = "gausslegendre",
    chunk_size: int = 8,
) -> TokenAttribution:
    """Attribution of each generated token (and ``p_fake``) to the prompt embeddings; ``method`` names one
    of :data:`ATTRIBUTION_METHODS` (``"ig"``: Integrated Gradients, the only one so far).

    ``targets``: generated-token indices and/or ``"p_fake"`` (default: every generated token, then
    ``p_fake``). Token ``t``'s target is ``log p(generated_t | prompt, generated_<t)``; the
    ``p_fake`` target is the log-odds ``log p("fake") − log p("real")`` at the last prompt
    position. ``baseline``: ``"zeros"`` (zero embeddings), ``"pad"`` (the pad token's embedding
    at every prompt position, slots included), a token id (its embedding everywhere) or a
    ``[P, D]`` tensor. Note: with pre-RMSNorm language models the zero baseline puts most of the
    path's change in a thin region near it (RMSNorm is scale invariant), so completeness needs many
    steps there; a token baseline gives a smoother path. ``riemann``: captum's approximation method.

    The ``n_steps`` interpolation points form one batch; the graph is built once and every target's
    gradient comes from one batched backward pass per ``chunk_size`` targets. The model is left
    unchanged (mode, ``requires_grad``, hooks, attention backend), also on errors.

    Example:
        >>> import numpy as np
        >>> from forensix.models.forensix_model import ForensixModel
        >>> m = ForensixModel.from_config("tiny")
        >>> a = m.analyze(np.zeros((64, 64, 3), np.uint8), max_new_tokens=2)
        >>> attribute_tokens(m, a, n_steps=2, targets=["p_fake"]).image_map("p_fake").shape
        torch.Size([2, 2])
    """
    run = lookup(ATTRIBUTION_METHODS, method, argument="method", kind="token attribution method")
    index = resolve_targets(targets, len(analysis.generated_ids))
    settings = AttributionSettings(n_steps=n_steps, baseline=baseline, riemann=riemann, chunk_size=chunk_size)
    with analysis_mode(model):
        scores, values, baseline_values = run(model, teacher_force(model, analysis), index, settings)
    tok = [P_FAKE if i < 0 else analysis.generated_tokens[i] for i in index]
    return TokenAttribution(
        scores=scores, target_tokens=tok, input_tokens=input_labels(model, analysis), target_index=index,
        input_ids=list(analysis.prompt_ids), image_positions=list(analysis.image_positions),
        mask_positions=list(analysis.mask_positions), image_grid=tuple(analysis.image_token_grid),
        target_values=values, baseline_values=baseline_values, method=method,
        n_steps=int(n_steps), baseline=baseline if isinstance(baseline, str) else f"custom:{baseline if isinstance(baseline, int) else 'tensor'}", meta={"riemann": riemann},
    )
