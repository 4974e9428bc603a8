"""Classical baselines: valid outputs on odd sizes, and real detections on generated forgeries."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from forensix.baselines import DETECTORS, Detector, Localization, get_detector, to_localization
from forensix.baselines._jpeg import jpeg_roundtrip
from forensix.errors import BadConfigError, BadImageError
from forensix.eval.metrics import pixel_f1


def _ellipse(shape: tuple[int, int], cy: int, cx: int, ry: int, rx: int) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1).astype(np.uint8)


def _chance_f1(gt: np.ndarray, seed: int = 0) -> float:
    """Best of two chance baselines: predict everything, or a random mask of the true area."""
    rng = np.random.default_rng(seed)
    random_mask = (rng.random(gt.shape) < gt.mean()).astype(np.uint8)
    return max(pixel_f1(np.ones_like(gt), gt), pixel_f1(random_mask, gt))


@pytest.mark.parametrize("name", sorted(DETECTORS))
@pytest.mark.parametrize("gray", [False, True])
def test_valid_localization_on_odd_sizes(name: str, gray: bool) -> None:
    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, (97, 131, 3), dtype=np.uint8)
    if gray:
        img = np.repeat(img[:, :, :1], 3, axis=2)
    det = get_detector(name)
    assert isinstance(det, Detector) and det.name == name
    loc = det.localize(img)
    assert isinstance(loc, Localization)
    assert loc.heatmap.shape == (97, 131) and loc.heatmap.dtype == np.float32
    assert 0.0 <= loc.heatmap.min() and loc.heatmap.max() <= 1.0
    assert loc.mask.shape == (97, 131) and loc.mask.dtype == np.uint8 and set(np.unique(loc.mask)) <= {0, 1}
    assert 0.0 <= loc.score <= 1.0
    again = det.localize(img)
    assert np.array_equal(again.heatmap, loc.heatmap)


def test_flat_image_gives_empty_map() -> None:
    flat = np.full((40, 40, 3), 90, np.uint8)
    for name in DETECTORS:
        loc = get_detector(name).localize(flat)
        assert loc.mask.sum() == 0 and loc.score == 0.0, name


def test_bad_inputs_raise_forensix_errors() -> None:
    with pytest.raises(BadImageError, match="uint8"):
        get_detector("ela").localize(np.zeros((32, 32, 3), np.float32))
    with pytest.raises(BadImageError, match="H x W x 3"):
        get_detector("ela").localize(np.zeros((32, 32, 4), np.uint8))
    with pytest.raises(BadConfigError, match="unknown"):
        get_detector("nope")
    with pytest.raises(BadConfigError, match="bad parameter"):
        get_detector("ela", qualty=3)


def test_to_localization_mask_is_heatmap_threshold() -> None:
    rng = np.random.default_rng(0)
    raw = rng.normal(0, 1, (50, 60))
    raw[10:30, 10:30] += 6
    loc = to_localization(raw)
    assert np.array_equal(loc.mask, (loc.heatmap >= 0.5).astype(np.uint8))
    assert pixel_f1(loc.mask, (np.arange(50)[:, None] >= 10) & (np.arange(50)[:, None] < 30) & (np.arange(60) >= 10) & (np.arange(60) < 30)) > 0.9
    assert 0.5 < loc.score < 1.0


@pytest.fixture(scope="module")
def splice() -> tuple[np.ndarray, np.ndarray]:
    """Host saved at JPEG quality 70; an elliptical region pasted from a never-compressed photo."""
    host = jpeg_roundtrip(np.ascontiguousarray(data.astronaut()[::2, ::2][:192, :192]), 70)
    donor = np.ascontiguousarray(data.chelsea()[:192, :192])
    gt = _ellipse((192, 192), 110, 85, 35, 45)
    img = host.copy()
    img[gt == 1] = donor[gt == 1]
    return img, gt


@pytest.mark.parametrize("name", ["ela", "dct", "jpeg-ghost"])
def test_jpeg_history_splice_is_found(splice: tuple[np.ndarray, np.ndarray], name: str) -> None:
    img, gt = splice
    loc = get_detector(name).localize(img)
    chance = _chance_f1(gt)
    assert pixel_f1(loc.mask, gt) > chance + 0.3, (name, pixel_f1(loc.mask, gt), chance)


def test_copy_move_finds_shifted_copy() -> None:
    img = np.ascontiguousarray(data.astronaut()[::2, ::2][:192, :192])
    gt = np.zeros((192, 192), np.uint8)
    img[120:165, 20:65] = img[15:60, 110:155]
    gt[120:165, 20:65] = 1
    gt[15:60, 110:155] = 1
    img = jpeg_roundtrip(img, 90)
    loc = get_detector("copy-move").localize(img)
    assert pixel_f1(loc.mask, gt) > max(0.8, _chance_f1(gt) + 0.5)
    assert loc.score > 0.5
    authentic = get_detector("copy-move").localize(jpeg_roundtrip(np.ascontiguousarray(data.astronaut()[::2, ::2][:192, :192]), 90))
    assert authentic.score < loc.score
