"""Synthetic forgeries: region shapes, manipulation ops, post-processing and a seeded generator.

Every op has the signature ``op(image, region, rng, **params) -> (image, mask, params)``: ``mask``
marks exactly the pixels the op may have changed (a feathered edge widens ``region``), and
``params`` holds every choice made, JSON-safe, so that the op can be described and replayed.

Example:
    >>> gen = ForgeryGenerator(size=64, seed=0)
    >>> s = gen.sample(3)
    >>> s.image.shape, s.mask.shape, s.record.op in ALL_OPS + ("authentic",)
    ((64, 64, 3), (64, 64), True)
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from forensix.data.io import as_image_array, as_mask_array
from forensix.data.sources import SPLITS, PhotoPool, texture
from forensix.errors import ForensixError

ALL_OPS = ("splice", "copy_move", "removal", "retouch", "color", "resample")
ALL_SHAPES = ("ellipse", "polygon", "blob", "object")
AREA_RANGE = (0.02, 0.25)
_ALPHA_CUTOFF = 0.05

Array = np.ndarray


@dataclass
class ForgeryRecord:
    """What was done to an image. ``bbox`` is ``(x0, y0, x1, y1)`` with exclusive ``x1, y1``.

    Example:
        >>> r = ForgeryRecord(op="authentic")
        >>> ForgeryRecord.from_dict(r.to_dict()) == r
        True
    """

    op: str
    shape: str | None = None
    bbox: tuple[int, int, int, int] | None = None
    area_fraction: float = 0.0
    source: str = ""
    donor: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    postprocess: list[dict[str, Any]] = field(default_factory=list)
    seed: int | None = None
    split: str | None = None
    index: int | None = None

    @property
    def is_fake(self) -> bool:
        """True for every op except ``authentic``."""
        return self.op != "authentic"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        d = asdict(self)
        d["bbox"] = list(self.bbox) if self.bbox is not None else None
        return _jsonable(d)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ForgeryRecord":
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        if d.get("bbox") is not None:
            d["bbox"] = tuple(int(v) for v in d["bbox"])
        return cls(**d)


@dataclass
class Sample:
    """A generated image, its mask, its record, and the photo before any change (``original``)."""

    image: Array
    mask: Array
    record: ForgeryRecord
    original: Array | None = None

    def change(self) -> Array:
        """How much the manipulation changed each pixel: mean absolute difference over colour, in 8-bit levels.

        The original goes through the same post-processing first, so global JPEG, noise and resizing
        cancel and what remains is the manipulation (and the compression's response to it). Pixels of
        the mask that barely changed are the ones no detector can see.

        Example:
            >>> img = np.full((32, 32, 3), 128, np.uint8)
            >>> s = forge(img, "color", seed=0, postprocess=False)
            >>> bool(s.change()[s.mask == 0].max() == 0), bool(s.change()[s.mask == 1].mean() > 1)
            (True, True)
        """
        if self.original is None:
            raise ForensixError("this sample has no original image to compare with; "
                                "samples from ForgeryGenerator and forge() carry one")
        reference = apply_postprocess(self.original, self.record.postprocess)
        return np.abs(self.image.astype(np.float32) - reference.astype(np.float32)).mean(axis=-1)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return x


# ----------------------------------------------------------------------------------------- regions


def _target_area(rng: np.random.Generator, lo: float = AREA_RANGE[0], hi: float = AREA_RANGE[1]) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _center(rng: np.random.Generator, h: int, w: int, radius: float) -> tuple[float, float]:
    cy = rng.uniform(min(radius, h / 2), max(h - radius, h / 2))
    cx = rng.uniform(min(radius, w / 2), max(w - radius, w / 2))
    return cy, cx


def _ellipse(h: int, w: int, rng: np.random.Generator, frac: float) -> Array:
    area = frac * h * w
    ratio = rng.uniform(0.5, 2.0)
    a = np.sqrt(area * ratio / np.pi)
    b = area / (np.pi * a)
    cy, cx = _center(rng, h, w, max(a, b) * 0.8)
    t = rng.uniform(0, np.pi)
    yy, xx = np.ogrid[0:h, 0:w]
    dy, dx = yy - cy, xx - cx
    u = (dx * np.cos(t) + dy * np.sin(t)) / a
    v = (-dx * np.sin(t) + dy * np.cos(t)) / b
    return (u * u + v * v <= 1.0).astype(np.uint8)


def _polygon(h: int, w: int, rng: np.random.Generator, frac: float) -> Array:
    n = int(rng.integers(3, 10))
    radius = np.sqrt(frac * h * w / (np.pi * 0.6))
    cy, cx = _center(rng, h, w, radius * 0.8)
    angles = (np.arange(n) + rng.uniform(-0.35, 0.35, n)) * 2 * np.pi / n + rng.uniform(0, 2 * np.pi)
    radii = radius * rng.uniform(0.55, 1.15, n)
    xs, ys = radii * np.cos(angles), radii * np.sin(angles)
    poly_area = 0.5 * abs(float(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1))))
    k = np.sqrt(frac * h * w / max(poly_area, 1e-6))
    pts = [(float(cx + k * x), float(cy + k * y)) for x, y in zip(xs, ys)]
    canvas = Image.new("L", (w, h), 0)
    ImageDraw.Draw(canvas).polygon(pts, fill=1)
    return np.asarray(canvas, dtype=np.uint8).copy()


def _upsample_noise(grid: Array, h: int, w: int) -> Array:
    """Bicubic upsampling of a small float grid to ``h x w`` (PIL, fast)."""
    return np.asarray(Image.fromarray(grid.astype(np.float32), mode="F").resize((w, h), Image.BICUBIC))


def _largest_component(mask: Array) -> Array:
    labels, n = ndimage.label(mask)
    if n <= 1:
        return mask.astype(np.uint8)
    sizes = np.bincount(labels.ravel())[1:]
    return (labels == 1 + int(np.argmax(sizes))).astype(np.uint8)


def _blob(h: int, w: int, rng: np.random.Generator, frac: float) -> Array:
    sigma = np.sqrt(frac * h * w / np.pi)
    cy, cx = _center(rng, h, w, sigma * 0.8)
    yy, xx = np.ogrid[0:h, 0:w]
    bump = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
    noise = _upsample_noise(rng.random((7, 7)), h, w)
    field_ = bump * (0.35 + noise)
    thr = np.quantile(field_, 1 - frac)
    blob = _largest_component(field_ > thr)
    return ndimage.binary_fill_holes(blob).astype(np.uint8)


def _object(image: Array, rng: np.random.Generator, frac: float) -> Array:
    """A region following the image's structure: the connected area of similar color around a seed."""
    full_h, full_w = image.shape[:2]
    step = 2 if min(full_h, full_w) >= 64 else 1
    small = image[::step, ::step].astype(np.float32)
    h, w = small.shape[:2]
    smooth = ndimage.uniform_filter(small, size=(3, 3, 1))
    sy, sx = int(rng.integers(h // 6, h - h // 6)), int(rng.integers(w // 6, w - w // 6))
    dist = np.sqrt(((smooth - smooth[sy, sx]) ** 2).sum(axis=2))
    best, best_err = None, np.inf
    for thr in np.quantile(dist, (0.05, 0.1, 0.2, 0.3, 0.45, 0.6)):
        labels, _ = ndimage.label(dist <= thr)
        comp = labels == labels[sy, sx]
        err = abs(np.log(max(comp.mean(), 1e-4) / frac))
        if AREA_RANGE[0] <= comp.mean() <= AREA_RANGE[1] * 1.2 and err < best_err:
            best, best_err = comp, err
    if best is None:  # texture without a fitting segment: keep the structure inside a blob
        blob = _blob(h, w, rng, min(frac * 2, AREA_RANGE[1]))
        best = blob & (dist <= np.quantile(dist[blob > 0], 0.6))
        best = _largest_component(best) if best.mean() >= AREA_RANGE[0] else blob
    best = ndimage.binary_closing(best, iterations=1)
    best = _largest_component(ndimage.binary_fill_holes(best))
    if best.mean() < AREA_RANGE[0] / 2:
        return _ellipse(full_h, full_w, rng, frac)
    return np.repeat(np.repeat(best, step, axis=0), step, axis=1)[:full_h, :full_w].astype(np.uint8)


def make_region(
    shape: str,
    size_hw: tuple[int, int],
    rng: np.random.Generator,
    image: Array | None = None,
    area: float | None = None,
) -> Array:
    """A binary region mask (uint8 {0,1}) covering roughly ``area`` (default: random 2–25%).

    ``shape`` is one of ``ellipse``, ``polygon``, ``blob``, ``object`` (follows ``image``'s
    structure; a blob without an image).

    Example:
        >>> m = make_region("ellipse", (64, 64), np.random.default_rng(0), area=0.1)
        >>> bool(0.05 < m.mean() < 0.15)
        True
    """
    h, w = size_hw
    frac = _target_area(rng) if area is None else float(area)
    if shape == "ellipse":
        return _ellipse(h, w, rng, frac)
    if shape == "polygon":
        return _polygon(h, w, rng, frac)
    if shape == "blob" or (shape == "object" and image is None):
        return _blob(h, w, rng, frac)
    if shape == "object":
        return _object(image, rng, frac).astype(np.uint8)
    raise ForensixError(f"unknown region shape {shape!r}; choose one of {ALL_SHAPES}")


# ---------------------------------------------------------------------------------------- helpers


def _alpha(region: Array, edge: str, sigma: float) -> Array:
    """Blend weights: the region itself (hard) or its blurred version cut at a small value (feather)."""
    if edge == "hard":
        return region.astype(np.float32)
    a = ndimage.gaussian_filter(region.astype(np.float32), sigma)
    a = np.maximum(a, region.astype(np.float32) * 0.5)
    a[a < _ALPHA_CUTOFF] = 0.0
    return a


def _window(mask: Array, pad: int) -> tuple[slice, slice]:
    """Bounding box of ``mask`` grown by ``pad`` pixels, as slices."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    return (slice(max(rows[0] - pad, 0), min(rows[-1] + pad + 1, h)),
            slice(max(cols[0] - pad, 0), min(cols[-1] + pad + 1, w)))


def _blend(
    image: Array, region: Array, edge: str, sigma: float, new_fn: Callable[[Array, tuple[slice, slice]], Array]
) -> tuple[Array, Array]:
    """Blend ``new_fn(crop_float, window)`` into ``image`` with hard or feathered edges, in a window."""
    sl = _window(region, int(4 * sigma) + 16)
    alpha = _alpha(region[sl], edge, sigma)
    crop = image[sl]
    new = np.clip(np.rint(new_fn(crop.astype(np.float32), sl)), 0, 255)
    a = alpha[:, :, None]
    mixed = np.clip(np.rint(crop * (1 - a) + new * a), 0, 255).astype(np.uint8)
    mixed[alpha == 0] = crop[alpha == 0]
    out, mask = image.copy(), np.zeros(image.shape[:2], np.uint8)
    out[sl], mask[sl] = mixed, alpha > 0
    return out, mask


def _edge(rng: np.random.Generator, edge: str | None, sigma: float | None) -> tuple[str, float]:
    edge = edge or ("feather" if rng.random() < 0.5 else "hard")
    sigma = float(sigma) if sigma is not None else float(rng.uniform(1.0, 3.0))
    return edge, sigma


def jpeg(image: Array, quality: int) -> Array:
    """JPEG round trip at ``quality`` (PIL, 4:2:0 subsampling)."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def _luma(image: Array) -> Array:
    return image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def _sample_points(image: Array, coords: Array, order: int = 1) -> Array:
    """Bilinear samples of ``image`` at float (row, col) ``coords`` [2, N] -> [N, 3]."""
    return np.stack(
        [ndimage.map_coordinates(image[:, :, c], coords, order=order, mode="reflect") for c in range(3)], axis=1
    )


# ------------------------------------------------------------------------------------------- ops


def splice(
    image: Array,
    region: Array,
    rng: np.random.Generator,
    *,
    donor: Array | None = None,
    edge: str | None = None,
    feather_sigma: float | None = None,
    color_match: bool | None = None,
    donor_quality: int | None = None,
) -> tuple[Array, Array, dict[str, Any]]:
    """Paste the region from ``donor`` (another photo, with its own JPEG history).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> img, donor = np.zeros((32, 32, 3), np.uint8), np.full((32, 32, 3), 200, np.uint8)
        >>> out, m, p = splice(img, make_region("ellipse", (32, 32), rng), rng, donor=donor)
        >>> bool(out[m == 0].max() == 0)
        True
    """
    if donor is None:
        donor = texture("noise", image.shape[:2], rng)
    edge, sigma = _edge(rng, edge, feather_sigma)
    color_match = bool(rng.random() < 0.4) if color_match is None else bool(color_match)
    q = int(rng.integers(50, 91)) if donor_quality is None else int(donor_quality)
    sl = _window(region, int(4 * sigma) + 16)
    patch = np.zeros(image.shape, np.float32)
    patch[sl] = jpeg(np.ascontiguousarray(donor[sl]), q)
    inside = region > 0
    if color_match:
        mu_d, sd_d = patch[inside].mean(0), patch[inside].std(0) + 1e-3
        mu_h, sd_h = image[inside].astype(np.float32).mean(0), image[inside].astype(np.float32).std(0) + 1e-3
        patch = (patch - mu_d) / sd_d * np.minimum(sd_h, 2 * sd_d) + mu_h
    patch = np.clip(np.rint(patch), 0, 255).astype(np.uint8)
    out, mask = _blend(image, region, edge, sigma, lambda crop, sl: patch[sl].astype(np.float32))
    luma_diff = float(_luma(patch)[inside].mean() - _luma(image)[inside].mean())
    params = {"edge": edge, "feather_sigma": sigma, "color_match": color_match, "donor_quality": q,
              "luma_diff": round(luma_diff, 2)}
    return out, mask, params


def _copy_geometry(region: Array, rng: np.random.Generator, scale: float) -> tuple[Array, float]:
    """Centroid of the region and the source center, kept inside the image and off the target."""
    h, w = region.shape
    ys, xs = np.nonzero(region)
    c_dst = np.array([ys.mean(), xs.mean()])
    radius = float(np.sqrt(((ys - c_dst[0]) ** 2 + (xs - c_dst[1]) ** 2).max())) / scale
    lo = np.minimum([radius, radius], [h / 2, w / 2])
    hi = np.maximum([h - radius, w - radius], [h / 2, w / 2])
    best, best_d = None, -1.0
    for _ in range(20):
        c = rng.uniform(lo, hi)
        d = float(np.hypot(*(c - c_dst)))
        if d > best_d:
            best, best_d = c, d
        if d > radius * scale * 1.2:
            break
    return np.concatenate([c_dst, best]), radius


def copy_move(
    image: Array,
    region: Array,
    rng: np.random.Generator,
    *,
    rotation: float | None = None,
    scale: float | None = None,
) -> tuple[Array, Array, dict[str, Any]]:
    """Copy another part of the same photo into the region (shift, rotation and scale)."""
    rotation = (0.0 if rng.random() < 0.5 else float(rng.uniform(-30, 30))) if rotation is None else float(rotation)
    scale = (1.0 if rng.random() < 0.5 else float(rng.uniform(0.8, 1.25))) if scale is None else float(scale)
    centers, _ = _copy_geometry(region, rng, scale)
    c_dst, c_src = centers[:2], np.round(centers[2:])
    t = np.deg2rad(rotation)
    m = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]) / scale
    ys, xs = np.nonzero(region)
    pts = np.stack([ys, xs]).astype(np.float64)
    src = m @ (pts - c_dst[:, None]) + c_src[:, None]
    out = image.copy()
    out[ys, xs] = np.clip(np.rint(_sample_points(image, src)), 0, 255).astype(np.uint8)
    shift = (c_src - c_dst).round(2)
    params = {"rotation": round(rotation, 2), "scale": round(scale, 3),
              "source_center": [float(c_src[0]), float(c_src[1])], "shift": [float(shift[0]), float(shift[1])]}
    return out, region.astype(np.uint8), params


def _block_reduce(x: Array) -> Array:
    h, w = x.shape[:2]
    pad = [(0, h % 2), (0, w % 2)] + [(0, 0)] * (x.ndim - 2)
    x = np.pad(x, pad)
    return x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2]


def _pyramid_fill(img: Array, known: Array) -> Array:
    """Fill unknown pixels coarse-to-fine from their known surroundings (float ``H x W x C``)."""
    if known.all():
        return img
    h, w = known.shape
    if not known.any():
        return np.full_like(img, 128.0)
    if min(h, w) <= 2:
        return np.where(known[:, :, None], img, img[known].mean(axis=0))
    k = known.astype(np.float32)
    total = _block_reduce(img * k[:, :, None])
    count = _block_reduce(k)
    small = total / np.maximum(count, 1e-6)[:, :, None]
    filled = _pyramid_fill(small, count > 0)
    up = np.repeat(np.repeat(filled, 2, axis=0), 2, axis=1)[:h, :w]
    up = ndimage.uniform_filter(up, size=(3, 3, 1), mode="nearest")
    return np.where(known[:, :, None], img, up)


def removal(
    image: Array,
    region: Array,
    rng: np.random.Generator,
    *,
    add_noise: bool | None = None,
    dilate: int | None = None,
) -> tuple[Array, Array, dict[str, Any]]:
    """Remove the region's content by filling it from its surroundings (coarse-to-fine diffusion)."""
    add_noise = bool(rng.random() < 0.5) if add_noise is None else bool(add_noise)
    dilate = int(rng.integers(0, 3)) if dilate is None else int(dilate)
    region = ndimage.binary_dilation(region, iterations=dilate) if dilate else region.astype(bool)
    sl = _window(region, 24)
    hole = region[sl]
    known = ~hole
    img = image[sl].astype(np.float32)
    filled = _pyramid_fill(img, known)
    for _ in range(2):
        filled = np.where(known[:, :, None], img, ndimage.gaussian_filter(filled, sigma=(1, 1, 0)))
    noise_sigma = 0.0
    if add_noise:
        resid = img - ndimage.uniform_filter(img, size=(3, 3, 1))
        ring = ndimage.binary_dilation(hole, iterations=4) & known
        noise_sigma = float(resid[ring].std()) if ring.any() else 2.0
        filled = filled + rng.normal(0, noise_sigma, size=filled.shape).astype(np.float32) * hole[:, :, None]
    crop = np.clip(np.rint(filled), 0, 255).astype(np.uint8)
    crop[known] = image[sl][known]
    out = image.copy()
    out[sl] = crop
    params = {"add_noise": add_noise, "noise_sigma": round(noise_sigma, 3), "dilate": dilate}
    return out, region.astype(np.uint8), params


RETOUCH_KINDS = ("blur", "sharpen", "noise")


def retouch(
    image: Array,
    region: Array,
    rng: np.random.Generator,
    *,
    kind: str | None = None,
    strength: float | None = None,
    edge: str | None = None,
    feather_sigma: float | None = None,
) -> tuple[Array, Array, dict[str, Any]]:
    """Local blur, sharpening or noise inside the region."""
    kind = kind or RETOUCH_KINDS[int(rng.integers(len(RETOUCH_KINDS)))]
    edge, sigma = _edge(rng, edge, feather_sigma)
    if kind == "blur":
        strength = float(rng.uniform(1.2, 3.0)) if strength is None else float(strength)

        def new_fn(img: Array, sl: tuple[slice, slice]) -> Array:
            return ndimage.gaussian_filter(img, sigma=(strength, strength, 0))
    elif kind == "sharpen":
        strength = float(rng.uniform(1.0, 2.5)) if strength is None else float(strength)

        def new_fn(img: Array, sl: tuple[slice, slice]) -> Array:
            return img + strength * (img - ndimage.gaussian_filter(img, sigma=(1.0, 1.0, 0)))
    elif kind == "noise":
        strength = float(rng.uniform(5.0, 14.0)) if strength is None else float(strength)

        def new_fn(img: Array, sl: tuple[slice, slice]) -> Array:
            return img + rng.normal(0, strength, size=img.shape).astype(np.float32)
    else:
        raise ForensixError(f"unknown retouch kind {kind!r}; choose one of {RETOUCH_KINDS}")
    out, mask = _blend(image, region, edge, sigma, new_fn)
    return out, mask, {"kind": kind, "strength": round(strength, 3), "edge": edge, "feather_sigma": sigma}


COLOR_KINDS = ("gain", "brightness", "hue")


def color(
    image: Array,
    region: Array,
    rng: np.random.Generator,
    *,
    kind: str | None = None,
    amount: float | None = None,
    edge: str | None = None,
    feather_sigma: float | None = None,
) -> tuple[Array, Array, dict[str, Any]]:
    """Change the region's color balance, brightness or hue."""
    pick = COLOR_KINDS[int(rng.integers(len(COLOR_KINDS)))]
    gray = float(np.ptp(image[region > 0].astype(np.int16), axis=1).mean()) < 8
    kind = kind or ("gain" if pick == "hue" and gray else pick)
    edge, sigma = _edge(rng, edge, feather_sigma)
    if kind == "gain":
        amount = float(rng.uniform(0.15, 0.35)) if amount is None else float(amount)
        gains = 1 + amount * rng.choice([-1.0, 1.0]) * np.eye(3)[int(rng.integers(3))]
        mat = np.diag(gains)
        extra: dict[str, Any] = {"gains": [round(float(g), 3) for g in gains]}
    elif kind == "brightness":
        amount = float(rng.uniform(0.2, 0.45) * rng.choice([-1.0, 1.0])) if amount is None else float(amount)
        mat = np.eye(3) * (1 + amount)
        extra = {"offset": 10 * float(np.sign(amount))}
    elif kind == "hue":
        amount = float(rng.uniform(30, 150) * rng.choice([-1.0, 1.0])) if amount is None else float(amount)
        t = np.deg2rad(amount)
        k = np.ones(3) / np.sqrt(3)
        cross = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
        rot = np.cos(t) * np.eye(3) + np.sin(t) * cross + (1 - np.cos(t)) * np.outer(k, k)
        mat = rot
        extra = {}
    else:
        raise ForensixError(f"unknown color kind {kind!r}; choose one of {COLOR_KINDS}")
    offset = float(extra.get("offset", 0.0))
    transform = mat.T.astype(np.float32)
    out, mask = _blend(image, region, edge, sigma, lambda img, sl: img @ transform + offset)
    return out, mask, {"kind": kind, "amount": round(amount, 3), "edge": edge, "feather_sigma": sigma, **extra}


RESAMPLE_KINDS = ("down_up", "zoom")


def resample(
    image: Array,
    region: Array,
    rng: np.random.Generator,
    *,
    kind: str | None = None,
    factor: float | None = None,
) -> tuple[Array, Array, dict[str, Any]]:
    """Resample the region: downscale-upscale (loses detail) or zoom its content about its center."""
    kind = kind or RESAMPLE_KINDS[int(rng.integers(len(RESAMPLE_KINDS)))]
    h, w = region.shape
    ys, xs = np.nonzero(region)
    out = image.copy()
    if kind == "down_up":
        factor = float(rng.uniform(0.3, 0.6)) if factor is None else float(factor)
        small = Image.fromarray(image).resize((max(1, round(w * factor)), max(1, round(h * factor))), Image.BILINEAR)
        new = np.asarray(small.resize((w, h), Image.BICUBIC))
        out[ys, xs] = new[ys, xs]
    elif kind == "zoom":
        factor = float(rng.uniform(1.2, 1.6)) if factor is None else float(factor)
        c = np.array([ys.mean(), xs.mean()])
        pts = np.stack([ys, xs]).astype(np.float64)
        src = (pts - c[:, None]) / factor + c[:, None]
        out[ys, xs] = np.clip(np.rint(_sample_points(image, src)), 0, 255).astype(np.uint8)
    else:
        raise ForensixError(f"unknown resample kind {kind!r}; choose one of {RESAMPLE_KINDS}")
    return out, region.astype(np.uint8), {"kind": kind, "factor": round(factor, 3)}


OPS: dict[str, Callable[..., tuple[Array, Array, dict[str, Any]]]] = {
    "splice": splice, "copy_move": copy_move, "removal": removal,
    "retouch": retouch, "color": color, "resample": resample,
}


# -------------------------------------------------------------------------------- post-processing


def random_postprocess(rng: np.random.Generator) -> list[dict[str, Any]]:
    """A random post-processing chain: optional resize round trip, optional noise, usually JPEG."""
    steps: list[dict[str, Any]] = []
    if rng.random() < 0.25:
        steps.append({"op": "resize", "factor": round(float(rng.uniform(0.6, 0.95)), 3)})
    if rng.random() < 0.2:
        steps.append({"op": "noise", "sigma": round(float(rng.uniform(0.5, 2.5)), 3), "seed": int(rng.integers(2**31))})
    if rng.random() < 0.85:
        steps.append({"op": "jpeg", "quality": int(rng.integers(75, 99))})
    return steps


def apply_postprocess(image: Array, steps: Sequence[Mapping[str, Any]]) -> Array:
    """Apply post-processing steps (``jpeg``/``resize``/``noise`` dicts) to the whole image.

    Example:
        >>> img = np.zeros((16, 16, 3), np.uint8)
        >>> apply_postprocess(img, [{"op": "jpeg", "quality": 90}]).shape
        (16, 16, 3)
    """
    h, w = image.shape[:2]
    for step in steps:
        op = step.get("op")
        if op == "jpeg":
            image = jpeg(image, int(step["quality"]))
        elif op == "resize":
            f = float(step["factor"])
            small = Image.fromarray(image).resize((max(1, round(w * f)), max(1, round(h * f))), Image.BILINEAR)
            image = np.asarray(small.resize((w, h), Image.BILINEAR))
        elif op == "noise":
            noise = np.random.default_rng(int(step.get("seed", 0))).standard_normal(image.shape, dtype=np.float32)
            image = np.clip(np.rint(image + noise * np.float32(step["sigma"])), 0, 255).astype(np.uint8)
        else:
            raise ForensixError(f"unknown post-processing step {step!r}; use op jpeg, resize or noise")
    return np.ascontiguousarray(image)


# --------------------------------------------------------------------------------------- assembly


def _bbox(mask: Array) -> tuple[int, int, int, int] | None:
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _finish(
    original: Array,
    forged: Array,
    mask: Array,
    record: ForgeryRecord,
    rng: np.random.Generator,
    postprocess: bool | Sequence[Mapping[str, Any]],
) -> Sample:
    if postprocess is True:
        steps = random_postprocess(rng)
    elif postprocess:
        steps = [dict(s) for s in postprocess]
    else:
        steps = []
    record.postprocess = _jsonable(steps)
    record.bbox = _bbox(mask)
    record.area_fraction = round(float(mask.mean()), 5)
    return Sample(apply_postprocess(forged, steps), mask.astype(np.uint8), record, original)


def forge(
    image: Any,
    op: str,
    seed: int = 0,
    *,
    shape: str = "ellipse",
    donor: Any = None,
    region: Any = None,
    area: float | None = None,
    postprocess: bool | Sequence[Mapping[str, Any]] = True,
    source: str = "user",
    donor_name: str | None = None,
    **params: Any,
) -> Sample:
    """Forge one image: pick the op, region shape (or give ``region``), post-processing and seed.

    ``postprocess`` is ``True`` (random chain), ``False`` (none) or a list of steps such as
    ``[{"op": "jpeg", "quality": 80}]``. Extra keyword arguments fix the op's parameters.

    Example:
        >>> img = np.random.default_rng(0).integers(0, 255, (64, 64, 3)).astype(np.uint8)
        >>> s = forge(img, "retouch", seed=1, shape="polygon", kind="blur", postprocess=False)
        >>> s.record.params["kind"], bool((s.image[s.mask == 0] == img[s.mask == 0]).all())
        ('blur', True)
    """
    image = as_image_array(image)
    rng = np.random.default_rng(seed)
    record = ForgeryRecord(op=op, source=source, seed=seed)
    if op == "authentic":
        return _finish(image, image.copy(), np.zeros(image.shape[:2], np.uint8), record, rng, postprocess)
    if op not in OPS:
        raise ForensixError(f"unknown op {op!r}; choose one of {ALL_OPS + ('authentic',)}")
    if region is None:
        region = make_region(shape, image.shape[:2], rng, image=image, area=area)
    else:
        region, shape = as_mask_array(region, image.shape[:2], name="region"), "custom"
    if not region.any():
        raise ForensixError("region is empty; pass a region with at least one pixel set")
    if op == "splice":
        donor_arr = as_image_array(donor, name="donor") if donor is not None else texture("noise", image.shape[:2], rng)
        if donor_arr.shape != image.shape:
            donor_arr = np.asarray(Image.fromarray(donor_arr).resize(image.shape[1::-1], Image.BILINEAR))
        params["donor"] = donor_arr
        record.donor = donor_name or ("user" if donor is not None else "texture:noise")
    forged, mask, used = OPS[op](image, region, rng, **params)
    record.shape, record.params = shape, _jsonable(used)
    return _finish(image, forged, mask, record, rng, postprocess)


class ForgeryGenerator:
    """Seeded stream of synthetic forgeries; ``sample(i)`` depends only on (seed, split, i).

    ``photos``: None (bundled photos of ``split``), a :class:`PhotoPool`, or a mapping
    name -> image (e.g. :class:`~forensix.data.sources.FolderPhotos`).

    Example:
        >>> gen = ForgeryGenerator(size=64, ops=("splice",), p_authentic=0.0, seed=1)
        >>> gen.sample(0).record.op
        'splice'
    """

    def __init__(
        self,
        size: int = 256,
        ops: Sequence[str] = ALL_OPS,
        shapes: Sequence[str] = ALL_SHAPES,
        p_authentic: float = 0.25,
        split: str = "train",
        seed: int = 0,
        photos: PhotoPool | Mapping[str, Array] | None = None,
        postprocess: bool = True,
    ):
        bad = [o for o in ops if o not in OPS] + [s for s in shapes if s not in ALL_SHAPES]
        if bad or not ops or not shapes:
            raise ForensixError(f"unknown or missing ops/shapes {bad}; ops from {ALL_OPS}, shapes from {ALL_SHAPES}")
        if split not in SPLITS:
            raise ForensixError(f"unknown split {split!r}; choose one of {SPLITS}")
        if not 0.0 <= p_authentic <= 1.0:
            raise ForensixError(f"p_authentic must lie in [0, 1], got {p_authentic}")
        self.size, self.ops, self.shapes = int(size), tuple(ops), tuple(shapes)
        self.p_authentic, self.split, self.seed, self.postprocess = p_authentic, split, int(seed), postprocess
        if photos is None:
            photos = PhotoPool.bundled(split=split, seed=seed)
        elif not isinstance(photos, PhotoPool):
            photos = PhotoPool(photos, texture_seed=seed)
        self.photos = photos

    def rng(self, index: int) -> np.random.Generator:
        """The generator of sample ``index``."""
        return np.random.default_rng([self.seed, SPLITS.index(self.split), int(index)])

    def sample(self, index: int, op: str | None = None) -> Sample:
        """Sample ``index`` (deterministic); ``op`` forces an op (or ``"authentic"``)."""
        rng = self.rng(index)
        authentic = rng.random() < self.p_authentic
        op_choice = self.ops[int(rng.integers(len(self.ops)))]
        shape = self.shapes[int(rng.integers(len(self.shapes)))]
        op = op or ("authentic" if authentic else op_choice)
        image, name = self.photos.random_crop(rng, self.size)
        record = ForgeryRecord(op=op, source=name, seed=self.seed, split=self.split, index=int(index))
        if op == "authentic":
            return _finish(image, image.copy(), np.zeros(image.shape[:2], np.uint8), record, rng, self.postprocess)
        region = make_region(shape, image.shape[:2], rng, image=image)
        params: dict[str, Any] = {}
        if op == "splice":
            params["donor"], record.donor = self.photos.random_crop(rng, self.size, exclude=name)
        forged, mask, used = OPS[op](image, region, rng, **params)
        record.shape, record.params = shape, _jsonable(used)
        return _finish(image, forged, mask, record, rng, self.postprocess)

    forge = staticmethod(forge)


__all__ = [
    "ALL_OPS", "ALL_SHAPES", "OPS", "ForgeryRecord", "Sample", "ForgeryGenerator", "forge", "make_region",
    "splice", "copy_move", "removal", "retouch", "color", "resample", "apply_postprocess",
    "random_postprocess", "jpeg",
]
