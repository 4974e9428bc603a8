"""The three training stages of ForgeryGPT as declarative specs.

| stage | name | trainable | losses | mask fed to the mask encoder |
|---|---|---|---|---|
| 1 | image-text alignment | projector (+ vision, trace, fusion when not pretrained) | lm | predicted |
| 2 | mask-text alignment | trace, fusion, prompts, FL-Expert, mask encoder, clue head, projector | mask + clue + lm | ground truth |
| 3 | IFDL instruction tuning | LoRA on the LM, projector, mask encoder (the clue head refitted first) | lm | predicted |

Everything else is frozen (and kept in eval mode: no dropout, no drifting running statistics).
On the small preset, stage 2 computes its LM term on every 4th step only (``lm_every``): on a CPU a
step with it takes about eight times one without, and the localizer gains from more steps.
Printing a spec applied to a model shows trainable/frozen parameter counts per piece.

From stage 3 on, the region prompter also speaks in words: where the mask lies and how large it is
(``config.region_in_prompt``), words the LoRA-tuned language model can carry into its answer.

Example:
    >>> spec = get_stage(2)
    >>> spec.name, spec.losses
    ('mask-text alignment', ('mask', 'clue', 'lm'))
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

import pandas as pd
from torch import nn

from forensix.errors import BadConfigError


@dataclass(frozen=True)
class StageDefaults:
    """Optimisation defaults of a stage for one preset."""

    steps: int
    batch_size: int
    lr: float
    warmup: float = 0.05
    grad_accum: int = 1
    lm_subbatch: int | None = None
    lm_every: int = 1  # the language-model term on every k-th step only (it costs far more than the vision side)


@dataclass(frozen=True)
class StageSpec:
    """What one stage trains, on which data, with which losses, and its per-preset defaults."""

    stage: int
    name: str
    trainable: tuple[str, ...]
    losses: tuple[str, ...]
    mask_source: str
    lora: bool = False
    region_words: bool = False
    train_vision_if_random: bool = False
    refit_clues: bool = False  # first refit the clue head on the model's predicted masks (forensix.train.clue_fit)
    defaults: dict[str, StageDefaults] = field(default_factory=dict)

    def recipe(self) -> dict[str, Any]:
        """What the stage does, without its per-preset defaults: the pieces, losses, mask source and prompt format.

        Example:
            >>> get_stage(3).recipe()["region_words"], get_stage(2).recipe()["losses"]
            (True, ['mask', 'clue', 'lm'])
        """
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                for f in fields(self) if f.name != "defaults"}

    def trainable_pieces(self, model: nn.Module) -> tuple[str, ...]:
        """Pieces trained on this model (adds the vision encoder in stage 1 when it is not pretrained)."""
        pieces = list(self.trainable)
        if self.train_vision_if_random and model.config.vision.source is None:
            pieces += ["vision", "trace", "fusion"]
        return tuple(dict.fromkeys(pieces + list(model.heads)))

    def apply(self, model: nn.Module) -> nn.Module:
        """Enable LoRA if needed, turn on region words in the prompt if the stage uses them, and set
        ``requires_grad`` per piece (LoRA weights only, in the LM)."""
        if self.lora:
            model.enable_lora()
        if self.region_words:
            model.config.region_in_prompt = True
        pieces = self.trainable_pieces(model)
        for name, param in model.named_parameters():
            piece = name.split(".")[0]
            if piece == "heads":
                param.requires_grad_(name.split(".")[2] in pieces)
            elif piece == "lm":  # LoRA weights with ``lora``; every LM weight only when "lm" is listed
                param.requires_grad_("lm" in pieces or (self.lora and "lora_" in name))
            else:
                param.requires_grad_(piece in pieces)
        return model

    def train_mode(self, model: nn.Module) -> None:
        """Training mode for trained pieces, eval mode for frozen ones (no dropout, no drifting running statistics)."""
        pieces = self.trainable_pieces(model)
        model.train()
        for name, child in model.named_children():
            if name not in pieces and not (name == "lm" and self.lora):  # frozen
                child.eval()

    def parameter_table(self, model: nn.Module) -> pd.DataFrame:
        """Trainable and frozen parameter counts per piece (call after :meth:`apply`)."""
        rows: dict[str, list[int]] = {}
        for name, param in model.named_parameters():
            counts = rows.setdefault(name.split(".")[0], [0, 0])
            counts[0 if param.requires_grad else 1] += param.numel()
        frame = pd.DataFrame([(k, t, f) for k, (t, f) in rows.items()], columns=["piece", "trainable", "frozen"])
        total = pd.DataFrame([("total", frame.trainable.sum(), frame.frozen.sum())], columns=frame.columns)
        return pd.concat([frame, total], ignore_index=True).set_index("piece")

    def describe(self, model: nn.Module | None = None) -> str:
        """A readable summary; with a model, includes the parameter table."""
        lines = [
            f"Stage {self.stage}: {self.name}",
            f"  trains: {', '.join(self.trainable_pieces(model) if model is not None else self.trainable)}"
            + (" + LoRA on the language model" if self.lora else ""),
            f"  losses: {' + '.join(self.losses)}; mask encoder reads the {self.mask_source} mask"
            + ("; its region words join the prompt" if self.region_words else ""),
        ]
        if model is not None:
            lines.append(self.parameter_table(model).to_string())
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.describe()


STAGES: dict[int, StageSpec] = {
    1: StageSpec(
        stage=1, name="image-text alignment", trainable=("projector",), losses=("lm",), mask_source="predicted",
        train_vision_if_random=True,
        defaults={"tiny": StageDefaults(20, 4, 3e-3), "small": StageDefaults(15, 8, 2e-3), "paper": StageDefaults(4000, 32, 1e-3)},
    ),
    2: StageSpec(
        stage=2, name="mask-text alignment",
        trainable=("trace", "fusion", "prompts", "fl_expert", "mask_encoder", "clue_head", "projector"),
        losses=("mask", "clue", "lm"), mask_source="gt",
        defaults={"tiny": StageDefaults(20, 4, 3e-3), "small": StageDefaults(480, 8, 4e-3, lm_subbatch=2, lm_every=4),
                  "paper": StageDefaults(8000, 32, 5e-4, lm_subbatch=8)},
    ),
    3: StageSpec(
        stage=3, name="IFDL instruction tuning", trainable=("projector", "mask_encoder"), losses=("lm",),
        mask_source="predicted", lora=True, region_words=True, refit_clues=True,
        defaults={"tiny": StageDefaults(20, 4, 3e-3), "small": StageDefaults(30, 4, 2e-3), "paper": StageDefaults(6000, 16, 2e-4)},
    ),
}


def get_stage(stage: int | str, **changes) -> StageSpec:
    """The spec of stage 1, 2 or 3, optionally with fields replaced (``losses=("lm",)``)."""
    try:
        spec = STAGES[int(stage)]
    except (KeyError, ValueError):
        raise BadConfigError(f"unknown stage {stage!r}; choose 1, 2 or 3") from None
    return replace(spec, **changes) if changes else spec


__all__ = ["STAGES", "StageDefaults", "StageSpec", "get_stage"]
