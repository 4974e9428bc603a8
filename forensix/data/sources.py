"""Source photos for the forgery engine: bundled real photos, procedural textures, user folders.

Example:
    >>> import numpy as np
    >>> pool = PhotoPool.bundled(split="train", seed=0)
    >>> crop, name = pool.random_crop(np.random.default_rng(0), 64)
    >>> crop.shape
    (64, 64, 3)
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from forensix.data.io import as_image_array, read_image
from forensix.errors import BadDatasetError, BadImageError, ForensixError

COLOR_PHOTOS = (
    "astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
    "retina", "colorwheel", "china", "flower",
)
GRAY_PHOTOS = ("camera", "brick", "grass", "gravel", "moon", "coins", "page", "text", "clock")
TEXTURES = ("noise", "gradient", "stripes", "checker", "cells")
TEXTURE_PREFIX = "texture:"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif")
SPLITS = ("train", "val", "test")
_MAX_SIDE = 1024

CONTENT = {
    "astronaut": "an astronaut in a white suit in front of a flag",
    "chelsea": "a tabby cat",
    "coffee": "a cup of coffee on a saucer",
    "rocket": "a rocket on a launch pad",
    "hubble_deep_field": "a deep-space field of galaxies",
    "immunohistochemistry": "a stained tissue sample under a microscope",
    "retina": "a photograph of a retina",
    "colorwheel": "a color wheel",
    "china": "a Chinese temple among trees",
    "flower": "a close-up of a flower",
    "camera": "a man with a camera on a tripod",
    "brick": "a brick wall texture",
    "grass": "a grass texture",
    "gravel": "a gravel texture",
    "moon": "the surface of the moon",
    "coins": "coins on a flat surface",
    "page": "a page of printed text",
    "text": "printed characters on a plain background",
    "clock": "a clock",
    "texture:noise": "a smooth noise texture",
    "texture:gradient": "a smooth color gradient",
    "texture:stripes": "a striped pattern",
    "texture:checker": "a checkerboard pattern",
    "texture:cells": "a pattern of flat colored cells",
}


def _load_bundled(name: str) -> np.ndarray:
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        return load_sample_image(f"{name}.jpg")
    import skimage.data

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return getattr(skimage.data, name)()


@functools.lru_cache(maxsize=None)
def bundled_photo(name: str) -> np.ndarray:
    """A bundled photo as a read-only uint8 ``H x W x 3`` array (grayscale expanded to RGB).

    Example:
        >>> bundled_photo("chelsea").shape
        (300, 451, 3)
    """
    if name not in COLOR_PHOTOS + GRAY_PHOTOS:
        raise ForensixError(f"unknown bundled photo {name!r}; choose one of {bundled_names()}")
    try:
        arr = as_image_array(_load_bundled(name), name=name)
    except Exception as err:  # a photo that would need a download offline
        raise ForensixError(f"bundled photo {name!r} cannot be loaded offline ({err})") from err
    arr.setflags(write=False)
    return arr


@functools.lru_cache(maxsize=1)
def bundled_names() -> tuple[str, ...]:
    """Names of the bundled photos that load offline on this machine.

    Example:
        >>> "astronaut" in bundled_names()
        True
    """
    ok = []
    for name in COLOR_PHOTOS + GRAY_PHOTOS:
        try:
            bundled_photo(name)
        except ForensixError:
            continue
        ok.append(name)
    return tuple(ok)


#: The bundled photos are partitioned once, with this seed, whatever seed a generator samples with:
#: a test image never comes from a photo that any training run may have used.
PHOTO_SPLIT_SEED = 0


def split_photo_names(seed: int = PHOTO_SPLIT_SEED) -> dict[str, list[str]]:
    """Split bundled photos into disjoint train/val/test sets (color and gray photos stratified).

    Example:
        >>> s = split_photo_names(0)
        >>> set(s["train"]) & set(s["test"])
        set()
    """
    rng = np.random.default_rng([seed, 7331])
    available = set(bundled_names())
    out: dict[str, list[str]] = {k: [] for k in SPLITS}
    for group in (COLOR_PHOTOS, GRAY_PHOTOS):
        names = [n for n in group if n in available]
        names = [names[i] for i in rng.permutation(len(names))]
        n_test = max(1, round(0.2 * len(names)))
        n_val = max(1, round(0.1 * len(names)))
        out["test"] += names[:n_test]
        out["val"] += names[n_test:n_test + n_val]
        out["train"] += names[n_test + n_val:]
    return {k: sorted(v) for k, v in out.items()}


def _smooth_noise(h: int, w: int, rng: np.random.Generator, cells: int) -> np.ndarray:
    """Smooth noise in [0, 1] of shape (h, w) from a (cells x cells) random grid."""
    grid = Image.fromarray(rng.random((cells + 1, cells + 1)).astype(np.float32), mode="F")
    up = np.asarray(grid.resize((w, h), Image.BICUBIC))
    up = up - up.min()
    return up / max(float(up.max()), 1e-6)


def _palette(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(20, 236, size=(n, 3)).astype(np.float32)


def texture(kind: str, size: int | tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A seeded procedural texture (``noise``, ``gradient``, ``stripes``, ``checker``, ``cells``).

    Example:
        >>> texture("cells", 32, np.random.default_rng(0)).shape
        (32, 32, 3)
    """
    h, w = (size, size) if isinstance(size, int) else size
    if kind == "noise":
        layers = [_smooth_noise(h, w, rng, int(rng.integers(3, 12))) for _ in range(3)]
        img = np.stack(layers, axis=2) * rng.uniform(120, 220) + rng.uniform(0, 40)
    elif kind == "gradient":
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        t = (np.cos(rng.uniform(0, 2 * np.pi)) * xx / w + np.sin(rng.uniform(0, 2 * np.pi)) * yy / h)
        t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
        a, b = _palette(rng, 2)
        img = a[None, None] * (1 - t[:, :, None]) + b[None, None] * t[:, :, None]
    elif kind in ("stripes", "checker"):
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        period = rng.uniform(6, 24)
        ang = rng.uniform(0, np.pi)
        u = np.cos(ang) * xx + np.sin(ang) * yy
        pattern = np.sin(2 * np.pi * u / period) > 0
        if kind == "checker":
            v = -np.sin(ang) * xx + np.cos(ang) * yy
            pattern = pattern ^ (np.sin(2 * np.pi * v / period) > 0)
        a, b = _palette(rng, 2)
        img = np.where(pattern[:, :, None], a[None, None], b[None, None])
        img = ndimage.gaussian_filter(img, sigma=(0.7, 0.7, 0))
    elif kind == "cells":
        n = int(rng.integers(8, 40))
        sh, sw = max(1, h // 4), max(1, w // 4)
        pts = rng.random((n, 2)) * (sh, sw)
        yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
        dist = (yy[None] - pts[:, 0, None, None]) ** 2 + (xx[None] - pts[:, 1, None, None]) ** 2
        labels = Image.fromarray(np.argmin(dist, axis=0).astype(np.uint8)).resize((w, h), Image.NEAREST)
        img = _palette(rng, n)[np.asarray(labels)]
    else:
        raise ForensixError(f"unknown texture kind {kind!r}; choose one of {TEXTURES}")
    img = img + rng.normal(0, rng.uniform(1, 5), size=(h, w, 1)).astype(np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _downscale(img: np.ndarray, max_side: int = _MAX_SIDE) -> np.ndarray:
    h, w = img.shape[:2]
    if max(h, w) <= max_side:
        return img
    s = max_side / max(h, w)
    return np.asarray(Image.fromarray(img).resize((max(1, round(w * s)), max(1, round(h * s))), Image.BICUBIC))


class FolderPhotos(Mapping[str, np.ndarray]):
    """Photos read from a user folder (recursively); unreadable files are listed in ``.skipped``.

    Photos larger than 1024 px on a side are downscaled when loaded.

    Example:
        >>> photos = FolderPhotos("my_photos/")  # doctest: +SKIP
        >>> photos.skipped  # [(path, reason), ...]  # doctest: +SKIP
    """

    def __init__(self, path: str | Path):
        root = Path(path)
        if not root.is_dir():
            raise BadDatasetError(f"{root}: not a folder; pass a folder holding image files")
        self.root = root
        self.skipped: list[tuple[str, str]] = []
        self._photos: dict[str, np.ndarray] = {}
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            if file.suffix.lower() not in IMAGE_EXTENSIONS:
                self.skipped.append((str(file), f"not an image extension {IMAGE_EXTENSIONS}"))
                continue
            try:
                self._photos[str(file.relative_to(root))] = _downscale(read_image(file))
            except BadImageError as err:
                self.skipped.append((str(file), str(err)))
        if not self._photos:
            raise BadDatasetError(
                f"{root}: no readable images found ({len(self.skipped)} files skipped); "
                f"expected image files with extensions {IMAGE_EXTENSIONS}"
            )

    def __getitem__(self, key: str) -> np.ndarray:
        return self._photos[key]

    def __iter__(self):
        return iter(self._photos)

    def __len__(self) -> int:
        return len(self._photos)


#: How :class:`PhotoPool` cuts its crops.
CROPS = ("jitter", "native")
#: The JPEG block size: native crops start on this grid.
GRID = 8


def _resize(img: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    if img.shape[:2] == hw:
        return np.ascontiguousarray(img)
    return np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize((hw[1], hw[0]), Image.BILINEAR))


class PhotoPool:
    """Named photos plus procedural textures, cropped at random with scale jitter.

    ``p_texture`` is the chance a crop is a procedural texture; textures are seeded from
    ``texture_seed`` so that each split gets its own. ``crops`` is ``"jitter"`` (a crop of 0.84-2x the
    size, resized to it) or ``"native"`` (cut at the photo's own pixels on its 8-pixel JPEG grid, never
    resized, so the photo's own noise and compression traces stay as they are; a photo smaller than
    the crop is upscaled).

    Example:
        >>> pool = PhotoPool({"flat": np.full((40, 40, 3), 128, np.uint8)}, p_texture=0.0)
        >>> pool.random_crop(np.random.default_rng(0), 32)[1]
        'flat'
    """

    def __init__(
        self,
        photos: Mapping[str, np.ndarray] | Sequence[str],
        *,
        p_texture: float = 0.1,
        texture_seed: int = 0,
        crops: str = "jitter",
    ):
        if crops not in CROPS:
            raise ForensixError(f"crops={crops!r}: choose one of {CROPS}")
        self.crops = crops
        if not isinstance(photos, Mapping):
            photos = {n: bundled_photo(n) for n in photos}
        self._photos = dict(photos)
        self.names = sorted(self._photos)
        self.p_texture = p_texture if self.names else 1.0
        self.texture_seed = texture_seed

    @classmethod
    def bundled(cls, split: str = "train", seed: int = 0, p_texture: float = 0.1, crops: str = "jitter") -> "PhotoPool":
        """The bundled photos of one split (fixed partition, see :data:`PHOTO_SPLIT_SEED`); ``seed`` seeds textures."""
        if split not in SPLITS:
            raise ForensixError(f"unknown split {split!r}; choose one of {SPLITS}")
        names = split_photo_names()[split]
        return cls(names, p_texture=p_texture, texture_seed=hash_split(seed, split), crops=crops)

    def with_photos(self, photos: Mapping[str, np.ndarray]) -> "PhotoPool":
        """A pool holding this pool's photos and ``photos`` (e.g. a :class:`FolderPhotos`), with the same textures.

        Example:
            >>> pool = PhotoPool.bundled("train").with_photos({"mine.png": np.zeros((40, 40, 3), np.uint8)})
            >>> "mine.png" in pool.names and "chelsea" in pool.names
            True
        """
        clash = sorted(set(photos) & set(self._photos))
        if clash:
            raise ForensixError(f"photo names {clash} are already in the pool; rename those files")
        return PhotoPool({**self._photos, **photos}, p_texture=self.p_texture, texture_seed=self.texture_seed,
                         crops=self.crops)

    def photo(self, name: str) -> np.ndarray:
        """The full photo called ``name``."""
        return self._photos[name]

    def random_crop(
        self, rng: np.random.Generator, size: int | tuple[int, int], exclude: str | None = None
    ) -> tuple[np.ndarray, str]:
        """A random ``size`` crop of a random photo (or texture) and its name."""
        hw = (size, size) if isinstance(size, int) else tuple(size)
        names = [n for n in self.names if n != exclude]
        if not names or rng.random() < self.p_texture:
            kind = TEXTURES[int(rng.integers(len(TEXTURES)))]
            tex_rng = np.random.default_rng([self.texture_seed, int(rng.integers(2**31))])
            return texture(kind, hw, tex_rng), TEXTURE_PREFIX + kind
        name = names[int(rng.integers(len(names)))]
        crop = self.native_crop if self.crops == "native" else self.crop
        return crop(self._photos[name], rng, hw), name

    @staticmethod
    def native_crop(photo: np.ndarray, rng: np.random.Generator, hw: tuple[int, int]) -> np.ndarray:
        """A random ``hw`` crop at the photo's own scale, its corner on the 8-pixel grid (upscaled only when the
        photo is smaller than ``hw``).

        Example:
            >>> photo = np.random.default_rng(0).integers(0, 255, (100, 90, 3)).astype(np.uint8)
            >>> crop = PhotoPool.native_crop(photo, np.random.default_rng(1), (32, 32))
            >>> any(np.array_equal(crop, photo[y:y + 32, x:x + 32]) for y in range(0, 69, 8) for x in range(0, 59, 8))
            True
        """
        h, w = photo.shape[:2]
        if h < hw[0] or w < hw[1]:
            scale = max(hw[0] / h, hw[1] / w)
            photo = _resize(photo, (max(hw[0], round(h * scale)), max(hw[1], round(w * scale))))
            h, w = photo.shape[:2]
        y = GRID * int(rng.integers(0, (h - hw[0]) // GRID + 1))
        x = GRID * int(rng.integers(0, (w - hw[1]) // GRID + 1))
        return np.ascontiguousarray(photo[y:y + hw[0], x:x + hw[1]])

    @staticmethod
    def crop(photo: np.ndarray, rng: np.random.Generator, hw: tuple[int, int]) -> np.ndarray:
        """A random crop with scale jitter, resized to ``hw`` (upscaled when the photo is small)."""
        h, w = photo.shape[:2]
        jitter = 2.0 ** rng.uniform(-0.25, 1.0)
        ch = int(np.clip(round(hw[0] * jitter), 4, h))
        cw = int(np.clip(round(ch * hw[1] / hw[0]), 4, w))
        ch = int(np.clip(round(cw * hw[0] / hw[1]), 4, h))
        y = int(rng.integers(0, h - ch + 1))
        x = int(rng.integers(0, w - cw + 1))
        return _resize(photo[y:y + ch, x:x + cw], hw)


def hash_split(seed: int, split: str) -> int:
    """A split-specific integer seed derived from ``seed`` (stable across runs)."""
    return int(np.random.default_rng([seed, SPLITS.index(split) if split in SPLITS else 99]).integers(2**31))


def content_phrase(name: str) -> str:
    """Short content phrase for a source name (bundled photo, texture or folder file).

    Example:
        >>> content_phrase("chelsea")
        'a tabby cat'
    """
    return CONTENT.get(name, "a photograph")


__all__ = [
    "COLOR_PHOTOS", "GRAY_PHOTOS", "TEXTURES", "CONTENT", "bundled_photo", "bundled_names",
    "split_photo_names", "texture", "FolderPhotos", "PhotoPool", "content_phrase", "hash_split",
]
