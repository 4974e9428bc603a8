"""Errors raised by forensix.

Every error a user can cause is a :class:`ForensixError` subclass whose message names the input
(file, argument, hook name, ...) and says what to do about it.

Example:
    >>> from forensix.errors import BadImageError
    >>> try:
    ...     raise BadImageError("photo.png: file is truncated; re-export the image")
    ... except ForensixError as err:
    ...     print(err)
    photo.png: file is truncated; re-export the image
"""

from __future__ import annotations


class ForensixError(Exception):
    """Base class of every error forensix raises on bad input or a failed operation."""


class BadImageError(ForensixError, ValueError):
    """An image that cannot be read or used: unreadable, truncated, unsupported mode, absurd size."""


class BadMaskError(ForensixError, ValueError):
    """A mask that does not fit its image or is not binary."""


class BadPromptError(ForensixError, ValueError):
    """An empty, over-long or malformed prompt or question."""


class BadConfigError(ForensixError, ValueError):
    """An unknown preset, an invalid config value or an unknown module in a config."""


class UnknownMethodError(BadConfigError):
    """A method name (grounding, token attribution, rollout, head fusion) that its registry does not hold."""


class BadCheckpointError(ForensixError, ValueError):
    """A checkpoint that is missing, truncated, tampered with or fails validation."""


class BadDatasetError(ForensixError, ValueError):
    """A dataset folder or manifest that cannot be used (empty, wrong layout, missing masks)."""


class UnknownHookError(ForensixError, KeyError):
    """A hook point name that the model does not have."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class ModelNotAvailableError(ForensixError, RuntimeError):
    """A language or vision model that cannot be found offline (package missing, no local copy)."""


class TrainingError(ForensixError, RuntimeError):
    """A training run that cannot start or continue (unwritable output dir, full disk, bad resume)."""


__all__ = [
    "ForensixError",
    "BadImageError",
    "BadMaskError",
    "BadPromptError",
    "BadConfigError",
    "UnknownMethodError",
    "BadCheckpointError",
    "BadDatasetError",
    "UnknownHookError",
    "ModelNotAvailableError",
    "TrainingError",
]
