"""Tests of forensix.data.io: reading, validating and writing images and masks."""

import io as _io

import numpy as np
import pytest
import torch
from PIL import Image

from forensix.data.io import as_image_array, as_mask_array, read_image, read_mask, write_image, write_mask
from forensix.errors import BadImageError, BadMaskError


def _rgb(h=16, w=24):
    return np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_roundtrip_png(tmp_path):
    img = _rgb()
    p = write_image(tmp_path / "a.png", img)
    assert np.array_equal(read_image(p), img)
    m = (img[:, :, 0] > 128).astype(np.uint8)
    assert np.array_equal(read_mask(write_mask(tmp_path / "m.png", m), shape=img.shape), m)


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "1"])
def test_modes_convert_to_rgb(tmp_path, mode):
    src = Image.fromarray(_rgb()).convert(mode)
    path = tmp_path / ("x.tif" if mode == "CMYK" else "x.png")
    src.save(path)
    out = read_image(path)
    assert out.dtype == np.uint8 and out.shape == (16, 24, 3)


def test_rgba_composited_on_white(tmp_path):
    arr = np.zeros((10, 10, 4), np.uint8)
    Image.fromarray(arr, "RGBA").save(tmp_path / "t.png")
    assert (read_image(tmp_path / "t.png") == 255).all()


def test_16bit_scaled(tmp_path):
    arr = np.full((12, 12), 65535, np.uint16)
    arr[0, 0] = 0
    Image.fromarray(arr).save(tmp_path / "d.png")
    out = read_image(tmp_path / "d.png")
    assert out[1, 1, 0] == 255 and out[0, 0, 0] == 0


def test_exif_rotation_applied(tmp_path):
    img = Image.fromarray(_rgb(10, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees
    img.save(tmp_path / "r.jpg", exif=exif.tobytes())
    assert read_image(tmp_path / "r.jpg").shape == (20, 10, 3)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_raises(tmp_path, fmt):
    buf = _io.BytesIO()
    Image.fromarray(_rgb(64, 64)).save(buf, format=fmt)
    path = tmp_path / f"t.{fmt.lower()}"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(BadImageError, match="t."):
        read_image(path)


def test_bad_files(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello, not an image")
    for name in ("empty.png", "text.png", "missing.png"):
        with pytest.raises(BadImageError, match=name):
            read_image(tmp_path / name)
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tmp_path / "tiny.png")
    with pytest.raises(BadImageError, match="1x1"):
        read_image(tmp_path / "tiny.png")


def test_wrong_extension_content_still_reads(tmp_path):
    Image.fromarray(_rgb()).save(tmp_path / "really_png.jpg", format="PNG")
    assert read_image(tmp_path / "really_png.jpg").shape == (16, 24, 3)


def test_bomb_guard_does_not_allocate(tmp_path):
    buf = _io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    data[16:24] = (100_000).to_bytes(4, "big") + (100_000).to_bytes(4, "big")  # IHDR width/height
    (tmp_path / "bomb.png").write_bytes(bytes(data))
    with pytest.raises(BadImageError, match="bomb.png"):
        read_image(tmp_path / "bomb.png")
    big = write_image(tmp_path / "big.png", _rgb(64, 64))
    with pytest.raises(BadImageError, match="max_pixels"):
        read_image(big, max_pixels=1000)


def test_masks(tmp_path):
    m = np.zeros((16, 16), np.uint8)
    m[4:9, 4:9] = 1
    Image.fromarray(m).save(tmp_path / "01.png")
    Image.fromarray(np.stack([m * 255] * 3, 2)).save(tmp_path / "rgb.png")
    Image.fromarray(m * 255).save(tmp_path / "m.jpg", quality=95)
    for name in ("01.png", "rgb.png"):
        assert np.array_equal(read_mask(tmp_path / name), m)
    assert np.abs(read_mask(tmp_path / "m.jpg").astype(int) - m).sum() <= 4
    gray = np.tile(np.arange(16, dtype=np.uint8) * 16, (16, 1))
    Image.fromarray(gray).save(tmp_path / "gray.png")
    with pytest.raises(BadMaskError, match="not binary"):
        read_mask(tmp_path / "gray.png")
    with pytest.raises(BadMaskError, match="16x16.*20x16"):
        read_mask(tmp_path / "01.png", shape=(20, 16))


def test_as_image_array_inputs():
    img = _rgb()
    assert np.array_equal(as_image_array(Image.fromarray(img)), img)
    t = torch.from_numpy(img).permute(2, 0, 1).float() / 255
    assert np.array_equal(as_image_array(t), img)
    assert as_image_array(img[:, :, 0]).shape == (16, 24, 3)
    assert as_image_array(img.astype(np.float64)).dtype == np.uint8
    assert as_image_array(np.dstack([img, np.full((16, 24), 255, np.uint8)])).shape == (16, 24, 3)


@pytest.mark.parametrize("bad, match", [
    (np.full((16, 16, 3), np.nan), "NaN"),
    (np.full((16, 16, 3), np.inf), "NaN or infinite"),
    (np.zeros((1, 1, 3), np.uint8), "1x1"),
    (np.zeros((16, 16, 5), np.uint8), "shape"),
    (np.zeros((2, 16, 16, 3), np.uint8), "shape"),
    (np.full((16, 16), 300, np.int32), "0, 255"),
    (-np.ones((16, 16)), r"\[0, 1\]"),
    ("not an image", "numpy"),
])
def test_as_image_array_rejects(bad, match):
    with pytest.raises(BadImageError, match=match):
        as_image_array(bad, name="img")


def test_as_mask_array():
    m = np.eye(10, dtype=np.uint8)
    assert np.array_equal(as_mask_array(m * 255, (10, 10)), m)
    assert np.array_equal(as_mask_array(torch.from_numpy(m[None]).float(), (10, 10)), m)
    for bad in (m * 7, np.full((10, 10), np.nan)):
        with pytest.raises(BadMaskError):
            as_mask_array(bad, (10, 10))
    with pytest.raises(BadMaskError, match="10x10"):
        as_mask_array(m, (12, 10))
