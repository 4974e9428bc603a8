"""Property tests: decoding and parsing never fail with anything but a ForensixError (or not at all)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from forensix.data.describe import GRID_CELLS, parse_location, parse_verdict
from forensix.data.io import as_image_array, as_mask_array, read_image, read_mask
from forensix.errors import BadImageError, BadMaskError, ForensixError

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _encoded(fmt: str) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


VALID = {"png": _encoded("PNG"), "jpg": _encoded("JPEG")}
HEADERS = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"II*\x00", b"BM", b"RIFF\x00\x00\x00\x00WEBP"]


def _check_read(path, data: bytes) -> None:
    path.write_bytes(data)
    for reader in (read_image, read_mask):
        try:
            out = reader(path)
        except ForensixError as err:
            assert isinstance(err, (BadImageError, BadMaskError)) and str(path) in str(err)
        else:
            assert out.dtype == np.uint8 and out.ndim == (3 if reader is read_image else 2)


@SETTINGS
@given(data=st.binary(max_size=2048))
def test_read_arbitrary_bytes(tmp_path, data) -> None:
    _check_read(tmp_path / "x.png", data)


@SETTINGS
@given(header=st.sampled_from(HEADERS), tail=st.binary(max_size=512))
def test_read_image_like_headers(tmp_path, header, tail) -> None:
    _check_read(tmp_path / "x.img", header + tail)


@SETTINGS
@given(fmt=st.sampled_from(sorted(VALID)), cut=st.integers(0, 10_000), flip=st.none() | st.integers(0, 10_000))
def test_read_truncated_or_damaged_valid_files(tmp_path, fmt, cut, flip) -> None:
    data = bytearray(VALID[fmt][: cut % (len(VALID[fmt]) + 1)])
    if flip is not None and data:
        data[flip % len(data)] ^= 0x5A
    _check_read(tmp_path / f"x.{fmt}", bytes(data))


ARRAYS = hnp.arrays(
    dtype=st.sampled_from([np.uint8, np.int16, np.int64, np.uint16, np.float16, np.float32, np.float64, np.bool_]),
    shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=12),
)


@SETTINGS
@given(arr=ARRAYS)
def test_as_image_array_arbitrary(arr) -> None:
    try:
        out = as_image_array(arr, name="arr")
    except ForensixError as err:
        assert isinstance(err, BadImageError) and "arr" in str(err)
    else:
        assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3 and min(out.shape[:2]) >= 8


@SETTINGS
@given(arr=ARRAYS)
def test_as_mask_array_arbitrary(arr) -> None:
    try:
        out = as_mask_array(arr, None, name="m")
    except ForensixError as err:
        assert isinstance(err, BadMaskError) and "m" in str(err)
    else:
        assert out.dtype == np.uint8 and out.ndim == 2 and set(np.unique(out).tolist()) <= {0, 1}


WORDS = st.sampled_from(["fake", "real", "not", "no", "manipulated", "authentic", "top-left", "center", "lower right",
                         "Fake.", "REAL", "\"fake\"", "*", "-", "\n", " ", "tampered", "genuine", "upper-left"])
TEXT = st.text() | st.lists(WORDS, max_size=12).map(" ".join)


@SETTINGS
@given(text=TEXT)
def test_parsers_never_raise(text) -> None:
    assert parse_verdict(text) in ("fake", "real", None)
    cells = parse_location(text)
    assert isinstance(cells, list) and set(cells) <= set(GRID_CELLS) and len(cells) == len(set(cells))


@pytest.mark.parametrize("value", [None, 3, 2.5, b"fake", ["fake"], {"a": 1}])
def test_parsers_take_non_text(value) -> None:
    assert parse_verdict(value) is None and parse_location(value) == []
