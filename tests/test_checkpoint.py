"""Untrusted checkpoints: safetensors + JSON only, every tampering refused with a clear error, no pickle."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch

from forensix.checkpoint import MANIFEST, read_checkpoint, sha256_file, verify_checkpoint, write_checkpoint
from forensix.errors import BadCheckpointError, ForensixError

ROOT = Path(__file__).resolve().parents[1] / "forensix"


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tiny_model) -> Path:
    return tiny_model.save_pretrained(tmp_path_factory.mktemp("ckpt") / "model")


@pytest.fixture()
def ckpt(saved, tmp_path) -> Path:
    return Path(shutil.copytree(saved, tmp_path / "model"))


def _reseal(root: Path) -> None:
    """Rewrite the manifest to match the files, as an attacker who edits a checkpoint would."""
    manifest = json.loads((root / MANIFEST).read_text())
    manifest["files"] = {p.name: {"sha256": sha256_file(p), "bytes": p.stat().st_size}
                         for p in sorted(root.iterdir()) if p.name != MANIFEST}
    (root / MANIFEST).write_text(json.dumps(manifest))


def _edit_config(root: Path, edit) -> None:
    config = json.loads((root / "config.json").read_text())
    edit(config)
    (root / "config.json").write_text(json.dumps(config))
    _reseal(root)


def _flip_byte(root: Path) -> None:
    path = root / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(root: Path) -> None:
    path = root / "model.safetensors"
    path.write_bytes(path.read_bytes()[:1000])


def _manifest(root: Path, edit) -> None:
    manifest = json.loads((root / MANIFEST).read_text())
    edit(manifest)
    (root / MANIFEST).write_text(json.dumps(manifest))


def _traversal(root: Path) -> None:
    (root.parent / "outside.json").write_text("{}")
    _manifest(root, lambda m: m["files"].update({"../outside.json": {"sha256": sha256_file(root.parent / "outside.json"), "bytes": 2}}))


def _set(path: list[str], value):
    def edit(config):
        node = config["forensix_config"]
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


def _wrong_shape(root: Path) -> None:
    from safetensors.torch import load_file, save_file

    state = load_file(str(root / "model.safetensors"))
    key = next(k for k in state if k.startswith("projector."))
    state[key] = torch.zeros(3, 3)
    save_file(state, str(root / "model.safetensors"))
    _reseal(root)


TAMPERING = [
    ("flipped-byte", _flip_byte, BadCheckpointError, "sha256 does not match"),
    ("truncated-file", _truncate, BadCheckpointError, "(truncated?)"),
    ("missing-file", lambda r: (r / "model.safetensors").unlink(), BadCheckpointError, "listed in the manifest but missing"),
    ("missing-manifest", lambda r: (r / MANIFEST).unlink(), BadCheckpointError, "manifest.json is missing"),
    ("manifest-not-json", lambda r: (r / MANIFEST).write_text("{nope"), BadCheckpointError, "unreadable manifest"),
    ("manifest-files-a-list", lambda r: _manifest(r, lambda m: m.update(files=["config.json"])), BadCheckpointError,
     "'files' must map file names"),
    ("manifest-entry-a-string", lambda r: _manifest(r, lambda m: m["files"].update({"config.json": "abc"})),
     BadCheckpointError, "'files' must map file names"),
    ("extra-pt-file", lambda r: (r / "pytorch_model.pt").write_bytes(b"\x80\x04junk"), BadCheckpointError,
     "unexpected files ['pytorch_model.pt']"),
    ("extra-bin-file", lambda r: (r / "weights.bin").write_bytes(b"junk"), BadCheckpointError, "only safetensors and JSON"),
    ("pickle-listed-in-manifest", lambda r: ((r / "evil.pkl").write_bytes(b"\x80\x04."), _reseal(r)), BadCheckpointError,
     "'evil.pkl'; only plain .safetensors and .json"),
    ("manifest-path-traversal", _traversal, BadCheckpointError, "'../outside.json'; only plain"),
    ("manifest-absolute-path", lambda r: _manifest(r, lambda m: m["files"].update({"/etc/x.json": {}})), BadCheckpointError,
     "'/etc/x.json'"),
    ("resealed-garbage-safetensors", lambda r: ((r / "model.safetensors").write_bytes(b"\x08" + b"\x00" * 7 + b"garbage!"),
                                                _reseal(r)), BadCheckpointError, "model.safetensors: cannot be read"),
    ("resealed-binary-config", lambda r: ((r / "config.json").write_bytes(b"\xff\xfe\x00binary"), _reseal(r)),
     BadCheckpointError, "config.json: cannot be read"),
    ("config-trust-remote-code", lambda r: _edit_config(r, _set(["language", "trust_remote_code"], True)), BadCheckpointError,
     "unknown keys ['trust_remote_code']"),
    ("config-remote-code-module", lambda r: _edit_config(r, _set(["vision", "auto_map"], {"AutoModel": "evil.Model"})),
     BadCheckpointError, "config.vision: unknown keys ['auto_map']"),
    ("config-unknown-top-level-key", lambda r: _edit_config(r, _set(["exec"], "import os")), BadCheckpointError,
     "config: unknown keys ['exec']"),
    ("config-wrong-value-type", lambda r: _edit_config(r, _set(["vision", "hidden_size"], "32; rm -rf")), BadCheckpointError,
     "config.vision.hidden_size"),
    ("config-impossible-model", lambda r: _edit_config(r, _set(["vision", "hidden_size"], -4)), BadCheckpointError,
     "cannot be built"),
    ("config-foreign-format", lambda r: _edit_config(r, lambda c: c.update(format="pickle")), BadCheckpointError,
     "not a forensix model checkpoint"),
    ("weights-wrong-shape", _wrong_shape, BadCheckpointError, "have shapes other than the config's model"),
]


@pytest.mark.parametrize(("tamper", "error", "part"), [pytest.param(*row[1:], id=row[0]) for row in TAMPERING])
def test_tampered_checkpoint_is_refused(ckpt, tamper, error, part) -> None:
    from forensix.models import ForensixModel

    tamper(ckpt)
    with pytest.raises(ForensixError) as info:
        ForensixModel.from_pretrained(ckpt)
    assert isinstance(info.value, error), f"{type(info.value).__name__}: {info.value}"
    assert part in str(info.value), str(info.value)


def test_round_trip(tiny_model, saved) -> None:
    import numpy as np

    from forensix.models import ForensixModel

    assert sorted(p.suffix for p in saved.iterdir()) == [".json", ".json", ".safetensors"]
    loaded = ForensixModel.from_pretrained(saved)
    assert loaded.config == tiny_model.config
    for key, value in tiny_model.trainable_state().items():
        assert torch.equal(value, loaded.trainable_state()[key]), key
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert np.array_equal(tiny_model.detect([image]), loaded.detect([image]))


def test_write_replaces_atomically_and_leaves_no_temp(tmp_path) -> None:
    path = tmp_path / "ck"
    write_checkpoint(path, tensors={"a": {"w": torch.ones(2)}}, meta={"m": {"v": 1}})
    write_checkpoint(path, tensors={"a": {"w": torch.zeros(2)}}, meta={"m": {"v": 2}})
    tensors, meta = read_checkpoint(path)
    assert meta["m"] == {"v": 2} and tensors["a"]["w"].tolist() == [0.0, 0.0]
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]


def test_failed_write_keeps_previous(tmp_path, monkeypatch) -> None:
    import forensix.checkpoint as ck

    path = tmp_path / "ck"
    write_checkpoint(path, tensors={"a": {"w": torch.ones(2)}}, meta={"m": {"v": 1}})

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ck, "save_file", no_space)
    with pytest.raises(OSError):
        write_checkpoint(path, tensors={"a": {"w": torch.zeros(2)}}, meta={"m": {"v": 2}})
    assert verify_checkpoint(path) and read_checkpoint(path)[1]["m"] == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]


def test_interrupted_replace_is_recovered(tmp_path) -> None:
    """A crash between 'move the old one aside' and 'move the new one in' must not lose the checkpoint."""
    path = tmp_path / "ck"
    write_checkpoint(path, tensors={"a": {"w": torch.ones(2)}}, meta={"m": {"v": 1}})
    path.rename(tmp_path / ".ck.old-12345")
    tensors, meta = read_checkpoint(path)
    assert meta["m"] == {"v": 1} and path.is_dir()


# ------------------------------------------------------------------ no pickle anywhere in the library

_SOURCES = sorted(ROOT.rglob("*.py"))


def test_library_never_unpickles() -> None:
    problems = []
    for path in _SOURCES:
        text = path.read_text()
        rel = path.relative_to(ROOT.parent)
        if re.search(r"^\s*(import|from)\s+(c?pickle|dill|joblib|cloudpickle)\b", text, re.M):
            problems.append(f"{rel}: imports a pickle module")
        for match in re.finditer(r"torch\.load\(", text):
            call = text[match.start(): text.find(")", match.start()) + 1]
            if "weights_only=True" not in call:
                problems.append(f"{rel}: {call}")
        if re.search(r"trust_remote_code\s*=\s*True", text):
            problems.append(f"{rel}: trust_remote_code=True")
        if re.search(r"\bnp\.load\([^)]*allow_pickle\s*=\s*True", text):
            problems.append(f"{rel}: np.load(allow_pickle=True)")
        if re.search(r"\b(eval|exec)\(", re.sub(r"\.eval\(|#.*", "", text)):
            problems.append(f"{rel}: eval/exec")
    assert len(_SOURCES) > 20
    assert not problems, problems
