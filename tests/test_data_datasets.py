"""Tests of forensix.data.datasets: synthetic dataset, folder layouts, manifests, bad inputs."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from forensix.data.datasets import (
    FolderDataset, ManifestDataset, SyntheticForgeryDataset, collate_samples, load_dataset, to_tensor_image,
    to_tensor_mask,
)
from forensix.data.describe import CLUES
from forensix.data.io import write_image, write_mask
from forensix.data.sources import split_photo_names
from forensix.errors import BadDatasetError, ForensixError

RNG = np.random.default_rng(0)
IMG = RNG.integers(0, 256, (16, 16, 3), dtype=np.uint8)
MASK = np.zeros((16, 16), np.uint8)
MASK[2:8, 3:9] = 1


def _put(path, mask=False, shape=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    if mask:
        write_mask(path, MASK if shape is None else np.zeros(shape, np.uint8))
    else:
        write_image(path, IMG)


def test_tensors():
    t = to_tensor_image(IMG)
    assert t.dtype == torch.float32 and t.shape == (3, 16, 16) and 0 <= t.min() and t.max() <= 1
    assert to_tensor_mask(MASK).shape == (1, 16, 16)


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_synthetic_dataset(stage):
    ds = SyntheticForgeryDataset(stage=stage, size=32, length=6, seed=1)
    item = ds[2]
    assert item["image"].shape == (3, 32, 32) and item["mask"].shape == (1, 32, 32)
    assert item["clues"].shape == (len(CLUES),) and item["is_fake"].item() in (0.0, 1.0)
    assert item["is_fake"].item() == float(item["mask"].sum() > 0)
    assert ds[2] is item  # cached
    other = SyntheticForgeryDataset(stage=stage, size=32, length=6, seed=1, cache=False)[2]
    assert torch.equal(other["image"], item["image"]) and other["messages"] == item["messages"]
    batch = collate_samples([ds[i] for i in range(3)])
    assert batch["image"].shape == (3, 3, 32, 32) and len(batch["messages"]) == 3
    ds.pregenerate()
    assert len(ds._cache) == 6


def test_synthetic_splits_use_disjoint_photos():
    test = SyntheticForgeryDataset(stage=3, split="test", size=32, length=10)
    train_names = set(split_photo_names(0)["train"])
    assert not {test[i]["record"]["source"] for i in range(10)} & train_names
    with pytest.raises(ForensixError):
        SyntheticForgeryDataset(stage=4)


def test_casia(tmp_path):
    _put(tmp_path / "Tp" / "a.png")
    _put(tmp_path / "Gt" / "a_gt.png", mask=True)
    _put(tmp_path / "Tp" / "nomask.png")
    _put(tmp_path / "Tp" / "wrong.png")
    _put(tmp_path / "Gt" / "wrong_gt.bmp", mask=True, shape=(10, 16))
    (tmp_path / "Au").mkdir()
    (tmp_path / "Au" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    _put(tmp_path / "Au" / "b.jpg")
    ds = load_dataset(tmp_path, "casia")
    assert len(ds) == 2
    items = {ds[i]["name"]: ds[i] for i in range(2)}
    assert np.array_equal(items["a"]["mask"], MASK) and items["b"]["mask"] is None
    reasons = dict(ds.skipped)
    assert set(map(lambda p: p.rsplit("/", 1)[-1], reasons)) == {"nomask.png", "wrong.png", "broken.jpg"}
    assert any("10x16" in r for r in reasons.values())


def test_columbia(tmp_path):
    _put(tmp_path / "4cam_splc" / "c1.png")
    _put(tmp_path / "4cam_splc" / "edgemask" / "c1_edgemask.png", mask=True)
    _put(tmp_path / "4cam_splc" / "c2.png")
    _put(tmp_path / "4cam_splc" / "c2_mask.png", mask=True)
    _put(tmp_path / "4cam_auth" / "r1.png")
    ds = FolderDataset(tmp_path, "columbia")
    assert sorted(ds[i]["name"] for i in range(len(ds))) == ["c1", "c2", "r1"] and not ds.skipped


def test_coverage(tmp_path):
    _put(tmp_path / "image" / "1t.png")
    _put(tmp_path / "image" / "1.png")
    _put(tmp_path / "mask" / "1forged.png", mask=True)
    ds = load_dataset(tmp_path, "coverage")
    masks = {ds[i]["name"]: ds[i]["mask"] for i in range(len(ds))}
    assert masks["1"] is None and masks["1t"].sum() == MASK.sum()


def test_imd2020(tmp_path):
    _put(tmp_path / "set1" / "x_orig.png")
    _put(tmp_path / "set1" / "x_0.png")
    _put(tmp_path / "set1" / "x_0_mask.png", mask=True)
    ds = load_dataset(tmp_path, "imd2020")
    names = sorted(ds[i]["name"] for i in range(len(ds)))
    assert names == ["x_0", "x_orig"]


def test_manifest(tmp_path):
    _put(tmp_path / "i1.png")
    _put(tmp_path / "m1.png", mask=True)
    _put(tmp_path / "i2.png")
    (tmp_path / "list.json").write_text(json.dumps([["i1.png", "m1.png"], ["i2.png", None], ["gone.png", None], 5]))
    ds = load_dataset(tmp_path / "list.json", "manifest")
    assert len(ds) == 2 and ds[1]["mask"] is None and len(ds.skipped) == 2
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(BadDatasetError, match="bad.json"):
        ManifestDataset(tmp_path / "bad.json")


def test_synthetic_layout():
    ds = load_dataset(None, "synthetic", size=32, length=3)
    assert len(ds) == 3 and ds[0]["image"].shape == (32, 32, 3)


def test_empty_and_wrong_layout(tmp_path):
    with pytest.raises(BadDatasetError, match="Tp/"):
        FolderDataset(tmp_path, "casia")
    _put(tmp_path / "image" / "1t.png")
    with pytest.raises(BadDatasetError, match="Tp/"):
        load_dataset(tmp_path, "casia")
    with pytest.raises(BadDatasetError, match="unknown layout"):
        load_dataset(tmp_path, "nist")
    with pytest.raises(BadDatasetError, match="none of the files"):
        load_dataset(tmp_path, "coverage")


# ------------------------------------------------------------------------------- camera photos


def _fake_apt(tmp_path, drop: str | None = None):
    """A stand-in for apt-get/dpkg that 'downloads' two packages holding the listed photos."""
    import subprocess

    import numpy as np
    from PIL import Image

    from forensix.data.camera_photos import CAMERA_PHOTOS

    calls = []

    def runner(args, cwd, **kwargs):
        calls.append(args)
        cwd = Path(cwd)
        if args[:2] == ["apt-get", "download"]:
            for package in args[2:]:
                (cwd / f"{package}_1.0-1_all.deb").write_bytes(b"deb")
        elif args[0] == "dpkg":
            package = args[2].split("_")[0]
            for i, photo in enumerate(p for p in CAMERA_PHOTOS if p.package == package):
                if photo.path.endswith(drop or "\0"):
                    continue
                target = cwd / args[3] / photo.path
                target.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.full((40, 60, 3), 10 * i, np.uint8)).save(target)
            doc = cwd / args[3] / "usr/share/doc" / package / "copyright"
            doc.parent.mkdir(parents=True, exist_ok=True)
            doc.write_text("Files: *\nLicense: GPL-2+\n")
        return subprocess.CompletedProcess(args, 0, "", "")

    return runner, calls


def test_camera_photos_are_fetched_with_their_licences_and_read_back(tmp_path):
    import json

    from forensix.data.camera_photos import CAMERA_PHOTOS, camera_photos, fetch_camera_photos

    assert camera_photos(tmp_path / "never") is None
    runner, calls = _fake_apt(tmp_path)
    dest = fetch_camera_photos(tmp_path / "photos", runner=runner)
    assert calls[0][:2] == ["apt-get", "download"]
    records = json.loads((dest / "LICENSES.json").read_text())
    assert [r["file"] for r in records] == [Path(p.path).name for p in CAMERA_PHOTOS]
    assert all(r["licence"] and r["copyright"] and r["version"] == "1.0-1" for r in records)
    assert (dest / "mate-backgrounds.copyright").is_file()
    (dest / "unlisted.jpg").write_bytes((dest / records[0]["file"]).read_bytes())  # no licence: never used
    photos = camera_photos(dest)
    assert sorted(photos) == sorted(p.name for p in CAMERA_PHOTOS)
    assert photos[CAMERA_PHOTOS[0].name].shape == (40, 60, 3)


def test_a_failed_or_incomplete_fetch_is_a_clear_error_and_keeps_what_was_there(tmp_path):
    import subprocess

    from forensix.data.camera_photos import fetch_camera_photos
    from forensix.errors import ForensixError

    runner, _ = _fake_apt(tmp_path)
    dest = fetch_camera_photos(tmp_path / "photos", runner=runner)
    before = sorted(p.name for p in dest.iterdir())
    broken, _ = _fake_apt(tmp_path, drop="Storm.jpg")
    with pytest.raises(ForensixError, match="Storm.jpg"):
        fetch_camera_photos(dest, runner=broken)

    def refused(args, **kwargs):
        return subprocess.CompletedProcess(args, 100, "", "E: Unable to locate package mate-backgrounds")

    with pytest.raises(ForensixError, match="apt-get update"):
        fetch_camera_photos(dest, runner=refused)

    def absent(args, **kwargs):
        raise FileNotFoundError(args[0])

    with pytest.raises(ForensixError, match="--photos DIR"):
        fetch_camera_photos(dest, runner=absent)
    assert sorted(p.name for p in dest.iterdir()) == before
