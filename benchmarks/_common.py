"""Helpers shared by the benchmark scripts: machine description, JSON result writing and interval scores.

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


def interval_scores(frame: Any, n_boot: int = 2000) -> dict[str, dict[str, float]]:
    """Pixel F1, F1 at the best per-image threshold (column ``f1_best``), pixel AUROC and, when the rows have a
    ``p_fake`` score, image AUROC: each ``{"value", "low", "high"}`` with a 95 % bootstrap interval over the rows.

    Example:
        >>> import pandas as pd
        >>> rows = pd.DataFrame({"is_fake": [1, 1], "f1": [0.2, 0.4], "f1_best": [0.5, 0.7], "auroc": [0.6, 0.8]})
        >>> sorted(interval_scores(rows, n_boot=50)), round(interval_scores(rows, n_boot=50)["pixel_f1_best"]["value"], 2)
        (['pixel_auroc', 'pixel_f1', 'pixel_f1_best'], 0.6)
    """
    from forensix.eval.bootstrap import bootstrap_intervals

    table = bootstrap_intervals(frame, n_boot=n_boot)
    best = bootstrap_intervals(frame.assign(f1=frame.f1_best), n_boot=n_boot)
    out = {}
    for key, source, metric in (("pixel_f1", table, "pixel_f1"), ("pixel_f1_best", best, "pixel_f1"),
                                ("pixel_auroc", table, "pixel_auroc"), ("image_auroc", table, "image_auroc")):
        if metric in source.index:
            r = source.loc[metric]
            out[key] = {"value": float(r.value), "low": float(r.low), "high": float(r.high)}
    return out


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


def mask_probabilities(model: Any, images: list, batch_size: int = 16) -> list:
    """``model.mask_probabilities`` over ``images`` in batches of ``batch_size`` (bounded memory)."""
    probs: list = []
    for start in range(0, len(images), batch_size):
        probs += model.mask_probabilities(images[start : start + batch_size])
    return probs
