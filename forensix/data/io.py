"""Reading, validating and writing images and masks.

Images are ``numpy.uint8`` arrays ``H x W x 3`` (RGB); masks are ``numpy.uint8`` arrays ``H x W``
holding only 0 and 1 (1 = manipulated).

Example:
    >>> import numpy as np
    >>> img = as_image_array(np.zeros((16, 16), dtype=np.uint8))
    >>> img.shape, img.dtype
    ((16, 16, 3), dtype('uint8'))
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from forensix.errors import BadImageError, BadMaskError

MIN_SIDE = 8
MAX_PIXELS = 50_000_000
_NEAR_BINARY_SHARE = 0.98
_NEAR_BINARY_TOL = 16


def _open(path: str | Path, max_pixels: int) -> Image.Image:
    """Open and fully decode an image file, turning every failure into :class:`BadImageError`."""
    path = Path(path)
    if not path.exists():
        raise BadImageError(f"{path}: file not found; check the path")
    if not path.is_file():
        raise BadImageError(f"{path}: not a file; pass the path of an image file")
    if path.stat().st_size == 0:
        raise BadImageError(f"{path}: file is empty; re-export the image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
            w, h = img.size
            _check_size(w, h, max_pixels, str(path))
            img.load()
    except BadImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise BadImageError(f"{path}: image is too large ({err}); downscale it first") from err
    except UnidentifiedImageError as err:
        raise BadImageError(f"{path}: not a readable image (unknown format); pass a PNG/JPEG/TIFF file") from err
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise BadImageError(f"{path}: file is truncated or corrupt ({err}); re-export the image") from err
    return img


def _check_size(w: int, h: int, max_pixels: int, name: str) -> None:
    if w < MIN_SIDE or h < MIN_SIDE:
        raise BadImageError(f"{name}: image is {w}x{h} pixels; at least {MIN_SIDE}x{MIN_SIDE} is needed")
    if w * h > max_pixels:
        raise BadImageError(
            f"{name}: image is {w}x{h} = {w * h} pixels, more than max_pixels={max_pixels}; "
            "downscale it or raise max_pixels"
        )


def _high_bit_to_uint8(arr: np.ndarray, mode: str) -> np.ndarray:
    """Scale a 16/32-bit integer or float single-channel array to uint8."""
    a = arr.astype(np.float64)
    if not np.isfinite(a).all():
        raise BadImageError("image holds NaN or infinite values")
    if mode == "F" and a.max(initial=0) <= 1.0:
        a = a * 255.0
    elif mode.startswith("I;16") or a.max(initial=0) > 255:
        a = a / 257.0
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def _pil_to_rgb(img: Image.Image) -> np.ndarray:
    """Convert any PIL mode to an RGB uint8 array (alpha composited on white)."""
    mode = img.mode
    if mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
        mode = img.mode
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        gray = _high_bit_to_uint8(np.asarray(img), mode)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(rgb)


def read_image(path: str | Path, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image file as uint8 ``H x W x 3`` RGB, applying its EXIF orientation.

    Example:
        >>> img = read_image("photo.jpg")  # doctest: +SKIP
    """
    img = _open(path, max_pixels)
    try:
        img = ImageOps.exif_transpose(img)
        return _pil_to_rgb(img)
    except BadImageError as err:
        raise BadImageError(f"{path}: {err}") from err
    except (OSError, ValueError) as err:
        raise BadImageError(f"{path}: cannot convert image mode {img.mode!r} to RGB ({err})") from err


def _binarize(gray: np.ndarray, name: str) -> np.ndarray:
    """Map a single-channel mask with two levels (or near-binary values) to {0, 1}."""
    levels = np.unique(gray)
    if levels.size == 1:
        return (gray > 0).astype(np.uint8)
    if levels.size == 2:
        return (gray == levels[1]).astype(np.uint8)
    near = (gray <= _NEAR_BINARY_TOL) | (gray >= 255 - _NEAR_BINARY_TOL)
    share = float(near.mean())
    if share < _NEAR_BINARY_SHARE:
        raise BadMaskError(
            f"{name}: mask is not binary ({levels.size} gray levels, only {share:.0%} near 0 or 255); "
            "save it with two values (0/255 or 0/1)"
        )
    return (gray >= 128).astype(np.uint8)


def _check_shape(mask: np.ndarray, shape: tuple[int, ...] | None, name: str) -> None:
    if shape is not None and tuple(mask.shape) != tuple(shape[:2]):
        raise BadMaskError(
            f"{name}: mask is {mask.shape[0]}x{mask.shape[1]} (HxW) but the image is "
            f"{shape[0]}x{shape[1]}; masks must have the image's size"
        )


def read_mask(path: str | Path, *, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Read a mask file (0/255 or 0/1, gray or RGB) as uint8 ``H x W`` in {0, 1}.

    Example:
        >>> m = read_mask("photo_gt.png", shape=(256, 256))  # doctest: +SKIP
    """
    img = _open(path, MAX_PIXELS)
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        gray = _high_bit_to_uint8(np.asarray(img), img.mode)
    else:
        if img.mode == "P":
            img = img.convert("RGBA")
        arr = np.asarray(img.convert("RGBA") if img.mode not in ("L", "1") else img.convert("L"))
        gray = arr if arr.ndim == 2 else arr[:, :, :3].max(axis=2)
    mask = _binarize(np.asarray(gray, dtype=np.uint8), str(path))
    _check_shape(mask, shape, str(path))
    return mask


def _to_numpy(x: Any, name: str, error: type[Exception]) -> np.ndarray:
    if isinstance(x, Image.Image):
        return _pil_to_rgb(x)
    if type(x).__module__.startswith("torch"):
        x = x.detach().cpu()
        if x.dtype.is_floating_point:
            x = x.float()
        arr = x.numpy()
        if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
            arr = np.moveaxis(arr, 0, -1)
        return arr
    if isinstance(x, np.ndarray):
        return x
    raise error(f"{name}: expected a numpy array, PIL image or torch tensor, got {type(x).__name__}")


def as_image_array(x: Any, name: str = "image") -> np.ndarray:
    """Validate an in-memory image and return it as uint8 ``H x W x 3`` RGB.

    Accepts uint8/integer/float numpy arrays (``H x W``, ``H x W x 1/3/4``; floats in [0, 1] or
    [0, 255]), PIL images and torch tensors (``C x H x W`` floats in [0, 1]).

    Example:
        >>> int(as_image_array(np.ones((8, 8, 3)), name="x").max())
        255
    """
    arr = _to_numpy(x, name, BadImageError)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise BadImageError(
            f"{name}: expected H x W, H x W x 3 or H x W x 4 (or a C x H x W tensor), got shape {arr.shape}"
        )
    h, w = arr.shape[:2]
    _check_size(w, h, MAX_PIXELS, name)
    arr = _to_uint8(arr, name)
    if arr.ndim == 2:
        return np.repeat(arr[:, :, None], 3, axis=2)
    if arr.shape[2] == 4:
        alpha = arr[:, :, 3:4].astype(np.float32) / 255.0
        rgb = arr[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def _to_uint8(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        raise BadImageError(f"{name}: boolean array is a mask, not an image; pass uint8 or float values")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise BadImageError(f"{name}: image holds NaN or infinite values")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0 or hi > 255:
            raise BadImageError(f"{name}: float values must lie in [0, 1] or [0, 255], got [{lo:.3g}, {hi:.3g}]")
        scale = 255.0 if hi <= 1.0 else 1.0
        return np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.integer):
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise BadImageError(f"{name}: integer values must lie in [0, 255], got [{lo}, {hi}]; convert to uint8")
        return arr.astype(np.uint8)
    raise BadImageError(f"{name}: unsupported dtype {arr.dtype}; pass uint8 or float values")


def as_mask_array(x: Any, shape: tuple[int, ...] | None, name: str = "mask") -> np.ndarray:
    """Validate an in-memory mask and return it as uint8 ``H x W`` in {0, 1}.

    Accepts bool, {0, 1} or {0, 255} integer arrays, float arrays in [0, 1] (thresholded at 0.5),
    ``H x W``, ``1 x H x W`` or ``H x W x 1`` arrays/tensors. ``shape`` (H, W[, C]) is checked if given.

    Example:
        >>> int(as_mask_array(np.eye(8, dtype=bool), (8, 8)).sum())
        8
    """
    arr = _to_numpy(x, name, BadMaskError) if not isinstance(x, Image.Image) else np.asarray(x.convert("L"))
    arr = np.squeeze(arr) if arr.ndim == 3 and 1 in (arr.shape[0], arr.shape[-1]) else arr
    if arr.ndim != 2:
        raise BadMaskError(f"{name}: expected an H x W mask, got shape {arr.shape}")
    if arr.size == 0:
        raise BadMaskError(f"{name}: mask is empty (shape {arr.shape}); pass an H x W mask of the image's size")
    if arr.dtype == np.bool_:
        mask = arr.astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise BadMaskError(f"{name}: mask holds NaN or infinite values")
        if arr.min() < 0 or arr.max() > 1:
            raise BadMaskError(f"{name}: float masks must lie in [0, 1], got [{arr.min():.3g}, {arr.max():.3g}]")
        mask = (arr >= 0.5).astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.integer):
        levels = set(np.unique(arr).tolist())
        if levels <= {0, 1}:
            mask = arr.astype(np.uint8)
        elif levels <= {0, 255}:
            mask = (arr == 255).astype(np.uint8)
        else:
            raise BadMaskError(f"{name}: mask values must be {{0, 1}} or {{0, 255}}, got {sorted(levels)[:6]}")
    else:
        raise BadMaskError(f"{name}: unsupported mask dtype {arr.dtype}")
    _check_shape(mask, shape, name)
    return np.ascontiguousarray(mask)


def write_image(path: str | Path, img: Any) -> Path:
    """Write an image as PNG; returns the path.

    Example:
        >>> write_image("/tmp/x.png", np.zeros((8, 8, 3), np.uint8))  # doctest: +SKIP
    """
    path = Path(path)
    Image.fromarray(as_image_array(img)).save(path, format="PNG")
    return path


def write_mask(path: str | Path, mask: Any) -> Path:
    """Write a mask as a 0/255 grayscale PNG; returns the path.

    Example:
        >>> write_mask("/tmp/m.png", np.eye(8, dtype=np.uint8))  # doctest: +SKIP
    """
    path = Path(path)
    Image.fromarray(as_mask_array(mask, None) * np.uint8(255)).save(path, format="PNG")
    return path


__all__ = ["read_image", "read_mask", "as_image_array", "as_mask_array", "write_image", "write_mask", "MIN_SIDE"]
