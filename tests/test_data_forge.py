"""Tests of forensix.data.sources and forensix.data.forge."""

import json

import numpy as np
import pytest

from forensix.data.forge import (
    ALL_OPS, ALL_SHAPES, ForgeryGenerator, ForgeryRecord, apply_postprocess, forge, make_region,
)
from forensix.data.sources import FolderPhotos, PhotoPool, bundled_names, bundled_photo, split_photo_names, texture
from forensix.data.io import write_image
from forensix.errors import BadDatasetError, ForensixError

SIZE = 64


@pytest.fixture(scope="module")
def photo():
    return PhotoPool.crop(bundled_photo("astronaut"), np.random.default_rng(0), (SIZE, SIZE))


@pytest.fixture(scope="module")
def donor():
    return PhotoPool.crop(bundled_photo("chelsea"), np.random.default_rng(1), (SIZE, SIZE))


def test_bundled_and_splits():
    names = bundled_names()
    assert {"astronaut", "chelsea", "china", "camera"} <= set(names)
    assert bundled_photo("camera").shape[2] == 3
    s = split_photo_names(0)
    assert not set(s["train"]) & set(s["test"]) and not set(s["val"]) & set(s["train"])
    assert sorted(s["train"] + s["val"] + s["test"]) == sorted(names)
    assert s == split_photo_names(0)


def test_pool_with_your_photos_keeps_textures_and_refuses_name_clashes():
    pool = PhotoPool.bundled("train", seed=3)
    mine = pool.with_photos({"mine.png": np.zeros((40, 40, 3), np.uint8)})
    assert mine.names == sorted([*pool.names, "mine.png"]) and mine.texture_seed == pool.texture_seed
    with pytest.raises(ForensixError, match=r"\['chelsea'\] are already in the pool"):
        pool.with_photos({"chelsea": np.zeros((40, 40, 3), np.uint8)})


def test_held_out_photos_never_move():
    """Benchmarks compare versions on the same held-out photos: the partition is pinned."""
    assert split_photo_names(0)["test"] == ["camera", "china", "grass", "rocket"]
    assert split_photo_names(0)["val"] == ["astronaut", "brick"]


@pytest.mark.parametrize("kind", ["noise", "gradient", "stripes", "checker", "cells"])
def test_textures_seeded(kind):
    a = texture(kind, (20, 30), np.random.default_rng(1))
    assert a.shape == (20, 30, 3) and a.dtype == np.uint8
    assert np.array_equal(a, texture(kind, (20, 30), np.random.default_rng(1)))


def test_photo_pool_crop_small_photo_upscaled():
    pool = PhotoPool({"tiny": np.full((10, 12, 3), 7, np.uint8)}, p_texture=0.0)
    crop, name = pool.random_crop(np.random.default_rng(0), 32)
    assert crop.shape == (32, 32, 3) and name == "tiny"


def test_native_crops_keep_the_photo_pixels_on_the_jpeg_grid():
    photo = np.random.default_rng(0).integers(0, 256, (203, 141, 3)).astype(np.uint8)
    pool = PhotoPool({"p": photo}, p_texture=0.0, crops="native")
    for seed in range(5):
        crop, _ = pool.random_crop(np.random.default_rng(seed), (64, 48))
        hits = [(y, x) for y in range(0, 203 - 63, 8) for x in range(0, 141 - 47, 8)
                if np.array_equal(crop, photo[y:y + 64, x:x + 48])]
        assert hits, "a native crop is an unresized window of the photo starting on the 8-pixel grid"
    small, _ = pool.random_crop(np.random.default_rng(0), 256)
    assert small.shape == (256, 256, 3)
    assert pool.with_photos({"q": photo}).crops == "native"
    with pytest.raises(ForensixError, match="crops="):
        PhotoPool({"p": photo}, crops="tiles")


def test_folder_photos(tmp_path):
    with pytest.raises(BadDatasetError, match="no readable"):
        FolderPhotos(tmp_path)
    write_image(tmp_path / "good.png", np.zeros((16, 16, 3), np.uint8))
    (tmp_path / "bad.png").write_bytes(b"xx")
    photos = FolderPhotos(tmp_path)
    assert list(photos) == ["good.png"] and photos.skipped[0][0].endswith("bad.png")


@pytest.mark.parametrize("shape", ALL_SHAPES)
def test_regions_area(shape, photo):
    for seed in range(4):
        m = make_region(shape, (SIZE, SIZE), np.random.default_rng(seed), image=photo)
        assert m.dtype == np.uint8 and set(np.unique(m)) <= {0, 1}
        assert 0.008 <= m.mean() <= 0.4, (shape, seed, m.mean())


@pytest.mark.parametrize("op", ALL_OPS)
def test_op_mask_matches_changed_pixels(op, photo, donor):
    for seed in range(3):
        s = forge(photo, op, seed=seed, shape=ALL_SHAPES[seed], donor=donor, postprocess=False)
        outside = s.mask == 0
        assert np.array_equal(s.image[outside], photo[outside]), op
        changed = (s.image != photo).any(axis=2)[s.mask > 0].mean()
        assert changed > 0.3, (op, seed, changed)
        assert s.record.op == op and s.record.bbox is not None
        assert abs(s.record.area_fraction - s.mask.mean()) < 1e-4


def test_authentic_only_postprocessed(photo):
    s = forge(photo, "authentic", seed=0, postprocess=False)
    assert np.array_equal(s.image, photo) and not s.mask.any() and not s.record.is_fake
    steps = [{"op": "jpeg", "quality": 80}]
    s = forge(photo, "authentic", seed=0, postprocess=steps)
    assert np.array_equal(s.image, apply_postprocess(photo, steps)) and s.record.postprocess == steps


def test_change_is_the_manipulation_alone(photo):
    steps = [{"op": "noise", "sigma": 2.0, "seed": 3}, {"op": "jpeg", "quality": 80}]
    assert not forge(photo, "authentic", seed=0, postprocess=steps).change().any()  # post-processing cancels
    s = forge(photo, "retouch", seed=2, kind="noise", postprocess=False)
    expected = np.abs(s.image.astype(np.float32) - photo.astype(np.float32)).mean(axis=2)
    np.testing.assert_allclose(s.change(), expected)
    assert not s.change()[s.mask == 0].any() and s.change()[s.mask == 1].mean() > 1
    s.original = None
    with pytest.raises(ForensixError, match="no original"):
        s.change()


def test_forge_params_and_custom_region(photo):
    region = np.zeros((SIZE, SIZE), np.uint8)
    region[10:20, 30:50] = 1
    s = forge(photo, "color", seed=1, region=region, kind="gain", amount=0.3, edge="hard", postprocess=False)
    assert np.array_equal(s.mask, region) and s.record.params["kind"] == "gain"
    with pytest.raises(ForensixError, match="unknown op"):
        forge(photo, "warp", seed=0)


def test_generator_deterministic_and_json():
    g = ForgeryGenerator(size=SIZE, seed=3)
    a, b = g.sample(5), ForgeryGenerator(size=SIZE, seed=3).sample(5)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    assert a.record.to_dict() == b.record.to_dict()
    c = ForgeryGenerator(size=SIZE, seed=4).sample(5)
    assert not np.array_equal(a.image, c.image)
    d = json.loads(json.dumps(a.record.to_dict()))
    assert ForgeryRecord.from_dict(d) == a.record


def test_generator_mix_and_splits():
    g = ForgeryGenerator(size=SIZE, seed=0, split="test")
    samples = [g.sample(i) for i in range(40)]
    ops = {s.record.op for s in samples}
    assert "authentic" in ops and len(ops) >= 5
    test_sources = set(split_photo_names(0)["test"])
    assert all(s.record.source in test_sources or s.record.source.startswith("texture:") for s in samples)
    for s in samples:
        assert s.record.is_fake == bool(s.mask.any())
        if s.record.op == "splice":
            assert s.record.donor and s.record.donor != s.record.source
    assert any(s.record.postprocess for s in samples)


def test_generator_rejects_bad_args():
    with pytest.raises(ForensixError):
        ForgeryGenerator(ops=("nope",))
    with pytest.raises(ForensixError):
        ForgeryGenerator(split="holdout")
