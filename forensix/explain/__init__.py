"""Explanation tools: attention rollout, grounding/faithfulness metrics, token attribution and grounding maps."""

from forensix.explain.attribution import (
    PatchAttribution,
    TokenAttribution,
    attribute_patches,
    attribute_tokens,
    captum_token_attribution,
    merge_subwords,
)
from forensix.explain.grounding import Grounding, ground, location_token_indices

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
from forensix.explain.rollout import (
    RolloutResult,
    attention_rollout,
    eager_attention,
    gradient_rollout,
    preserved_model_state,
    relevance_to_patches,
    rollout_maps,
    upsample_to_pixels,
    vision_attentions,
)

__all__ = [
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
    "eager_attention",
    "gradient_rollout",
    "preserved_model_state",
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
