"""Explanation tools: attention rollout over vision transformers and grounding/faithfulness metrics."""

from forensix.explain.metrics import (
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
