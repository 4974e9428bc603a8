"""Native-resolution inference: masks at the photo's own size, tiles vs the whole image, the resize path kept."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forensix.errors import BadConfigError, BadImageError
from forensix.models.native import stitched, tile_windows


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 200, w)[None, :, None] + np.linspace(0, 40, h)[:, None, None]
    return np.clip(base + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8)


def test_tile_windows_cover_the_image_with_the_overlap_asked():
    windows = tile_windows(1001, 667, tile=256, overlap=32)
    cover = np.zeros((1001, 667), int)
    for y0, x0, y1, x1 in windows:
        assert y1 - y0 <= 256 and x1 - x0 <= 256
        assert y0 % 8 == 0 and x0 % 8 == 0  # on the JPEG grid, for the DCT stream
        cover[y0:y1, x0:x1] += 1
    assert cover.min() >= 1
    rows = sorted({(y0, y1) for y0, _, y1, _ in windows})
    assert min(a[1] - b[0] for a, b in zip(rows, rows[1:])) >= 32  # neighbours overlap by at least the overlap asked
    big = tile_windows(3000, 4000, tile=1024, overlap=128)  # 12 MP: 20 tiles, the photo read 1.3 times, not 1.75
    assert len(big) == 20 and sum((y1 - y0) * (x1 - x0) for y0, x0, y1, x1 in big) < 1.35 * 3000 * 4000
    assert tile_windows(100, 80, tile=256, overlap=32) == [(0, 0, 100, 80)]
    with pytest.raises(BadConfigError, match="overlap"):
        tile_windows(100, 100, tile=64, overlap=40)


def test_stitching_is_exact_for_a_pointwise_localizer_and_blends_seams():
    image = torch.rand(1, 3, 300, 520)

    def pointwise(x: torch.Tensor) -> torch.Tensor:
        return (x[:, :1] * 4 - x[:, 1:2]).float()

    torch.testing.assert_close(stitched(pointwise, image, tile=128, overlap=32), pointwise(image))

    ramp = torch.linspace(0, 1, 520).expand(1, 3, 300, 520)

    def tile_mean(x: torch.Tensor) -> torch.Tensor:  # a localizer whose output depends on the whole tile
        return torch.full_like(x[:, :1], float(x.mean()))

    out = stitched(tile_mean, ramp, tile=128, overlap=32)[0, 0, 64]
    seam = 96 / 520  # what a hard seam would jump: the tile means differ by the stride's share of the ramp
    assert float(out.diff().abs().max()) < 0.25 * seam


@pytest.mark.parametrize("shape", [(1001, 667), (37, 400), (48, 40)])
def test_every_entry_point_returns_masks_at_the_photo_size(tiny_model, shape):
    image = _photo(*shape)
    assert tiny_model.config.resolution == "multiscale"  # the default: the native map and the copy's, averaged
    probs = tiny_model.mask_probabilities([image])[0]
    assert probs.shape == shape and probs.dtype == np.float32 and 0 <= probs.min() <= probs.max() <= 1
    assert tiny_model.localize(image).heatmap.shape == shape
    if shape[0] * shape[1] < 100_000:
        analysis = tiny_model.analyze(image)
        assert analysis.mask_probs.shape == shape
        np.testing.assert_allclose(analysis.mask_probs, probs, atol=1e-5)


def test_a_photo_smaller_than_a_tile_runs_whole_and_matches_the_localizer(fresh_tiny_model):
    tiny_model = fresh_tiny_model
    tiny_model.config.resolution = "native"
    image = _photo(90, 70)
    pixels = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        direct = tiny_model.eval().localizer_logits(pixels).sigmoid()[0, 0].numpy()
    np.testing.assert_allclose(tiny_model.mask_probabilities(image)[0], direct, atol=1e-6)


def test_tiled_and_whole_image_runs_agree_within_the_stated_tolerance(fresh_tiny_model):
    model = fresh_tiny_model.eval()
    model.config.resolution = "native"
    image = _photo(400, 560, seed=3)
    whole = model.mask_probabilities(image)[0]
    model.config.native_tile, model.config.native_overlap = 192, 48
    tiled = model.mask_probabilities(image)[0]
    assert tiled.shape == whole.shape
    # tiles normalise with their own statistics and see their own semantic copy: close, not equal
    assert float(np.abs(tiled - whole).mean()) < 0.1
    assert float(np.corrcoef(tiled.ravel(), whole.ravel())[0, 1]) > 0.5


def test_resize_mode_keeps_the_old_path_and_differs_from_native(fresh_tiny_model):
    model = fresh_tiny_model.eval()
    model.config.resolution = "native"
    image = _photo(200, 300, seed=1)
    native = model.mask_probabilities(image)[0]
    model.config.resolution = "resize"
    resized = model.mask_probabilities(image)[0]
    pixels, sizes = model.preprocess(image)
    with torch.no_grad():
        logits = model.encode_image(pixels).mask_logits
    expected = torch.nn.functional.interpolate(logits.sigmoid(), size=sizes[0], mode="bilinear", align_corners=False)
    np.testing.assert_allclose(resized, expected[0, 0].numpy(), atol=1e-6)
    assert native.shape == resized.shape and not np.allclose(native, resized, atol=1e-3)
    model.config.resolution = "sideways"
    with pytest.raises(BadConfigError, match="resolution"):
        model.analyze(image)


def test_multiscale_mode_averages_the_native_and_the_resized_maps_in_every_entry_point(fresh_tiny_model):
    model = fresh_tiny_model.eval()
    image = _photo(150, 230, seed=4)
    maps = {}
    for mode in ("native", "resize", "multiscale"):
        model.config.resolution = mode
        maps[mode] = model.mask_probabilities(image)[0]
    np.testing.assert_allclose(maps["multiscale"], (maps["native"] + maps["resize"]) / 2, atol=1e-5)
    analysis = model.analyze(image, max_new_tokens=2)  # analyze reads the same fused map, and so does the language side
    np.testing.assert_allclose(analysis.mask_probs, maps["multiscale"], atol=1e-5)
    assert model.region_for(image).shape == (1, 1, model.config.image_size, model.config.image_size)
    _, cache = model.run_with_cache(image, names_filter="fl_expert.*", max_new_tokens=1)
    assert cache["fl_expert.mask_logits"].shape[-2:] == image.shape[:2]  # the native pass only: the copy's records nothing
    assert all(isinstance(cache[name], torch.Tensor) for name in cache)
    small = _photo(model.config.image_size, model.config.image_size, seed=5)  # at the model's size the scales coincide
    model.config.resolution = "native"
    native_small = model.mask_probabilities(small)[0]
    model.config.resolution = "multiscale"
    np.testing.assert_allclose(model.mask_probabilities(small)[0], native_small, atol=1e-5)


def test_the_resolution_is_saved_with_the_model(fresh_tiny_model, tmp_path):
    from forensix.models import ForensixModel

    fresh_tiny_model.config.resolution = "resize"
    loaded = ForensixModel.from_pretrained(fresh_tiny_model.save_pretrained(tmp_path / "m"))
    assert loaded.config.resolution == "resize"


def test_native_explanations_replay_the_analysis(tiny_model):
    from forensix.explain import attribute_patches, ground

    image = _photo(96, 120, seed=2)
    analysis = tiny_model.analyze(image, max_new_tokens=3)
    for method in ("attention", "gradient"):  # the gradient replay refuses other prompt ids than the analysis had
        assert ground(analysis, method=method, model=tiny_model).maps.shape[-2:] == (96, 120)
    patches = attribute_patches(tiny_model, image, target="p_fake", method="ablation")
    assert abs(patches.base_score - float(tiny_model.detect(image)[0])) < 1e-4  # the same native mask


def test_a_photo_too_large_is_refused_with_a_clear_message(tmp_path):
    from PIL import Image

    from forensix.data.io import read_image

    path = tmp_path / "huge.png"
    Image.new("RGB", (9000, 6000)).save(path)
    with pytest.raises(BadImageError, match="max_pixels"):
        read_image(path)
