"""Processing histories of small patches, labelled for free: the pretext task of the trace branch's pre-training.

ManTra-Net learns its low-level features by classifying hundreds of manipulation types on small
patches before it ever localizes; TruFor's Noiseprint++ and CAT-Net's DCT stream are likewise trained
on what was done to pristine pixels. The data engine knows every operation it applies, so the labels
cost nothing: each patch is a crop of a training photo (never a validation or test photo) that went
through one of :data:`HISTORIES` and then, like every forged image, a random final JPEG or none.

Example:
    >>> data = HistoryPatches(size=32, length=8, seed=0)
    >>> item = data[3]
    >>> item["image"].shape, HISTORIES[int(item["label"])] in HISTORIES
    (torch.Size([3, 32, 32]), True)
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from forensix.data.forge import jpeg
from forensix.data.sources import PhotoPool

#: The classes: what was done to the patch before its final (optional) JPEG.
HISTORIES = ("pristine", "jpeg_low", "jpeg_shifted", "resampled", "blurred", "sharpened", "noised", "median")


def _apply(kind: str, patch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x = patch.astype(np.float32)
    if kind == "pristine":
        return patch
    if kind == "jpeg_low":
        return jpeg(patch, int(rng.integers(40, 71)))
    if kind == "jpeg_shifted":  # compressed on a grid shifted by (dy, dx): a pasted JPEG's history
        dy, dx = (int(v) for v in rng.integers(1, 8, 2))
        padded = np.pad(patch, ((dy, 8), (dx, 8)) + ((0, 0),), mode="reflect")
        return jpeg(padded, int(rng.integers(60, 91)))[dy : dy + patch.shape[0], dx : dx + patch.shape[1]]
    if kind == "resampled":
        h, w = patch.shape[:2]
        f = float(rng.uniform(0.45, 0.8))
        small = Image.fromarray(patch).resize((max(1, round(w * f)), max(1, round(h * f))), Image.BILINEAR)
        return np.asarray(small.resize((w, h), Image.BICUBIC))
    if kind == "blurred":
        s = float(rng.uniform(0.8, 2.0))
        return np.clip(np.rint(ndimage.gaussian_filter(x, (s, s, 0))), 0, 255).astype(np.uint8)
    if kind == "sharpened":
        a = float(rng.uniform(0.8, 2.0))
        return np.clip(np.rint(x + a * (x - ndimage.gaussian_filter(x, (1, 1, 0)))), 0, 255).astype(np.uint8)
    if kind == "noised":
        return np.clip(np.rint(x + rng.normal(0, rng.uniform(3, 10), x.shape)), 0, 255).astype(np.uint8)
    if kind == "median":
        return ndimage.median_filter(patch, size=(3, 3, 1))
    raise ValueError(kind)


class HistoryPatches(torch.utils.data.Dataset):
    """``length`` deterministic patches ``{"image": [3, S, S] in [0, 1], "label": int}`` of the training photos."""

    def __init__(self, size: int = 64, length: int = 4096, seed: int = 0, photos: PhotoPool | None = None) -> None:
        self.size, self.length, self.seed = int(size), int(length), int(seed)
        self.photos = photos if photos is not None else PhotoPool.bundled("train", seed=seed, p_texture=0.0)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, 7, int(index)])
        label = int(rng.integers(len(HISTORIES)))
        name = self.photos.names[int(rng.integers(len(self.photos.names)))]
        photo = self.photos.photo(name)
        h, w = photo.shape[:2]
        s = min(self.size, h, w)
        y, x = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
        patch = np.ascontiguousarray(photo[y : y + s, x : x + s])
        out = _apply(HISTORIES[label], patch, rng)
        if rng.random() < 0.7:
            out = jpeg(np.ascontiguousarray(out), int(rng.integers(80, 99)))
        if out.shape[:2] != (self.size, self.size):
            out = np.asarray(Image.fromarray(out).resize((self.size, self.size), Image.NEAREST))
        image = torch.from_numpy(np.ascontiguousarray(out)).permute(2, 0, 1).float() / 255.0
        return {"image": image, "label": torch.tensor(label)}


__all__ = ["HISTORIES", "HistoryPatches"]
