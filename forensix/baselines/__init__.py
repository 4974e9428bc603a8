"""Classical forensic baselines behind one protocol, and a registry.

Example:
    >>> import numpy as np
    >>> det = get_detector("ela", quality=85)
    >>> det.localize(np.zeros((32, 32, 3), np.uint8)).mask.shape
    (32, 32)
"""

from __future__ import annotations

from typing import Any

from forensix.baselines.base import Detector, Localization, check_image, to_localization
from forensix.baselines.copy_move import CopyMove
from forensix.baselines.dct import BlockDCT
from forensix.baselines.ela import ELA
from forensix.baselines.jpeg_ghost import JPEGGhost
from forensix.baselines.noise import NoiseResidual
from forensix.errors import BadConfigError

__all__ = [
    "Detector",
    "Localization",
    "check_image",
    "to_localization",
    "ELA",
    "NoiseResidual",
    "JPEGGhost",
    "BlockDCT",
    "CopyMove",
    "DETECTORS",
    "get_detector",
]

DETECTORS: dict[str, type] = {
    "ela": ELA,
    "noise": NoiseResidual,
    "jpeg-ghost": JPEGGhost,
    "dct": BlockDCT,
    "copy-move": CopyMove,
}


def get_detector(name: str, **kwargs: Any) -> Detector:
    """Build a classical detector by registry name with its tunable parameters.

    Example:
        >>> get_detector("copy-move", min_votes=20).min_votes
        20
    """
    if name not in DETECTORS:
        raise BadConfigError(f"detector {name!r} is unknown; choose one of {sorted(DETECTORS)}")
    try:
        return DETECTORS[name](**kwargs)
    except TypeError as err:
        raise BadConfigError(f"detector {name!r}: bad parameter ({err}); see help(forensix.baselines.{DETECTORS[name].__name__})") from err
