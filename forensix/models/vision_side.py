"""The vision side of a :class:`~forensix.models.forensix_model.ForensixModel`, assembled from its pieces.

The ViT and the trace branch read the model's copy of each image; the FL-Expert turns their patch
tokens, the forgery prompts and the trace skips into mask logits (or, with ``resolution="native"``,
the localizer reads the photos at their own pixels and the language side reads that map pooled to
the model's size; with ``"multiscale"``, the mean of that map and the copy's); the mask encoder, the clue head and the projector turn the fused tokens and the
mask into what the language model reads (a :class:`~forensix.models.outputs.VisionOutput`).

Example:
    >>> import numpy as np
    >>> from forensix.models import ForensixModel
    >>> model = ForensixModel.from_config("tiny")
    >>> pixels, vision, maps = encode_images(model, [np.zeros((40, 56, 3), np.uint8)])
    >>> tuple(pixels.shape), maps[0].shape, tuple(vision.mask_score.shape)
    ((1, 3, 64, 64), (40, 56), (1,))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from forensix.errors import BadConfigError
from forensix.models.clue_evidence import pixel_contrast
from forensix.models.mask_encoder import region_features, top_mean
from forensix.models.native import RESOLUTIONS, multiscale, native_probabilities, pooled
from forensix.models.objectives import LocalizerOutput
from forensix.models.outputs import VisionOutput
from forensix.models.pixels import as_pixels, image_arrays, probability_maps

if TYPE_CHECKING:
    from forensix.models.forensix_model import ForensixModel

__all__ = ["MASK_SCORE_FRACTION", "assemble", "encode_images"]

#: The localizer's detection evidence: the mean of the top 1 % of its mask probabilities (``forensix.eval.model_quality.mask_top``).
MASK_SCORE_FRACTION = 0.01


def assemble(model: ForensixModel, images: torch.Tensor, mask: torch.Tensor | None,
             native: Sequence[torch.Tensor] | None = None,
             ) -> tuple[VisionOutput, LocalizerOutput | None, list[torch.Tensor] | None]:
    """The vision tensors of ``[B, 3, S, S]`` images in ``[0, 1]``, the FL-Expert's whole output (what the
    localizer's objective reads) and, with ``native`` (the photos at their own size), their probability maps.

    ``mask`` (e.g. the ground truth in stage 2) is what the mask encoder reads instead of the predicted
    probabilities. With ``native`` the FL-Expert output is ``None`` and the trace hooks record the
    localizer's pass on the photo, not the copy's pass for the language side.
    """
    vis = model.vision(images)
    localizer, maps = None, None
    if native is None:
        trace = model.trace(images, vis.grid)
        localizer = model.fl_expert([p + trace.tokens for p in vis.layer_patches], model.prompts(), trace.features, vis.grid)
        mask_logits = localizer.logits
    else:
        maps = native_probabilities(model, vis, native)
        trace = model.trace(images, vis.grid, record=False)
        if model.config.resolution == "multiscale":
            copy = model.fl_expert([p + trace.tokens for p in vis.layer_patches], model.prompts(), trace.features,
                                   vis.grid, record=False).logits.sigmoid()  # the hooks keep the native pass
            maps = [multiscale(m, copy[i : i + 1]) for i, m in enumerate(maps)]
        mask_logits = torch.logit(pooled(maps, model.config.image_size).to(model.device).clamp(1e-6, 1 - 1e-6))
    fused = model.fusion(vis.patches + trace.tokens)
    mask_for_tokens = mask if mask is not None else mask_logits.detach().sigmoid()
    region = region_features(mask_for_tokens, fused, vis.grid, model.config.mask_encoder.layout)
    clue_inputs = [region, fused.mean(1)] + ([pixel_contrast(images, mask_for_tokens)] if model.config.clue.evidence else [])
    vision = VisionOutput(
        mask_logits=mask_logits,
        mask_score=top_mean(mask if mask is not None else mask_logits.sigmoid(), MASK_SCORE_FRACTION),
        clue_logits=model.clue_head(torch.cat(clue_inputs, dim=1)),
        mask_tokens=model.mask_encoder(region),
        region_mask=mask_for_tokens.detach(),
        image_tokens=model.projector(fused, vis.grid),
    )
    return vision, localizer, maps


def encode_images(model: ForensixModel, images: Any, masks: Sequence[Any] | None = None,
                  ) -> tuple[torch.Tensor, VisionOutput, list[np.ndarray]]:
    """The model's copy ``[B, 3, S, S]``, the vision tensors and one probability map per image at its own size.

    ``masks`` (user masks, one per image) replace the predicted ones; otherwise the localizer runs at
    native resolution, on the copy, or both (``"multiscale"``), as ``model.config.resolution`` says.
    """
    if model.config.resolution not in RESOLUTIONS:
        raise BadConfigError(f"config.resolution={model.config.resolution!r}; choose one of {RESOLUTIONS}")
    arrays = image_arrays(images)
    pixels, sizes = model.preprocess(arrays)
    if masks is not None:
        vision = assemble(model, pixels, model.preprocess_masks(masks, sizes))[0]
        return pixels, vision, probability_maps(vision.mask_logits, sizes)
    if model.config.resolution != "resize":
        vision, _, native = assemble(model, pixels, None, native=[as_pixels(a) for a in arrays])
        return pixels, vision, [m[0, 0].detach().cpu().numpy().astype(np.float32) for m in native]
    vision = assemble(model, pixels, None)[0]
    return pixels, vision, probability_maps(vision.mask_logits, sizes)
