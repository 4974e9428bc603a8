"""Where forensix keeps what it converts or fetches once: ``$FORENSIX_CACHE``, else ``~/.cache/forensix``.

Example:
    >>> import os
    >>> cache_dir().name in ("forensix", os.path.basename(os.environ.get("FORENSIX_CACHE", "forensix")))
    True
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The cache root: ``$FORENSIX_CACHE`` if set, else ``~/.cache/forensix``."""
    env = os.environ.get("FORENSIX_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "forensix"


__all__ = ["cache_dir"]
