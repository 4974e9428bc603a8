"""Safe checkpoint files: safetensors + JSON only, a sha256 manifest, atomic writes.

A checkpoint is a directory holding ``*.safetensors`` tensor files, ``*.json`` metadata files and
``manifest.json`` (sha256 and size of every other file). :func:`write_checkpoint` writes into a
temporary sibling directory and renames it into place, so a crash mid-write leaves the previous
checkpoint intact. :func:`read_checkpoint` refuses missing, truncated or tampered files and any
file type other than safetensors and JSON: nothing is ever unpickled.

Example:
    >>> import tempfile, torch
    >>> d = tempfile.mkdtemp() + "/ckpt"
    >>> _ = write_checkpoint(d, tensors={"model": {"w": torch.ones(2)}}, meta={"config": {"a": 1}})
    >>> t, m = read_checkpoint(d)
    >>> t["model"]["w"].tolist(), m["config"]
    ([1.0, 1.0], {'a': 1})
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from forensix.errors import BadCheckpointError

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
_ALLOWED_SUFFIXES = {".safetensors", ".json"}


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_checkpoint(
    path: str | Path, *, tensors: dict[str, dict[str, torch.Tensor]], meta: dict[str, Any]
) -> Path:
    """Write ``tensors`` (file stem -> state dict) and ``meta`` (file stem -> JSON value) atomically.

    An existing checkpoint at ``path`` is replaced only once the new one is complete on disk.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        for stem, state in tensors.items():
            clean = {k: v.detach().contiguous().cpu() for k, v in state.items()}
            save_file(clean, str(tmp / f"{stem}.safetensors"), metadata={"format": "pt"})
        for stem, value in meta.items():
            (tmp / f"{stem}.json").write_text(json.dumps(value, indent=1, sort_keys=True))
        files = {p.name: {"sha256": sha256_file(p), "bytes": p.stat().st_size} for p in sorted(tmp.iterdir())}
        (tmp / MANIFEST).write_text(json.dumps({"format_version": FORMAT_VERSION, "files": files}, indent=1))
        for p in tmp.iterdir():
            with open(p, "rb") as handle:
                os.fsync(handle.fileno())
        _fsync_dir(tmp)
        if final.exists():
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            shutil.rmtree(old, ignore_errors=True)  # left by an earlier crash of a process with this pid
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
        _fsync_dir(final.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def recover_checkpoint(path: str | Path) -> bool:
    """Finish a replace that a crash interrupted: if ``path`` is missing but the previous checkpoint
    was moved aside (``.NAME.old-PID``) by :func:`write_checkpoint`, move the newest valid one back.
    Returns whether it restored one.
    """
    final = Path(path)
    if final.exists() or not final.parent.is_dir():
        return False
    olds = sorted(final.parent.glob(f".{final.name}.old-*"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in olds:
        try:
            verify_checkpoint(old)
        except BadCheckpointError:
            continue
        os.replace(old, final)
        _fsync_dir(final.parent)
        return True
    return False


def verify_checkpoint(path: str | Path) -> dict[str, Any]:
    """Check the manifest against the files; return the manifest or raise :class:`BadCheckpointError`."""
    root = Path(path)
    if not root.is_dir():
        raise BadCheckpointError(f"{root}: no checkpoint directory here; give a directory written by save_pretrained")
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise BadCheckpointError(f"{root}: {MANIFEST} is missing; the checkpoint is incomplete or not a forensix checkpoint")
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
    except (ValueError, KeyError, TypeError) as err:
        raise BadCheckpointError(f"{manifest_path}: unreadable manifest ({err}); re-save the checkpoint") from err
    if not isinstance(files, dict) or not all(isinstance(e, dict) for e in files.values()):
        raise BadCheckpointError(f"{manifest_path}: 'files' must map file names to {{sha256, bytes}}; re-save the checkpoint")
    for name, entry in files.items():
        file = root / name
        if name in ("", ".", "..") or Path(name).name != name or Path(name).suffix not in _ALLOWED_SUFFIXES:
            raise BadCheckpointError(f"{root}: manifest lists {name!r}; only plain .safetensors and .json files are allowed")
        if not file.is_file():
            raise BadCheckpointError(f"{file}: listed in the manifest but missing; the checkpoint is incomplete")
        if file.stat().st_size != entry.get("bytes"):
            raise BadCheckpointError(f"{file}: size {file.stat().st_size} != {entry.get('bytes')} in the manifest (truncated?)")
        if sha256_file(file) != entry.get("sha256"):
            raise BadCheckpointError(f"{file}: sha256 does not match the manifest; the file was modified or corrupted")
    extra = sorted(p.name for p in root.iterdir() if p.name != MANIFEST and p.name not in files)
    if any(Path(n).suffix not in _ALLOWED_SUFFIXES for n in extra):
        raise BadCheckpointError(f"{root}: unexpected files {extra}; forensix checkpoints hold only safetensors and JSON")
    return manifest


def read_checkpoint(path: str | Path) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, Any]]:
    """Verify and read a checkpoint: ``(file stem -> tensors, file stem -> JSON value)``."""
    root = Path(path)
    recover_checkpoint(root)
    manifest = verify_checkpoint(root)
    tensors: dict[str, dict[str, torch.Tensor]] = {}
    meta: dict[str, Any] = {}
    for name in manifest["files"]:
        file = root / name
        stem = Path(name).stem
        try:
            if name.endswith(".safetensors"):
                tensors[stem] = load_file(str(file))
            else:
                meta[stem] = json.loads(file.read_text())
        except (SafetensorError, ValueError, OSError) as err:  # ValueError: bad JSON or bad UTF-8
            raise BadCheckpointError(f"{file}: cannot be read ({err}); re-save the checkpoint") from err
    return tensors, meta


__all__ = ["MANIFEST", "read_checkpoint", "recover_checkpoint", "sha256_file", "verify_checkpoint", "write_checkpoint"]
