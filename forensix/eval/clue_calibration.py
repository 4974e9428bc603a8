"""Choose one threshold per clue word on validation data: the set with the best micro clue F1.

Clue words are rare (each names 3–30 % of the forged images) and the clue head's probabilities for the
rarer ones seldom reach 0.5, so a single threshold of 0.5 names too few of them. :func:`choose_clue_thresholds`
raises or lowers each clue's threshold in turn, keeping a change only when the micro F1 over all
clues (:func:`forensix.eval.metrics.clue_f1`, the evaluation's own measure, authentic images included)
improves, until no change does.

Example:
    >>> import numpy as np
    >>> truth = np.array([[1, 0], [0, 1], [0, 0], [1, 0]], np.float32)
    >>> probs = np.array([[0.3, 0.1], [0.1, 0.6], [0.1, 0.2], [0.35, 0.1]])
    >>> choose_clue_thresholds(probs, truth)[0]
    0.3
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from forensix.data.describe import CLUES, clue_vector
from forensix.errors import ForensixError
from forensix.eval.calibration import THRESHOLD_GRID
from forensix.eval.metrics import clue_f1
from forensix.models.modes import eval_mode
from forensix.models.vision_side import encode_images


def choose_clue_thresholds(probs: np.ndarray, truth: np.ndarray, grid: Sequence[float] = THRESHOLD_GRID,
                           sweeps: int = 3) -> tuple[float, ...]:
    """Per-column thresholds of ``grid`` for ``probs`` ``[N, C]`` that maximise micro F1 against ``truth`` ``[N, C]``
    (coordinate ascent from 0.5, each step the best threshold of one column; see the module example)."""
    thresholds = np.full(probs.shape[1], 0.5)
    best = clue_f1((probs >= thresholds).astype(np.float32), truth)
    for _ in range(sweeps):
        changed = False
        for column in range(probs.shape[1]):
            scores = []
            for candidate in grid:
                trial = thresholds.copy()
                trial[column] = candidate
                scores.append((clue_f1((probs >= trial).astype(np.float32), truth), candidate))
            score, candidate = max(scores)  # among equal scores the highest threshold: the fewest clues named
            if score > best + 1e-9:
                best, changed = score, True
                thresholds[column] = candidate
        if not changed:
            break
    return tuple(round(float(t), 2) for t in thresholds)


@dataclass(frozen=True)
class ClueCalibration:
    """The chosen per-clue thresholds (in :data:`~forensix.data.describe.CLUES` order) and the validation
    micro clue F1 at 0.5 and at them."""

    thresholds: tuple[float, ...]
    f1_at_half: float
    f1_after: float
    n_images: int

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "thresholds": dict(zip(CLUES, self.thresholds))}


@torch.no_grad()
def clue_probabilities(model, images: Sequence[Any], batch_size: int = 16) -> np.ndarray:
    """The clue head's probabilities ``[N, len(CLUES)]`` for ``images``, as :meth:`analyze` computes them."""
    rows = []
    with eval_mode(model):
        for start in range(0, len(images), batch_size):
            rows.append(encode_images(model, list(images[start : start + batch_size]))[1].clue_logits.sigmoid().cpu().numpy())
    return np.concatenate(rows)


def calibrate_clues(model, samples: Sequence[Any], batch_size: int = 16) -> ClueCalibration:
    """Per-clue thresholds for ``model`` from validation ``samples`` (``Sample`` objects, forged and authentic).

    Sets nothing: assign ``model.config.clue_thresholds = result.thresholds`` to use them.
    """
    if not samples:
        raise ForensixError("calibrate_clues: no samples; pass a validation split")
    probs = clue_probabilities(model, [s.image for s in samples], batch_size)
    truth = np.stack([clue_vector(s.record) for s in samples])
    thresholds = choose_clue_thresholds(probs, truth)
    return ClueCalibration(thresholds=thresholds, f1_at_half=float(clue_f1((probs >= 0.5).astype(np.float32), truth)),
                           f1_after=float(clue_f1((probs >= np.array(thresholds)).astype(np.float32), truth)),
                           n_images=len(samples))


__all__ = ["ClueCalibration", "calibrate_clues", "choose_clue_thresholds", "clue_probabilities"]
