"""Training: stage specs and the one loop that runs them."""

from forensix.train.loop import TrainConfig, Trainer, TrainResult, train_stage, validation_losses
from forensix.train.stages import STAGES, StageSpec, get_stage

__all__ = ["STAGES", "StageSpec", "TrainConfig", "TrainResult", "Trainer", "get_stage", "train_stage", "validation_losses"]
