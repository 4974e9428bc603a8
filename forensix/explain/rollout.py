"""Attention rollout and gradient-weighted rollout over a vision transformer.

Two layers of API:

* pure tensor math on attention stacks: :func:`attention_rollout` (Abnar & Zuidema 2020),
  :func:`gradient_rollout` (Chefer et al. 2021), :func:`relevance_to_patches`,
  :func:`upsample_to_pixels`;
* model helpers that capture attentions from any ``transformers`` vision model (ViT, CLIP vision)
  or any module that returns ``attentions`` when called with ``output_attentions=True``:
  :func:`vision_attentions` and :func:`rollout_maps`, which leave the model exactly as they found
  it (:func:`forensix.models.modes.preserved_model_state` and the eager attention backend), also on
  errors.

:func:`rollout_maps` looks its ``method`` up in :data:`ROLLOUT_METHODS` (:func:`list_rollout_methods`)
and every ``head_fusion`` in :data:`HEAD_FUSIONS`.

Example:
    >>> import torch
    >>> att = [torch.softmax(torch.randn(2, 3, 5, 5), -1) for _ in range(4)]
    >>> attention_rollout(att).shape
    torch.Size([2, 5, 5])
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from forensix.errors import BadConfigError, BadImageError
from forensix.explain.registry import lookup
from forensix.hooks import attention_implementation
from forensix.models.modes import preserved_model_state

HeadFusion = Literal["mean", "max", "min"]

__all__ = [
    "HEAD_FUSIONS",
    "ROLLOUT_METHODS",
    "RolloutSettings",
    "RolloutVariant",
    "list_rollout_methods",
    "fuse_heads",
    "attention_rollout",
    "gradient_rollout",
    "relevance_to_patches",
    "upsample_to_pixels",
    "vision_attentions",
    "rollout_maps",
    "RolloutResult",
]


# --------------------------------------------------------------------------- tensor math


def _check_stack(attentions: Sequence[Tensor], name: str) -> list[Tensor]:
    if isinstance(attentions, Tensor):  # a stacked [L, B, H, T, T] tensor
        attentions = list(attentions.unbind(0))
    attentions = list(attentions)
    if not attentions:
        raise BadConfigError(f"{name}: got no layers; pass one [B, H, T, T] tensor per layer")
    shape = attentions[0].shape
    for i, a in enumerate(attentions):
        if a.dim() != 4 or a.shape[-1] != a.shape[-2]:
            raise BadConfigError(
                f"{name}[{i}]: expected a [B, heads, T, T] attention tensor, got shape {tuple(a.shape)}"
            )
        if a.shape != shape:
            raise BadConfigError(
                f"{name}[{i}]: shape {tuple(a.shape)} differs from layer 0 {tuple(shape)}; "
                "all layers must share batch, heads and tokens"
            )
    return attentions


def _check_start(start_layer: int, n_layers: int) -> None:
    if not 0 <= start_layer < n_layers:
        raise BadConfigError(f"start_layer={start_layer}: must lie in [0, {n_layers - 1}] for {n_layers} layers")


def _work_dtype(t: Tensor) -> torch.dtype:
    return torch.float64 if t.dtype == torch.float64 else torch.float32


#: How the heads of a layer's attention are fused, by name: ``fusion(attention, dim=...) -> Tensor``.
HEAD_FUSIONS: dict[str, Callable[..., Tensor]] = {"mean": torch.mean, "max": torch.amax, "min": torch.amin}


def fuse_heads(a: Tensor, head_fusion: str, dim: int = 1) -> Tensor:
    """Fuse the head dimension ``dim`` of attention ``a`` by a fusion of :data:`HEAD_FUSIONS`.

    Example:
        >>> fuse_heads(torch.tensor([[1.0, 3.0]]), "max").tolist()
        [3.0]
    """
    return lookup(HEAD_FUSIONS, head_fusion, argument="head_fusion", kind="head fusion")(a, dim=dim)


def _discard_lowest(fused: Tensor, discard_ratio: float, n_prefix_tokens: int) -> Tensor:
    """Zero the lowest ``discard_ratio`` fraction of each row's unprotected entries.

    Protected (never discarded): the diagonal (self-attention) and the columns of the
    ``n_prefix_tokens`` prefix tokens (CLS, ...). In each row of each batch element the ``k``
    smallest unprotected entries are set to 0, ``k = floor(discard_ratio * m)`` with ``m`` the
    fewest unprotected entries of any row (``T - n_prefix - 1`` with a prefix, ``T - 1`` without);
    ties: the lower column index goes first.
    """
    t = fused.shape[-1]
    protected = torch.eye(t, dtype=torch.bool, device=fused.device)
    protected[:, : max(0, n_prefix_tokens)] = True
    n_free = int((~protected).sum(dim=-1).min().item()) if t > 0 else 0
    k = int(math.floor(discard_ratio * n_free + 1e-9))
    if k == 0:
        return fused
    ranked = fused.masked_fill(protected, float("inf"))
    order = ranked.argsort(dim=-1, stable=True)[..., :k]
    return fused.scatter(-1, order, 0.0)


def attention_rollout(
    attentions: Sequence[Tensor],
    *,
    head_fusion: HeadFusion = "mean",
    discard_ratio: float = 0.0,
    start_layer: int = 0,
    n_prefix_tokens: int = 1,
) -> Tensor:
    """Attention rollout (Abnar & Zuidema 2020) of per-layer attentions ``[B, H, T, T]``.

    For each layer ``l >= start_layer`` (forward order): fuse heads (mean/max/min), optionally
    zero the lowest ``discard_ratio`` fraction of each row (see below), add the identity and
    renormalise every row to sum 1: ``Â_l = (A_l + I) / rowsum(A_l + I)``. The result is
    ``R = Â_L · … · Â_start`` with shape ``[B, T, T]``; row ``i`` tells how much token ``i`` at the
    output draws from each input token.

    Discarding works per batch element and per row: the diagonal and the columns of the
    ``n_prefix_tokens`` prefix tokens (CLS) are always kept; of the other entries of each row the
    ``floor(discard_ratio * m)`` smallest are zeroed, ``m = T - n_prefix_tokens - 1`` (``T - 1``
    without a prefix), ties broken towards the lower column index. (vit-explain discards over the whole
    flattened matrix, for batch element 0 only, and keeps only the CLS→CLS entry.)

    Example:
        >>> att = [torch.softmax(torch.randn(1, 2, 4, 4), -1) for _ in range(2)]
        >>> torch.allclose(attention_rollout(att).sum(-1), torch.ones(1, 4))
        True
    """
    layers = _check_stack(attentions, "attentions")
    _check_start(start_layer, len(layers))
    if not 0.0 <= discard_ratio < 1.0:
        raise BadConfigError(f"discard_ratio={discard_ratio}: must lie in [0, 1)")
    dtype = _work_dtype(layers[0])
    b, _, t, _ = layers[0].shape
    eye = torch.eye(t, dtype=dtype, device=layers[0].device)
    result = eye.expand(b, t, t).clone()
    for a in layers[start_layer:]:
        fused = fuse_heads(a.detach().to(dtype), head_fusion)
        if discard_ratio > 0:
            fused = _discard_lowest(fused, discard_ratio, n_prefix_tokens)
        a_hat = fused + eye
        a_hat = a_hat / a_hat.sum(dim=-1, keepdim=True)
        result = a_hat @ result
    return result


def gradient_rollout(
    attentions: Sequence[Tensor],
    gradients: Sequence[Tensor],
    *,
    start_layer: int = 0,
) -> Tensor:
    """Gradient-weighted rollout (Chefer et al. 2021, "Generic attention-model explainability").

    ``Ā_l = mean_heads((∇A_l ⊙ A_l).clamp(min=0))``; ``R_0 = I``; ``R ← R + Ā_l · R`` for
    ``l = start_layer … L-1`` in forward order. ``gradients[l]`` must be the gradient of the
    target with respect to ``attentions[l]`` (same layer, same forward order — vit-explain pairs
    them in reverse). Returns ``[B, T, T]``.

    Example:
        >>> a = [torch.softmax(torch.randn(1, 2, 4, 4), -1) for _ in range(2)]
        >>> gradient_rollout(a, [torch.ones_like(x) for x in a]).shape
        torch.Size([1, 4, 4])
    """
    layers = _check_stack(attentions, "attentions")
    grads = _check_stack(gradients, "gradients")
    if len(grads) != len(layers) or grads[0].shape != layers[0].shape:
        raise BadConfigError(
            f"gradients: got {len(grads)} layers of shape {tuple(grads[0].shape)} for {len(layers)} "
            f"attention layers of shape {tuple(layers[0].shape)}; pass one gradient per attention layer"
        )
    _check_start(start_layer, len(layers))
    dtype = _work_dtype(layers[0])
    b, _, t, _ = layers[0].shape
    result = torch.eye(t, dtype=dtype, device=layers[0].device).expand(b, t, t).clone()
    for a, g in zip(layers[start_layer:], grads[start_layer:]):
        cam = (g.detach().to(dtype) * a.detach().to(dtype)).clamp(min=0).mean(dim=1)
        result = result + cam @ result
    return result


def relevance_to_patches(
    relevance: Tensor,
    *,
    grid: tuple[int, int],
    n_prefix_tokens: int = 1,
    query: Literal["cls", "mean"] | None = None,
) -> Tensor:
    """Turn a token relevance matrix ``[B, T, T]`` into patch maps ``[B, gh, gw]``.

    ``query="cls"`` takes row 0 (the CLS token); ``"mean"`` averages the rows of the patch tokens.
    ``None`` (default) picks ``"cls"`` when ``n_prefix_tokens > 0`` and ``"mean"`` otherwise. The
    row is restricted to the patch columns ``n_prefix_tokens:`` and reshaped row-major to
    ``grid = (gh, gw)``, which may be non-square.

    Example:
        >>> relevance_to_patches(torch.rand(2, 16, 16), grid=(3, 5)).shape
        torch.Size([2, 3, 5])
    """
    if relevance.dim() != 3 or relevance.shape[-1] != relevance.shape[-2]:
        raise BadConfigError(f"relevance: expected [B, T, T], got shape {tuple(relevance.shape)}")
    gh, gw = (int(grid[0]), int(grid[1]))
    t = relevance.shape[-1]
    if n_prefix_tokens < 0 or t - n_prefix_tokens != gh * gw:
        raise BadConfigError(
            f"grid={grid}, n_prefix_tokens={n_prefix_tokens}: {gh}x{gw} patches + {n_prefix_tokens} prefix "
            f"tokens do not make the {t} tokens of relevance; fix grid or n_prefix_tokens"
        )
    if query is None:
        query = "cls" if n_prefix_tokens > 0 else "mean"
    if query == "cls":
        if n_prefix_tokens == 0:
            raise BadConfigError("query='cls': there is no CLS token (n_prefix_tokens=0); use query='mean'")
        row = relevance[:, 0, n_prefix_tokens:]
    elif query == "mean":
        row = relevance[:, n_prefix_tokens:, n_prefix_tokens:].mean(dim=1)
    else:
        raise BadConfigError(f"query={query!r}: choose 'cls' or 'mean'")
    return row.reshape(relevance.shape[0], gh, gw)


def upsample_to_pixels(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinearly upsample ``[B, gh, gw]`` maps to ``[B, H, W]`` and min-max normalise each to [0, 1].

    Uses ``align_corners=False``. A constant map becomes all zeros.

    Example:
        >>> m = upsample_to_pixels(torch.rand(2, 3, 5), size=(24, 40))
        >>> m.shape, float(m.min()), float(m.max())
        (torch.Size([2, 24, 40]), 0.0, 1.0)
    """
    if maps.dim() != 3:
        raise BadConfigError(f"maps: expected [B, gh, gw], got shape {tuple(maps.shape)}")
    dtype = _work_dtype(maps)
    up = F.interpolate(maps[:, None].to(dtype), size=(int(size[0]), int(size[1])), mode="bilinear", align_corners=False)[:, 0]
    flat = up.flatten(1)
    lo = flat.amin(dim=1, keepdim=True)
    span = flat.amax(dim=1, keepdim=True) - lo
    normed = torch.where(span > 0, (flat - lo) / span.clamp_min(torch.finfo(dtype).tiny), torch.zeros_like(flat))
    return normed.reshape(up.shape)


# --------------------------------------------------------------------------- model helpers


def _accepts(model: nn.Module, name: str) -> bool:
    try:
        return name in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def _pair(x: Any) -> tuple[int, int] | None:
    if x is None:
        return None
    if isinstance(x, (list, tuple)):
        return (int(x[0]), int(x[1]))
    return (int(x), int(x))


def _extract_attentions(out: Any) -> list[Tensor]:
    atts = out.get("attentions") if isinstance(out, Mapping) else getattr(out, "attentions", None)
    if not atts or any(a is None for a in atts):
        raise BadConfigError(
            "model: its output has no 'attentions' when called with output_attentions=True; pass a "
            "transformers vision model (ViTModel, CLIPVisionModel) or a module that returns them"
        )
    return list(atts)


def _default_target(out: Any) -> Tensor:
    """Predicted-class logit if the output has ``logits``; else the norm of ``pooler_output``;
    else the norm of the first token of ``last_hidden_state`` (the CLS feature). Shape ``[B]``."""
    get = out.get if isinstance(out, Mapping) else (lambda k: getattr(out, k, None))
    logits = get("logits")
    if logits is not None:
        return logits.flatten(1).amax(dim=1)
    pooled = get("pooler_output")
    if pooled is not None:
        return pooled.flatten(1).norm(dim=1)
    hidden = get("last_hidden_state")
    if hidden is None:
        raise BadConfigError(
            "target: the model output has no logits, pooler_output or last_hidden_state; pass target=callable"
        )
    return hidden[:, 0].norm(dim=-1)


def _check_pixels(pixel_values: Tensor) -> None:
    if not isinstance(pixel_values, Tensor) or pixel_values.dim() != 4 or not pixel_values.is_floating_point():
        shape = tuple(pixel_values.shape) if isinstance(pixel_values, Tensor) else type(pixel_values).__name__
        raise BadImageError(f"pixel_values: expected a float tensor [B, 3, H, W], got {shape}")


def _forward_kwargs(model: nn.Module, pixel_values: Tensor, extra: dict[str, Any]) -> dict[str, Any]:
    kwargs = dict(extra)
    kwargs["output_attentions"] = True
    size = _pair(getattr(getattr(model, "config", None), "image_size", None))
    if (
        "interpolate_pos_encoding" not in kwargs
        and size is not None
        and tuple(pixel_values.shape[-2:]) != size
        and _accepts(model, "interpolate_pos_encoding")
    ):
        kwargs["interpolate_pos_encoding"] = True
    return kwargs


def vision_attentions(
    model: nn.Module,
    pixel_values: Tensor,
    *,
    with_grad: bool = False,
    target: Callable[[Any], Tensor] | None = None,
    **forward_kwargs: Any,
) -> list[Tensor] | tuple[list[Tensor], list[Tensor]]:
    """Run ``model(pixel_values, output_attentions=True)`` and return its attention maps.

    The model runs in eval mode with the eager attention backend; when the input size differs
    from ``config.image_size`` and the forward accepts ``interpolate_pos_encoding``, it is set to
    True (ViT and CLIP vision then take non-square inputs). Everything is restored afterwards,
    also on errors (see :func:`~forensix.models.modes.preserved_model_state`).

    With ``with_grad=True`` returns ``(attentions, gradients)``, both lists in forward order,
    where ``gradients[l] = d target / d attentions[l]``. ``target(outputs)`` returns a scalar or
    one value per image (summed; images do not interact in eval mode); by default the
    predicted-class logit, else the norm of ``pooler_output``, else the norm of the CLS feature.
    Gradients come from ``torch.autograd.grad`` on a copy of the input that requires grad, so no
    parameter ``.grad`` is touched and frozen models work.

    Example:
        >>> from transformers import ViTConfig, ViTModel
        >>> m = ViTModel(ViTConfig(image_size=16, patch_size=8, hidden_size=8, num_hidden_layers=2,
        ...     num_attention_heads=2, intermediate_size=8))
        >>> [a.shape for a in vision_attentions(m, torch.rand(1, 3, 16, 16))]
        [torch.Size([1, 2, 5, 5]), torch.Size([1, 2, 5, 5])]
    """
    _check_pixels(pixel_values)
    kwargs = _forward_kwargs(model, pixel_values, forward_kwargs)
    with preserved_model_state(model), attention_implementation(model, "eager"):
        model.eval()
        if not with_grad:
            with torch.no_grad():
                out = model(pixel_values, **kwargs)
            return [a.detach() for a in _extract_attentions(out)]
        with torch.enable_grad():
            x = pixel_values.detach().clone().requires_grad_(True)
            out = model(x, **kwargs)
            atts = _extract_attentions(out)
            value = (target or _default_target)(out)
            if not isinstance(value, Tensor):
                raise BadConfigError("target: must return a torch.Tensor (a scalar or one value per image)")
            grads = torch.autograd.grad(value.sum(), atts, allow_unused=True)
        grads = [torch.zeros_like(a) if g is None else g for a, g in zip(atts, grads)]
        return [a.detach() for a in atts], [g.detach() for g in grads]


@dataclass
class RolloutResult:
    """Rollout maps of a batch.

    ``patch``: ``[B, gh, gw]`` raw relevance of each patch (the CLS row, or the mean patch row);
    ``pixel``: ``[B, H, W]`` bilinear upsampling of ``patch``, min-max normalised per map to [0, 1];
    ``relevance``: the full ``[B, T, T]`` rollout matrix.
    """

    patch: Tensor
    pixel: Tensor
    relevance: Tensor
    grid: tuple[int, int]
    n_prefix_tokens: int
    method: str


def _infer_layout(
    model: nn.Module, pixel_values: Tensor, n_tokens: int, grid: tuple[int, int] | None, n_prefix: int | None
) -> tuple[tuple[int, int], int]:
    if grid is None:
        patch = _pair(getattr(getattr(model, "config", None), "patch_size", None))
        if patch is not None:
            grid = (pixel_values.shape[-2] // patch[0], pixel_values.shape[-1] // patch[1])
        else:
            for prefix in [n_prefix] if n_prefix is not None else [1, 0]:
                side = math.isqrt(max(n_tokens - prefix, 0))
                if side * side == n_tokens - prefix and side > 0:
                    grid = (side, side)
                    n_prefix = prefix
                    break
            if grid is None:
                raise BadConfigError(
                    f"grid: cannot infer the patch grid of {n_tokens} tokens (model has no config.patch_size); pass grid=(gh, gw)"
                )
    if n_prefix is None:
        n_prefix = n_tokens - grid[0] * grid[1]
    if n_prefix < 0 or n_tokens - n_prefix != grid[0] * grid[1]:
        raise BadConfigError(
            f"grid={grid}, n_prefix_tokens={n_prefix}: do not match the model's {n_tokens} tokens; fix them"
        )
    return (int(grid[0]), int(grid[1])), int(n_prefix)


class RolloutSettings(NamedTuple):
    """The settings :func:`rollout_maps` hands every rollout variant; each reads the ones it uses."""

    head_fusion: str = "mean"
    discard_ratio: float = 0.0
    start_layer: int = 0


@dataclass(frozen=True)
class RolloutVariant:
    """A rollout variant: whether it needs the target's gradients of the attentions, and ``combine``:
    ``(attentions, gradients or None, n_prefix_tokens, settings) -> relevance [B, T, T]``.

    Example:
        >>> att = [torch.softmax(torch.randn(1, 2, 5, 5), -1)]
        >>> ROLLOUT_METHODS["rollout"].combine(att, None, 1, RolloutSettings()).shape
        torch.Size([1, 5, 5])
    """

    needs_gradients: bool
    combine: Callable[[list[Tensor], list[Tensor] | None, int, RolloutSettings], Tensor]


def _plain_rollout(attentions: list[Tensor], gradients: list[Tensor] | None, n_prefix: int, settings: RolloutSettings) -> Tensor:
    return attention_rollout(attentions, head_fusion=settings.head_fusion, discard_ratio=settings.discard_ratio,
                             start_layer=settings.start_layer, n_prefix_tokens=n_prefix)


def _gradient_weighted_rollout(
    attentions: list[Tensor], gradients: list[Tensor] | None, n_prefix: int, settings: RolloutSettings,
) -> Tensor:
    return gradient_rollout(attentions, gradients, start_layer=settings.start_layer)


#: Rollout variants by name: :func:`attention_rollout` (``"rollout"``) and :func:`gradient_rollout` (``"grad"``).
ROLLOUT_METHODS: dict[str, RolloutVariant] = {
    "rollout": RolloutVariant(needs_gradients=False, combine=_plain_rollout),
    "grad": RolloutVariant(needs_gradients=True, combine=_gradient_weighted_rollout),
}


def list_rollout_methods() -> list[str]:
    """Names of the rollout variants :func:`rollout_maps` accepts.

    Example:
        >>> list_rollout_methods()
        ['grad', 'rollout']
    """
    return sorted(ROLLOUT_METHODS)


def rollout_maps(
    model: nn.Module,
    pixel_values: Tensor,
    *,
    method: str = "rollout",
    head_fusion: HeadFusion = "mean",
    discard_ratio: float = 0.0,
    start_layer: int = 0,
    n_prefix_tokens: int | None = None,
    grid: tuple[int, int] | None = None,
    pixel_size: tuple[int, int] | None = None,
    target: Callable[[Any], Tensor] | None = None,
    **forward_kwargs: Any,
) -> RolloutResult:
    """Rollout heatmaps of a vision transformer for a batch ``[B, 3, H, W]``.

    ``method`` names one of :data:`ROLLOUT_METHODS`: ``"rollout"`` is :func:`attention_rollout`,
    ``"grad"`` :func:`gradient_rollout` with the gradients of ``target`` (see :func:`vision_attentions`;
    ``head_fusion`` and ``discard_ratio`` do not apply). ``grid`` defaults to ``(H // patch, W // patch)`` from
    ``config.patch_size``; ``n_prefix_tokens`` to the tokens that are not patches (1 for ViT and
    CLIP: the CLS token). ``pixel_size`` defaults to the input ``(H, W)``.

    Example:
        >>> from transformers import ViTConfig, ViTModel
        >>> m = ViTModel(ViTConfig(image_size=16, patch_size=8, hidden_size=8, num_hidden_layers=2,
        ...     num_attention_heads=2, intermediate_size=8))
        >>> r = rollout_maps(m, torch.rand(2, 3, 16, 16))
        >>> r.patch.shape, r.pixel.shape
        (torch.Size([2, 2, 2]), torch.Size([2, 16, 16]))
    """
    variant = lookup(ROLLOUT_METHODS, method, argument="method", kind="rollout method")
    _check_pixels(pixel_values)
    if variant.needs_gradients:
        atts, grads = vision_attentions(model, pixel_values, with_grad=True, target=target, **forward_kwargs)
    else:
        atts, grads = vision_attentions(model, pixel_values, **forward_kwargs), None
    grid, n_prefix = _infer_layout(model, pixel_values, atts[0].shape[-1], grid, n_prefix_tokens)
    relevance = variant.combine(atts, grads, n_prefix, RolloutSettings(head_fusion, discard_ratio, start_layer))
    patch = relevance_to_patches(relevance, grid=grid, n_prefix_tokens=n_prefix)
    size = pixel_size if pixel_size is not None else tuple(pixel_values.shape[-2:])
    pixel = upsample_to_pixels(patch, size=size)
    return RolloutResult(patch=patch, pixel=pixel, relevance=relevance, grid=grid, n_prefix_tokens=n_prefix, method=method)
