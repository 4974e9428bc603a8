"""Patch attribution: how the score changes when parts of the image are hidden (captum perturbations).

:func:`attribute_patches` runs captum ``FeatureAblation`` / ``Occlusion`` over the image's patch
grid; the score is ``p_fake`` (detection prompt) or a generated token's log-probability, teacher-forced
(:mod:`~forensix.explain.replay`).

Example:
    >>> import numpy as np
    >>> from forensix.models.forensix_model import ForensixModel
    >>> m = ForensixModel.from_config("tiny")
    >>> attribute_patches(m, np.zeros((64, 64, 3), np.uint8), method="occlusion").heatmap().shape
    (64, 64)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from forensix.errors import BadConfigError
from forensix.explain.replay import (P_FAKE, ForcedSequence, append_generated, resolve_targets, target_values,
                                     teacher_force)
from forensix.explain.results import escape, html_result
from forensix.explain.rollout import upsample_to_pixels
from forensix.inline import heat_png_uri
from forensix.models.modes import analysis_mode
from forensix.models.outputs import VisionOutput

__all__ = ["PatchAttribution", "attribute_patches"]


@dataclass
class PatchAttribution:
    """Perturbation attribution over image patches: ``pixels`` ``[S, S]`` at the model's input size
    (score change per pixel, mean over channels), ``grid`` ``[gh, gw]`` (mean per patch),
    ``base_score`` = the score of the unperturbed image."""

    pixels: Tensor
    grid: Tensor
    base_score: float
    target: str
    method: str
    image_size: tuple[int, int]

    def heatmap(self) -> np.ndarray:
        """``H x W`` map at the image's original size, min-max normalised to [0, 1] (float32)."""
        return upsample_to_pixels(self.pixels[None].double(), self.image_size)[0].float().numpy()

    def show(self, image: np.ndarray | None = None) -> Any:
        """Self-contained HTML: the heatmap as an inline PNG (over ``image`` when given)."""
        return html_result(
            f'<figure style="margin:0;font-family:sans-serif"><img src="{heat_png_uri(self.heatmap(), image)}" style="width:224px">'
            f"<figcaption>{escape(self.method)} on {escape(self.target)} (base {self.base_score:.3f})</figcaption></figure>"
        )


def attribute_patches(
    model: Any,
    image: Any,
    *,
    method: Literal["occlusion", "ablation"] = "ablation",
    patch: int | None = None,
    stride: int | None = None,
    target: int | str = P_FAKE,
    analysis: Any = None,
    baselines: float | Tensor = 0.0,
    batch_size: int = 16,
) -> PatchAttribution:
    """Perturbation attribution of ``target`` to image patches with captum.

    ``method="ablation"``: ``FeatureAblation`` with a feature mask of ``patch x patch`` cells (default:
    the vision encoder's patch size); ``"occlusion"``: ``Occlusion`` with a ``patch`` window and
    ``stride`` (default ``patch``). ``target``: ``"p_fake"`` (detection prompt, as
    :meth:`ForensixModel.detect`) or a generated-token index of ``analysis`` (teacher-forced
    log-probability; the analysis is computed when not given). ``baselines``: the replacement value
    (or a ``[1, 3, S, S]`` tensor). Perturbations run ``batch_size`` at a time.

    Example:
        >>> import numpy as np
        >>> from forensix.models.forensix_model import ForensixModel
        >>> m = ForensixModel.from_config("tiny")
        >>> attribute_patches(m, np.zeros((64, 64, 3), np.uint8)).grid.shape
        torch.Size([4, 4])
    """
    from captum.attr import FeatureAblation, Occlusion

    if method not in ("occlusion", "ablation"):
        raise BadConfigError(f"method={method!r}: choose 'occlusion' or 'ablation'")
    patch = int(patch or model.vision.patch_size)
    with analysis_mode(model, None):
        pixels, sizes = model.preprocess(image)
        region = model.region_for(image)  # native mode: the localizer's own mask stays as analyze saw it

        def vision_of(px: Tensor) -> VisionOutput:
            return model.encode_image(px, None if region is None else region.expand(px.shape[0], -1, -1, -1))

        s = pixels.shape[-1]
        if patch < 1 or s % patch:
            raise BadConfigError(f"patch={patch}: must divide the model's input size {s}")
        if isinstance(target, str):
            if target != P_FAKE:
                raise BadConfigError(f"target={target!r}: use 'p_fake' or a generated-token index")

            def score(px: Tensor) -> Tensor:
                return model.p_fake(vision_of(px))

            name = P_FAKE
        else:
            analysis = analysis if analysis is not None else model.analyze(image, capture_attention=False)
            forced = teacher_force(model, analysis, pixels)
            t = resolve_targets([target], len(analysis.generated_ids))[0]
            embed = model.lm.get_input_embeddings()
            name = analysis.generated_tokens[t]

            def score(px: Tensor) -> Tensor:
                vis = vision_of(px)
                emb = _embed_batch(model, forced, vis, px.shape[0])
                seq, keep = append_generated(forced, emb, t + 1, embed)
                logits = model.lm(inputs_embeds=seq, use_cache=False, logits_to_keep=keep).logits
                return target_values(model, logits, forced, [t])[:, 0]

        with torch.no_grad():
            base_score = float(score(pixels)[0])
            if method == "ablation":
                gh = gw = s // patch
                cells = torch.arange(gh * gw, device=pixels.device).view(1, 1, gh, gw)
                mask = cells.repeat_interleave(patch, 2).repeat_interleave(patch, 3)
                attr = FeatureAblation(score).attribute(pixels, baselines=baselines, feature_mask=mask,
                                                        perturbations_per_eval=int(batch_size))
            else:
                st = int(stride or patch)
                attr = Occlusion(score).attribute(pixels, sliding_window_shapes=(3, patch, patch), strides=(3, st, st),
                                                  baselines=baselines, perturbations_per_eval=int(batch_size))
    pix = attr[0].float().mean(0).cpu()
    g = s // patch
    grid = pix.view(g, patch, g, patch).mean(dim=(1, 3))
    return PatchAttribution(pixels=pix, grid=grid, base_score=base_score, target=name, method=method, image_size=tuple(sizes[0]))


def _embed_batch(model: Any, forced: ForcedSequence, vision: VisionOutput, b: int) -> Tensor:
    """Prompt embeddings ``[b, P, D]`` of the forced prompt with ``b`` images' vision tokens in the slots."""
    t = forced.tokens
    grow = {k: v.expand(b, *v.shape[1:]) for k, v in vars(t).items() if isinstance(v, Tensor)}
    return model.embed(dataclasses.replace(t, **grow, lengths=list(t.lengths) * b), vision)
