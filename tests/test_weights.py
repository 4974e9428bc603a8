"""Released models: load by name offline, refuse damaged weights by file name, publish only what loads."""

from __future__ import annotations

import numpy as np
import pytest

import forensix.weights as weights
from forensix.errors import BadCheckpointError, ModelNotAvailableError
from forensix.models import ForensixModel


@pytest.fixture()
def release_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(weights, "WEIGHTS", tmp_path / "weights")
    return tmp_path / "weights"


def test_a_published_model_loads_by_name_and_matches(fresh_tiny_model, release_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    source = fresh_tiny_model.save_pretrained(tmp_path / "trained")
    where = weights.publish(source, "forensix-small", "# card\n")
    assert where == release_dir / "forensix-small" and weights.model_card("forensix-small").read_text() == "# card\n"
    loaded = ForensixModel.from_pretrained("forensix-small")
    image = np.random.default_rng(0).integers(0, 256, (40, 56, 3)).astype(np.uint8)
    expected = fresh_tiny_model.eval().mask_probabilities(image)[0]
    np.testing.assert_allclose(loaded.mask_probabilities(image)[0], expected, atol=5e-3)  # stored in float16
    half_bytes = (where / "model.safetensors").stat().st_size
    weights.publish(source, "forensix-small", "# card\n", half=False)
    assert (where / "model.safetensors").stat().st_size > 1.8 * half_bytes
    np.testing.assert_allclose(ForensixModel.from_pretrained("forensix-small").mask_probabilities(image)[0], expected)


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_released_weights_are_refused_naming_the_file(fresh_tiny_model, release_dir, tmp_path, damage):
    weights.publish(fresh_tiny_model.save_pretrained(tmp_path / "trained"), "forensix-small", "card")
    path = release_dir / "forensix-small" / "model.safetensors"
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BadCheckpointError, match="model.safetensors"):
        ForensixModel.from_pretrained("forensix-small")


def test_missing_released_weights_and_unknown_names_are_clear_errors(release_dir, tmp_path):
    with pytest.raises(ModelNotAvailableError, match="not in this checkout"):
        ForensixModel.from_pretrained("forensix-small")
    with pytest.raises(ModelNotAvailableError, match="not a released model name"):
        weights.publish(tmp_path, "forensix-huge", "card")


def test_a_checkpoint_that_does_not_load_is_never_published(release_dir, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    with pytest.raises(BadCheckpointError):
        weights.publish(broken, "forensix-small", "card")
    assert not (release_dir / "forensix-small").exists()


def test_the_cli_defaults_to_the_released_model():
    from forensix.cli import build_parser

    args = build_parser().parse_args(["analyze", "photo.jpg"])
    assert args.model == weights.DEFAULT_MODEL == "forensix-small"
    assert build_parser().parse_args(["explain", "photo.jpg"]).model == "forensix-small"


def test_the_shipped_model_answers_a_photo_offline_with_no_model_argument(tmp_path, monkeypatch, capsys):
    """What a new user runs first: `forensix analyze photo.jpg`, no --model, no network; the weights' sha256 is checked."""
    from PIL import Image

    from forensix.cli import main
    from forensix.data.io import read_mask
    from forensix.data.sources import PhotoPool

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert (weights.released_dir(weights.DEFAULT_MODEL) / "manifest.json").is_file(), "the shipped weights are missing"
    photo = PhotoPool.bundled("test").photo("china")[:300, :440]
    Image.fromarray(photo).save(tmp_path / "photo.jpg", quality=90)
    assert main(["analyze", str(tmp_path / "photo.jpg"), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "p_fake = " in printed and printed.split()[0].strip(".").lower() in {"fake", "real"}
    assert read_mask(tmp_path / "out" / "photo_mask.png").shape == photo.shape[:2]
