"""Shared helpers of the explanation result objects: safetensors + JSON files, inline HTML.

Results are saved as one ``.safetensors`` file: the tensors, plus a JSON document (kind, version,
tokens, settings) in the safetensors header metadata. No pickle anywhere.

Example:
    >>> import torch, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "r.safetensors")
    >>> _ = save_result(p, {"x": torch.ones(2)}, {"a": 1}, kind="demo")
    >>> t, meta = load_result(p, kind="demo")
    >>> t["x"].tolist(), meta["a"]
    ([1.0, 1.0], 1)
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

import torch

from forensix.errors import BadCheckpointError

__all__ = ["save_result", "load_result", "html_result", "escape"]

_FORMAT = "forensix-explain"
escape = html.escape


def save_result(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any], *, kind: str) -> Path:
    """Write ``tensors`` and the JSON-able ``meta`` to ``path`` (one safetensors file), atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"format": _FORMAT, "kind": kind, "version": 1, "meta": meta}
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp),
              metadata={"forensix": json.dumps(header)})
    os.replace(tmp, path)
    return path


def load_result(path: str | Path, *, kind: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a file written by :func:`save_result`; checks that it holds a result of ``kind``."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise BadCheckpointError(f"{path}: no such file; pass a path written by .save()")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = json.loads((f.metadata() or {}).get("forensix", "{}"))
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (OSError, ValueError, json.JSONDecodeError) as err:  # safetensors raises SafetensorError(ValueError)
        raise BadCheckpointError(f"{path}: not a readable safetensors result ({err}); save it again with .save()") from err
    if header.get("format") != _FORMAT or header.get("kind") != kind:
        raise BadCheckpointError(
            f"{path}: holds {header.get('kind') or 'no forensix result'!r}, not a {kind!r}; load it with the matching class"
        )
    return tensors, header["meta"]


def html_result(markup: str) -> Any:
    """``IPython.display.HTML`` of ``markup`` when IPython is installed, else the string."""
    try:
        from IPython.display import HTML
    except ImportError:  # pragma: no cover - IPython ships with the notebook extras
        return markup
    return HTML(markup)


