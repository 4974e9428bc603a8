"""Explanations of an analysis: where the model looked and what its answer rests on.

What is where:

* :mod:`~forensix.explain.rollout`: attention rollout and gradient rollout over the vision encoder.
* :mod:`~forensix.explain.grounding`: a heatmap over the image for every generated token.
* :mod:`~forensix.explain.token_attribution`: Integrated Gradients of each generated token over the prompt.
* :mod:`~forensix.explain.patch_attribution`: captum occlusion / ablation over image patches.
* :mod:`~forensix.explain.captum_reference`: captum's per-token IG, the reference token attribution is checked against.
* :mod:`~forensix.explain.replay`: the teacher-forced replay of an analysis that the gradient methods share.
* :mod:`~forensix.explain.explanation_metrics`: grounding (pointing game, energy, AUROC) and faithfulness
  (deletion/insertion, ERASER) of explanations.
* :mod:`~forensix.explain.results`: saving, loading and HTML display of the results.
* :mod:`~forensix.explain.registry`: the lookup behind the method registries :data:`GROUNDING_METHODS`,
  :data:`ATTRIBUTION_METHODS` and :data:`ROLLOUT_METHODS` (listed by :func:`list_grounding_methods`,
  :func:`list_attribution_methods`, :func:`list_rollout_methods`).

Example:
    >>> list_grounding_methods(), list_attribution_methods(), list_rollout_methods()
    (['attention', 'gradient'], ['ig'], ['grad', 'rollout'])
"""

from forensix.explain.captum_reference import captum_token_attribution
from forensix.explain.explanation_metrics import (
    ChanceLevels,
    CurveResult,
    comprehensiveness,
    deletion_insertion,
    energy_in_mask,
    map_auroc,
    mask_area_baseline,
    pointing_game,
    pointing_game_score,
    random_map_baseline,
    sufficiency,
)
from forensix.explain.grounding import GROUNDING_METHODS, Grounding, ground, list_grounding_methods, location_token_indices
from forensix.explain.patch_attribution import PatchAttribution, attribute_patches
from forensix.explain.rollout import (
    ROLLOUT_METHODS,
    RolloutResult,
    attention_rollout,
    gradient_rollout,
    list_rollout_methods,
    relevance_to_patches,
    rollout_maps,
    upsample_to_pixels,
    vision_attentions,
)
from forensix.explain.token_attribution import (
    ATTRIBUTION_METHODS,
    TokenAttribution,
    attribute_tokens,
    list_attribution_methods,
    merge_subwords,
)

__all__ = [
    "GROUNDING_METHODS",
    "ATTRIBUTION_METHODS",
    "ROLLOUT_METHODS",
    "list_grounding_methods",
    "list_attribution_methods",
    "list_rollout_methods",
    "PatchAttribution",
    "TokenAttribution",
    "attribute_patches",
    "attribute_tokens",
    "captum_token_attribution",
    "merge_subwords",
    "Grounding",
    "ground",
    "location_token_indices",
    "RolloutResult",
    "attention_rollout",
    "gradient_rollout",
    "relevance_to_patches",
    "rollout_maps",
    "upsample_to_pixels",
    "vision_attentions",
    "ChanceLevels",
    "CurveResult",
    "comprehensiveness",
    "deletion_insertion",
    "energy_in_mask",
    "map_auroc",
    "mask_area_baseline",
    "pointing_game",
    "pointing_game_score",
    "random_map_baseline",
    "sufficiency",
]
