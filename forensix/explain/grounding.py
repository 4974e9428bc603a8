"""Grounding: for every generated explanation token, a heatmap over the image.

Grounding methods are looked up by name in :data:`GROUNDING_METHODS` (:func:`list_grounding_methods`).
``method="attention"`` uses only what :meth:`ForensixModel.analyze` recorded (no model pass):

1. ``a_t`` = attention of token ``t``'s query to the image slots, mask slots and region words, heads fused
   (``head_fusion``) and averaged over ``layers`` (default: all LM layers);
2. image part: image token ``c`` average-pools the vision patches ``P(c)`` (the projector's
   adaptive average pool, written as a pooling matrix ``Q [n_image_tokens, n_patches]``); each
   output patch ``j`` draws on input patches through the vision encoder as the patch-to-patch block
   of attention rollout ``R[j, k]`` (rows and columns of patch tokens, CLS excluded). So the patch
   mass is ``m_t = a_t[image] · Q · R_pp`` (``[gh, gw]``), spread over each patch's pixels
   (bilinear upsampling times ``gh·gw / (H·W)``);
3. mask part: the mask tokens summarise the predicted mask, so the mask-slot share
   ``s_t = Σ a_t[mask]`` is spread over the predicted mask probabilities ``s_t · p / Σ p``; the
   region words (from stage 3: where the binary mask lies and its size) state the binary mask, so
   their share ``r_t = Σ a_t[region words]`` is spread over it, ``r_t · m / Σ m``;
4. map = image part + mask part at the image's original size, min-max normalised to [0, 1].

``method="gradient"`` (needs the model): ``|∂ log p(token_t | prefix) / ∂ pixels|`` summed over
channels, Gaussian-smoothed, resized and normalised; one teacher-forced pass, all tokens in one
batched backward pass.

Example:
    >>> import numpy as np
    >>> from forensix.models.forensix_model import ForensixModel
    >>> a = ForensixModel.from_config("tiny").analyze(np.zeros((64, 80, 3), np.uint8), max_new_tokens=3)
    >>> g = ground(a)
    >>> g.maps.shape[1:], float(g.maps.max()) <= 1.0
    (torch.Size([64, 80]), True)
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from forensix.errors import BadConfigError
from forensix.explain.explanation_metrics import deletion_insertion, energy_in_mask, map_auroc, pointing_game
from forensix.explain.registry import lookup
from forensix.explain.replay import append_generated, batched_grads, teacher_force
from forensix.explain.results import escape, html_result, load_result, save_result
from forensix.explain.rollout import attention_rollout, fuse_heads, upsample_to_pixels
from forensix.inline import heat_png_uri
from forensix.models.modes import analysis_mode

__all__ = ["Grounding", "GroundingMaps", "GroundingSettings", "GROUNDING_METHODS", "ground", "list_grounding_methods",
           "location_token_indices", "LOCATION_WORDS", "pooling_matrix"]


def _location_words() -> frozenset[str]:
    from forensix.data.describe import GRID_CELLS

    words = {w for cell in GRID_CELLS for w in cell.split("-")}
    words |= {"upper", "lower", "corner", "corners", "edge", "edges", "centre", "central", "side", "border"}
    return frozenset(words)


#: Words that name a place in the image (the 3x3 grid words of :data:`forensix.data.describe.GRID_CELLS` and kin).
LOCATION_WORDS = _location_words()


def location_token_indices(tokens: Sequence[str]) -> list[int]:
    """Indices of tokens that name a location (see :data:`LOCATION_WORDS`; case and spaces ignored).

    Example:
        >>> location_token_indices([" in", " the", " top", "-", "left", " of", " Center"])
        [2, 4, 6]
    """
    out = []
    for i, tok in enumerate(tokens):
        word = re.sub(r"[^a-z]", "", tok.replace("Ġ", " ").lower())
        if word in LOCATION_WORDS:
            out.append(i)
    return out


def pooling_matrix(grid: tuple[int, int], out: tuple[int, int]) -> Tensor:
    """``[out_h * out_w, gh * gw]`` weights of ``adaptive_avg_pool2d`` from ``grid`` to ``out`` (rows sum to 1).

    Example:
        >>> pooling_matrix((4, 4), (2, 2))[0].reshape(4, 4)[:2, :2].tolist()
        [[0.25, 0.25], [0.25, 0.25]]
    """
    gh, gw = grid
    eye = torch.eye(gh * gw, dtype=torch.float64).view(gh * gw, 1, gh, gw)
    return F.adaptive_avg_pool2d(eye, out).flatten(1).T.contiguous()


# --------------------------------------------------------------------------- result


@dataclass
class Grounding:
    """Per-token heatmaps ``maps`` ``[n_tokens, H, W]`` in [0, 1] for the generated ``tokens``.

    ``patch_maps`` ``[n, gh, gw]``: the raw vision-patch mass (attention method) or the pooled
    gradient magnitude (gradient method); ``mask_share`` ``[n]``: the attention share of the mask
    slots and region words (zeros for the gradient method)."""

    maps: Tensor
    tokens: list[str]
    method: str
    patch_maps: Tensor
    mask_share: Tensor
    image: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def location_tokens(self) -> list[int]:
        """Indices of tokens naming a location (:func:`location_token_indices`)."""
        return location_token_indices(self.tokens)

    def _index(self, token: int | str) -> int:
        if isinstance(token, str):
            key = token.strip().lower()
            stripped = [t.replace("Ġ", " ").strip().lower() for t in self.tokens]
            if key in stripped:
                return stripped.index(key)
            raise BadConfigError(f"token={token!r}: not among the generated tokens {self.tokens[:10]}...; pass an index")
        i = int(token)
        if not -len(self.tokens) <= i < len(self.tokens):
            raise BadConfigError(f"token={token}: there are {len(self.tokens)} generated tokens")
        return i % len(self.tokens)

    def map_for(self, token: int | str) -> np.ndarray:
        """The ``H x W`` map (float32) of a token, by index or by word (first match, case-insensitive)."""
        return self.maps[self._index(token)].numpy()

    def to_frame(self):
        """pandas frame, one row per token: index, token, is_location, peak_row, peak_col, mask_share."""
        import pandas as pd

        loc = set(self.location_tokens)
        n, h, w = self.maps.shape
        peaks = self.maps.flatten(1).argmax(1).tolist() if n else []
        return pd.DataFrame({
            "index": list(range(n)), "token": self.tokens, "is_location": [i in loc for i in range(n)],
            "peak_row": [p // w for p in peaks], "peak_col": [p % w for p in peaks],
            "mask_share": self.mask_share.tolist(),
        })

    def evaluate(
        self, gt_mask: Any, *, model: Any = None, image: Any = None, deletion: bool = False,
        tokens: Sequence[int] | None = None, deletion_steps: int = 16, substrate: str = "blur",
        tol: float | None = None,
    ):
        """Per-token grounding metrics against a ground-truth mask (``H x W``, 1 = manipulated).

        Columns: ``index``, ``token``, ``is_location``, ``pointing`` (hit, None for an empty mask),
        ``energy`` (in mask), ``auroc``; with ``deletion=True`` and a ``model`` also ``deletion_auc``
        and ``insertion_auc`` of ``p_fake`` (``model.detect`` on uint8 images, about
        ``deletion_steps`` points per curve). ``image`` defaults to the analysed image;
        ``tokens`` restricts the rows.
        """
        import pandas as pd

        mask = np.asarray(gt_mask.detach().cpu() if isinstance(gt_mask, Tensor) else gt_mask)
        if deletion and model is None:
            raise BadConfigError("deletion=True: pass model= (p_fake is the deletion score)")
        img = np.asarray(image) if image is not None else self.image
        if deletion and img is None:
            raise BadConfigError("deletion=True: pass image= (this grounding holds no image)")
        loc = set(self.location_tokens)
        rows = []
        for i in range(len(self.tokens)) if tokens is None else [self._index(t) for t in tokens]:
            heat = self.maps[i].numpy()
            row = {"index": i, "token": self.tokens[i], "is_location": i in loc,
                   "pointing": pointing_game(heat, mask, tol), "energy": energy_in_mask(heat, mask),
                   "auroc": map_auroc(heat, mask)}
            if deletion:
                step = max(1, math.ceil(heat.size / int(deletion_steps)))
                score = lambda batch: model.detect(list(batch))  # noqa: E731
                row["deletion_auc"] = deletion_insertion(img, heat, score, step=step, substrate=substrate).auc
                row["insertion_auc"] = deletion_insertion(img, heat, score, step=step, substrate=substrate, mode="insertion").auc
            rows.append(row)
        cols = ["index", "token", "is_location", "pointing", "energy", "auroc"] + (["deletion_auc", "insertion_auc"] if deletion else [])
        return pd.DataFrame(rows, columns=cols)

    def _html(self, max_tokens: int = 48, width: int = 96) -> str:
        loc = set(self.location_tokens)
        figs = []
        img = self.image
        for i, tok in enumerate(self.tokens[:max_tokens]):
            heat = self.maps[i].numpy()
            uri = heat_png_uri(heat, img if img is not None and img.shape[:2] == heat.shape else None)
            border = "2px solid #c0392b" if i in loc else "1px solid #ccc"
            figs.append(
                f'<figure style="margin:2px;display:inline-block;text-align:center;font-size:11px">'
                f'<img src="{uri}" style="width:{width}px;border:{border}"><figcaption style="white-space:pre">'
                f"{i}: {escape(repr(tok))}</figcaption></figure>"
            )
        more = len(self.tokens) - max_tokens
        tail = f"<p><i>{more} more tokens not shown</i></p>" if more > 0 else ""
        return (
            f'<div style="font-family:sans-serif"><p>grounding ({escape(self.method)}); '
            "location tokens framed red</p>" + "".join(figs) + tail + "</div>"
        )

    def show(self, max_tokens: int = 48) -> Any:
        """Self-contained HTML: one small inline PNG heatmap per token (``IPython.display.HTML`` or ``str``)."""
        return html_result(self._html(max_tokens))

    def _repr_html_(self) -> str:
        return self._html()

    def save(self, path: str | Path) -> Path:
        """Write a ``.safetensors`` file (maps, image) with tokens and settings as JSON metadata."""
        tensors = {"maps": self.maps, "patch_maps": self.patch_maps, "mask_share": self.mask_share}
        if self.image is not None:
            tensors["image"] = torch.from_numpy(np.ascontiguousarray(self.image))
        return save_result(path, tensors, {"tokens": self.tokens, "method": self.method, "meta": self.meta}, kind="Grounding")

    @classmethod
    def load(cls, path: str | Path) -> Grounding:
        """Read a file written by :meth:`save`."""
        t, m = load_result(path, kind="Grounding")
        image = t["image"].numpy() if "image" in t else None
        return cls(maps=t["maps"], tokens=m["tokens"], method=m["method"], patch_maps=t["patch_maps"],
                   mask_share=t["mask_share"], image=image, meta=m["meta"])


# --------------------------------------------------------------------------- methods


class GroundingMaps(NamedTuple):
    """What a grounding method returns: ``maps`` ``[n, H, W]`` in [0, 1] at the image's size,
    ``patch_maps`` ``[n, gh, gw]`` and ``mask_share`` ``[n]`` (see :class:`Grounding`)."""

    maps: Tensor
    patch_maps: Tensor
    mask_share: Tensor


@dataclass(frozen=True)
class GroundingSettings:
    """The settings :func:`ground` hands every grounding method; each method reads the ones it uses.

    Example:
        >>> GroundingSettings(layers=(-1,)).head_fusion
        'mean'
    """

    head_fusion: str = "mean"
    layers: tuple[int, ...] | None = None
    rollout_start: int = 0
    sigma: float | None = None
    chunk_size: int = 8


def _normalise(maps: Tensor) -> Tensor:
    flat = maps.flatten(1)
    lo = flat.amin(1, keepdim=True)
    span = flat.amax(1, keepdim=True) - lo
    out = torch.where(span > 0, (flat - lo) / span.clamp_min(1e-30), torch.zeros_like(flat))
    return out.view_as(maps)


def _attention_maps(analysis: Any, model: Any, settings: GroundingSettings) -> GroundingMaps:
    """LM slot attention composed with vision rollout and the predicted mask (module docstring); no model pass."""
    head_fusion, layers = settings.head_fusion, settings.layers
    att = analysis.slot_attention
    if att is None or analysis.vision_attention is None:
        raise BadConfigError("analysis: no attention recorded; call model.analyze(image, capture_attention=True)")
    n_img, n_mask = len(analysis.image_positions), len(analysis.mask_positions)
    n_region = len(getattr(analysis, "region_positions", []))
    if att.shape[-1] != n_img + n_mask + n_region:
        raise BadConfigError(f"analysis.slot_attention: {att.shape[-1]} slots for {n_img} image + {n_mask} mask positions"
                             f" + {n_region} region words")
    att = att.double()
    if layers is not None:
        idx = list(layers)
        if not idx or any(not -att.shape[1] <= i < att.shape[1] for i in idx):
            raise BadConfigError(f"layers={layers}: pick indices among the {att.shape[1]} LM layers")
        att = att[:, idx]
    fused = fuse_heads(att, head_fusion, dim=2).mean(dim=1)  # [n, slots]
    a_img, mask_share = fused[:, :n_img], fused[:, n_img : n_img + n_mask].sum(1)
    region_share = fused[:, n_img + n_mask :].sum(1)

    vis = [v.double()[None] if v.dim() == 3 else v.double() for v in analysis.vision_attention]
    gh, gw = analysis.vision_grid
    n_prefix = vis[0].shape[-1] - gh * gw
    if n_prefix < 0:
        raise BadConfigError(f"analysis.vision_grid={analysis.vision_grid}: more patches than vision tokens")
    rollout = attention_rollout(vis, head_fusion=head_fusion, start_layer=settings.rollout_start, n_prefix_tokens=n_prefix)[0]
    r_pp = rollout[n_prefix:, n_prefix:]  # output patch -> input patch
    q = pooling_matrix((gh, gw), tuple(analysis.image_token_grid)).to(r_pp)  # image token -> patches
    patch = (a_img @ q @ r_pp).view(-1, gh, gw)

    h, w = analysis.image.shape[:2]
    up = F.interpolate(patch[:, None], size=(h, w), mode="bilinear", align_corners=False)[:, 0] * (gh * gw) / (h * w)
    mask_part = mask_share[:, None, None] * _spread(analysis.mask_probs)[None]
    binary = analysis.mask
    region_part = region_share[:, None, None] * _spread(binary if binary.any() else analysis.mask_probs)[None]
    return GroundingMaps(_normalise(up + mask_part + region_part).float(), patch.float(), (mask_share + region_share).float())


def _spread(weights: Any) -> Tensor:
    """``weights`` scaled to sum to 1 (all zeros when they sum to 0), as float64."""
    w = torch.as_tensor(np.asarray(weights), dtype=torch.float64)
    total = float(w.sum())
    return w / total if total > 0 else torch.zeros_like(w)


def _gradient_maps(analysis: Any, model: Any, settings: GroundingSettings) -> GroundingMaps:
    """Smoothed pixel-gradient magnitude of each token's log-probability (needs the model)."""
    if model is None:
        raise BadConfigError("method='gradient': pass model= (the model that made the analysis)")
    n = len(analysis.generated_ids)
    h, w = analysis.image.shape[:2]
    with analysis_mode(model):
        pixels, _ = model.preprocess(analysis.image)
        s = pixels.shape[-1]
        if n == 0:
            return GroundingMaps(torch.zeros(0, h, w), torch.zeros(0, *analysis.vision_grid), torch.zeros(0))
        forced = teacher_force(model, analysis, pixels)  # validates the prompt
        with torch.enable_grad():
            px = pixels.detach().clone().requires_grad_(True)
            vision = model.encode_image(px, model.region_for(analysis.image))
            emb = model.embed(forced.tokens, vision)
            seq, keep = append_generated(forced, emb, n, model.lm.get_input_embeddings())
            logits = model.lm(inputs_embeds=seq, use_cache=False, logits_to_keep=keep).logits
            logp = logits.float().log_softmax(-1)[0, torch.arange(n), forced.generated][None]  # [1, n]
            grads = batched_grads(logp, px, list(range(n)), max(1, int(settings.chunk_size)))  # [n, 1, 3, S, S]
    sal = grads[:, 0].abs().sum(1).double()  # [n, S, S]
    sigma = s / 56.0 if settings.sigma is None else float(settings.sigma)
    if sigma > 0:
        radius = max(1, int(3 * sigma))
        x = torch.arange(-radius, radius + 1, dtype=torch.float64)
        k = torch.exp(-0.5 * (x / sigma) ** 2)
        k = k / k.sum()
        sal = F.conv2d(F.pad(sal[:, None], (radius, radius, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
        sal = F.conv2d(F.pad(sal, (0, 0, radius, radius), mode="reflect"), k.view(1, 1, -1, 1))[:, 0]
    gh, gw = analysis.vision_grid
    patch = F.adaptive_avg_pool2d(sal[:, None], (gh, gw))[:, 0].float()
    return GroundingMaps(upsample_to_pixels(sal, (h, w)).float(), patch, torch.zeros(n))


#: Grounding methods by name: ``method(analysis, model, settings) -> GroundingMaps`` (``model`` may be None).
GROUNDING_METHODS: dict[str, Callable[[Any, Any, GroundingSettings], GroundingMaps]] = {
    "attention": _attention_maps,
    "gradient": _gradient_maps,
}


def list_grounding_methods() -> list[str]:
    """Names of the grounding methods :func:`ground` accepts.

    Example:
        >>> list_grounding_methods()
        ['attention', 'gradient']
    """
    return sorted(GROUNDING_METHODS)


def ground(
    analysis: Any,
    *,
    method: str = "attention",
    model: Any = None,
    head_fusion: Literal["mean", "max", "min"] = "mean",
    layers: Sequence[int] | None = None,
    rollout_start: int = 0,
    sigma: float | None = None,
    chunk_size: int = 8,
) -> Grounding:
    """Heatmaps ``[n_generated, H, W]`` (image's original size, each in [0, 1]) for every generated token.

    ``method`` names one of :data:`GROUNDING_METHODS`. ``"attention"`` composes the recorded LM slot
    attention with vision rollout and the predicted mask (see the module docstring; ``head_fusion``
    applies to both, ``layers`` picks LM layers, ``rollout_start`` the first vision block); it runs
    no model pass. ``"gradient"``
    needs ``model`` (the one that made the analysis): pixel-gradient magnitude of each token's
    log-probability, smoothed with a Gaussian of ``sigma`` pixels at the model's input size
    (default ``S / 56``: 4 px at 224). The model is left unchanged, also on errors.

    Example:
        >>> import numpy as np
        >>> from forensix.models.forensix_model import ForensixModel
        >>> m = ForensixModel.from_config("tiny")
        >>> a = m.analyze(np.zeros((64, 64, 3), np.uint8), max_new_tokens=2)
        >>> ground(a, method="gradient", model=m).maps.shape
        torch.Size([2, 64, 64])
    """
    run = lookup(GROUNDING_METHODS, method, argument="method", kind="grounding method")
    settings = GroundingSettings(head_fusion=head_fusion, layers=None if layers is None else tuple(layers),
                                 rollout_start=rollout_start, sigma=sigma, chunk_size=chunk_size)
    maps, patch, share = run(analysis, model, settings)
    meta = {"head_fusion": head_fusion, "layers": list(layers) if layers is not None else None,
            "rollout_start": rollout_start, "sigma": sigma}
    return Grounding(maps=maps, tokens=list(analysis.generated_tokens), method=method, patch_maps=patch,
                     mask_share=share, image=np.asarray(analysis.image), meta=meta)
