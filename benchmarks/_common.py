"""Helpers shared by the benchmark scripts: machine description and JSON result writing.

Example:
    >>> from benchmarks._common import write_result
    >>> write_result("demo", {"seed": 0, "value": 1.0})  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import shlex
import sys
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """Describe the machine a benchmark ran on."""
    import torch

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return info


def command() -> str:
    """The command line that started this process."""
    return " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv])


def _strict(value: Any) -> Any:
    """NaN/inf become ``None`` so the file is strict JSON."""
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """Write ``payload`` plus command, machine and date to ``benchmarks/results/<name>.json`` (strict JSON)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    record = {
        **payload,
        "command": payload.get("command", command()),
        "machine": machine(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(_strict(record), indent=2, allow_nan=False, default=float) + "\n")
    return path
