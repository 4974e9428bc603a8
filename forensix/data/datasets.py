"""Datasets: synthetic forgeries for the three stages, public-benchmark folder layouts, manifests.

Folder layouts (``FolderDataset(root, layout)``); masks are binary images (0/255 or 0/1):

- ``casia``: ``Tp/<name>.*`` forged images, ``Gt/<name>_gt.*`` masks, optional ``Au/*`` authentic.
- ``columbia``: ``4cam_splc/<name>.*`` forged, ``4cam_auth/*`` authentic; the mask of ``x.tif`` is
  ``x_edgemask.*`` or ``x_mask.*`` in ``4cam_splc/edgemask/``, ``4cam_splc/mask/`` or beside it
  (nonzero = spliced).
- ``coverage``: ``image/<n>t.*`` forged, ``image/<n>.*`` authentic, ``mask/<n>forged.*`` masks.
- ``imd2020``: any sub-folder; ``*_orig.*`` authentic, ``<x>_mask.*`` the mask of ``<x>.*`` (forged).

Items are dicts ``{"image": uint8 HxWx3, "mask": uint8 HxW or None (authentic), "name", "path"}``.
Unusable files are listed in ``.skipped`` as ``(path, reason)``; they are never silently dropped.

Example:
    >>> ds = SyntheticForgeryDataset(stage=3, size=64, length=4)
    >>> sorted(ds[0])
    ['clues', 'image', 'index', 'is_fake', 'mask', 'messages', 'record']
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from forensix.data.conversations import STAGE_MESSAGES
from forensix.data.describe import clue_vector
from forensix.data.forge import ForgeryGenerator, Sample
from forensix.data.io import as_image_array, as_mask_array, read_image, read_mask
from forensix.data.sources import IMAGE_EXTENSIONS, SPLITS
from forensix.errors import BadDatasetError, BadImageError, BadMaskError, ForensixError

LAYOUTS = ("casia", "columbia", "coverage", "imd2020", "manifest", "synthetic")


def to_tensor_image(img: Any) -> torch.Tensor:
    """uint8 ``H x W x 3`` -> float32 ``[3, H, W]`` in [0, 1].

    Example:
        >>> to_tensor_image(np.zeros((8, 8, 3), np.uint8)).shape
        torch.Size([3, 8, 8])
    """
    arr = as_image_array(img)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).float().div_(255.0)


def to_tensor_mask(mask: Any) -> torch.Tensor:
    """uint8 ``H x W`` {0,1} -> float32 ``[1, H, W]``.

    Example:
        >>> to_tensor_mask(np.eye(8, dtype=np.uint8)).sum().item()
        8.0
    """
    return torch.from_numpy(as_mask_array(mask, None)[None].astype(np.float32))


class SyntheticForgeryDataset(Dataset):
    """Seeded synthetic forgeries with stage-specific conversations (a torch ``Dataset``).

    Splits use disjoint bundled photos (``test`` is held out). Generated items are cached in memory
    when ``cache`` is True, so later epochs cost nothing.

    Example:
        >>> ds = SyntheticForgeryDataset(stage=2, split="val", size=64, length=2)
        >>> ds[1]["image"].shape
        torch.Size([3, 64, 64])
    """

    def __init__(
        self,
        stage: int,
        split: str = "train",
        size: int = 256,
        length: int = 1000,
        seed: int = 0,
        cache: bool = True,
        **generator_kwargs: Any,
    ):
        if stage not in STAGE_MESSAGES:
            raise ForensixError(f"stage must be 1, 2 or 3, got {stage!r}")
        if split not in SPLITS:
            raise ForensixError(f"split must be one of {SPLITS}, got {split!r}")
        if length < 1:
            raise ForensixError(f"length must be at least 1, got {length}")
        self.stage, self.split, self.size, self.length, self.seed = stage, split, size, int(length), seed
        self.generator = ForgeryGenerator(size=size, split=split, seed=seed, **generator_kwargs)
        self.cache = cache
        self._cache: dict[int, dict[str, Any]] = {}

    def __len__(self) -> int:
        return self.length

    def sample(self, index: int) -> Sample:
        """The raw :class:`~forensix.data.forge.Sample` behind item ``index``."""
        return self.generator.sample(index)

    def _make(self, index: int) -> dict[str, Any]:
        s = self.sample(index)
        rng = np.random.default_rng([self.seed, SPLITS.index(self.split), index, self.stage, 17])
        return {
            "image": to_tensor_image(s.image),
            "mask": torch.from_numpy(s.mask[None].astype(np.float32)),
            "clues": torch.from_numpy(clue_vector(s.record)),
            "messages": STAGE_MESSAGES[self.stage](s, rng),
            "record": s.record.to_dict(),
            "is_fake": torch.tensor(float(s.record.is_fake)),
            "index": int(index),
        }

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -self.length <= index < self.length:
            raise IndexError(f"index {index} out of range for a dataset of length {self.length}")
        index %= self.length
        if index in self._cache:
            return self._cache[index]
        item = self._make(index)
        if self.cache:
            self._cache[index] = item
        return item

    def pregenerate(self, n_workers: int = 1) -> None:
        """Generate and cache every item (``n_workers`` > 1 uses threads)."""
        todo = [i for i in range(self.length) if i not in self._cache]
        if n_workers <= 1:
            items = [self._make(i) for i in todo]
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(n_workers) as pool:
                items = list(pool.map(self._make, todo))
        self._cache.update(zip(todo, items))


def collate_samples(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack tensors of dataset items; keep messages, records and indices as lists.

    Example:
        >>> ds = SyntheticForgeryDataset(stage=1, size=64, length=2)
        >>> collate_samples([ds[0], ds[1]])["image"].shape
        torch.Size([2, 3, 64, 64])
    """
    out: dict[str, Any] = {}
    for key in batch[0]:
        values = [b[key] for b in batch]
        out[key] = torch.stack(values) if isinstance(values[0], torch.Tensor) else values
    return out


# ---------------------------------------------------------------------------------------- folders


def _images_in(folder: Path, recursive: bool = False) -> list[Path]:
    if not folder.is_dir():
        return []
    files = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in files if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _by_stem(files: Sequence[Path]) -> dict[str, Path]:
    return {p.stem: p for p in files}


class FolderDataset:
    """A public-benchmark style folder (see the module doc for the layouts).

    ``validate`` (default True) decodes every pair once so that bad files land in ``.skipped``.

    Example:
        >>> ds = FolderDataset("CASIA1/", "casia")  # doctest: +SKIP
        >>> ds[0]["mask"].shape, ds.skipped  # doctest: +SKIP
    """

    EXPECTED = {
        "casia": "Tp/ (forged images), Gt/ (masks named <image stem>_gt.*), optional Au/ (authentic)",
        "columbia": "4cam_splc/ (forged; masks <stem>_edgemask.* or <stem>_mask.* in edgemask/, mask/ or "
                    "beside the image) and 4cam_auth/ (authentic)",
        "coverage": "image/ (<n>t.* forged, <n>.* authentic) and mask/ (<n>forged.*)",
        "imd2020": "sub-folders with <x>_orig.* (authentic), <x>.* forged and <x>_mask.* masks",
    }

    def __init__(self, root: str | Path, layout: str, *, validate: bool = True):
        self.root, self.layout = Path(root), layout
        if layout not in self.EXPECTED:
            raise BadDatasetError(f"unknown folder layout {layout!r}; choose one of {sorted(self.EXPECTED)}")
        if not self.root.is_dir():
            raise BadDatasetError(f"{self.root}: not a folder; expected {self.EXPECTED[layout]}")
        self.skipped: list[tuple[str, str]] = []
        pairs: list[tuple[Path, Path | None]] = getattr(self, f"_scan_{layout}")()
        if not pairs and not self.skipped:
            raise BadDatasetError(
                f"{self.root}: no images found for layout {layout!r}; expected {self.EXPECTED[layout]}"
            )
        self.pairs = [p for p in pairs if self._usable(*p)] if validate else pairs
        if not self.pairs:
            raise BadDatasetError(
                f"{self.root}: none of the files could be used ({len(self.skipped)} skipped: "
                f"{self.skipped[:3]}); expected {self.EXPECTED[layout]}"
            )

    def _need_mask(self, image: Path, mask: Path | None) -> tuple[Path, Path | None] | None:
        if mask is None:
            self.skipped.append((str(image), "no mask found for this forged image"))
            return None
        return image, mask

    def _forged(self, images: Sequence[Path], find_mask: Callable[[Path], Path | None]) -> list[tuple[Path, Path | None]]:
        found = [self._need_mask(p, find_mask(p)) for p in images]
        return [f for f in found if f is not None]

    def _scan_casia(self) -> list[tuple[Path, Path | None]]:
        masks = _by_stem(_images_in(self.root / "Gt"))
        forged = self._forged(_images_in(self.root / "Tp"), lambda p: masks.get(p.stem + "_gt"))
        return forged + [(p, None) for p in _images_in(self.root / "Au")]

    def _scan_columbia(self) -> list[tuple[Path, Path | None]]:
        splc = self.root / "4cam_splc"
        candidates = _images_in(splc) + _images_in(splc / "edgemask") + _images_in(splc / "mask")
        masks = {p.stem: p for p in candidates if p.stem.endswith(("_edgemask", "_mask"))}
        images = [p for p in _images_in(splc) if not p.stem.endswith(("_edgemask", "_mask"))]
        forged = self._forged(images, lambda p: masks.get(p.stem + "_edgemask") or masks.get(p.stem + "_mask"))
        return forged + [(p, None) for p in _images_in(self.root / "4cam_auth")]

    def _scan_coverage(self) -> list[tuple[Path, Path | None]]:
        masks = _by_stem(_images_in(self.root / "mask"))
        images = _images_in(self.root / "image")
        forged = self._forged([p for p in images if p.stem.endswith("t")],
                              lambda p: masks.get(p.stem[:-1] + "forged"))
        return forged + [(p, None) for p in images if not p.stem.endswith("t")]

    def _scan_imd2020(self) -> list[tuple[Path, Path | None]]:
        files = _images_in(self.root, recursive=True)
        masks = {(p.parent, p.stem[: -len("_mask")]): p for p in files if p.stem.endswith("_mask")}
        authentic = [(p, None) for p in files if p.stem.endswith("_orig")]
        images = [p for p in files if not p.stem.endswith(("_mask", "_orig"))]
        return self._forged(images, lambda p: masks.get((p.parent, p.stem))) + authentic

    def _usable(self, image: Path, mask: Path | None) -> bool:
        try:
            self._load(image, mask)
        except (BadImageError, BadMaskError) as err:
            self.skipped.append((str(image), str(err)))
            return False
        return True

    @staticmethod
    def _load(image: Path, mask: Path | None) -> tuple[np.ndarray, np.ndarray | None]:
        img = read_image(image)
        return img, (read_mask(mask, shape=img.shape) if mask is not None else None)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image, mask = self.pairs[index]
        img, m = self._load(image, mask)
        return {"image": img, "mask": m, "name": image.stem, "path": str(image)}


class ManifestDataset(FolderDataset):
    """A JSON list of ``[image, mask-or-null]`` pairs (or ``{"image", "mask"}`` dicts), paths
    relative to the manifest.

    Example:
        >>> ds = ManifestDataset("data/manifest.json")  # doctest: +SKIP
    """

    EXPECTED = {"manifest": 'a JSON list like [["img1.png", "img1_mask.png"], ["img2.jpg", null]]'}

    def __init__(self, path: str | Path, *, validate: bool = True):
        self.path = Path(path)
        if not self.path.is_file():
            raise BadDatasetError(f"{self.path}: manifest not found; expected {self.EXPECTED['manifest']}")
        super().__init__(self.path.parent, "manifest", validate=validate)

    def _scan_manifest(self) -> list[tuple[Path, Path | None]]:
        try:
            entries = json.loads(self.path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise BadDatasetError(f"{self.path}: not valid JSON ({err}); expected {self.EXPECTED['manifest']}") from err
        if not isinstance(entries, list):
            raise BadDatasetError(f"{self.path}: expected {self.EXPECTED['manifest']}")
        pairs: list[tuple[Path, Path | None]] = []
        for i, entry in enumerate(entries):
            if isinstance(entry, dict):
                entry = [entry.get("image"), entry.get("mask")]
            if (not isinstance(entry, (list, tuple)) or len(entry) != 2 or not isinstance(entry[0], str)
                    or not (entry[1] is None or isinstance(entry[1], str))):
                self.skipped.append((f"{self.path}[{i}]", f"malformed entry {entry!r}; expected [image, mask or null]"))
                continue
            pairs.append((self.root / entry[0], self.root / entry[1] if entry[1] else None))
        return pairs


class SyntheticImageDataset:
    """Synthetic forgeries as folder-style items (for evaluation next to real datasets).

    Example:
        >>> SyntheticImageDataset(split="test", size=64, length=2)[0]["image"].shape
        (64, 64, 3)
    """

    def __init__(self, split: str = "test", size: int = 256, length: int = 200, seed: int = 0, **kwargs: Any):
        self.generator = ForgeryGenerator(size=size, split=split, seed=seed, **kwargs)
        self.length, self.skipped = int(length), []

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for a dataset of length {self.length}")
        s = self.generator.sample(index)
        return {"image": s.image, "mask": s.mask if s.record.is_fake else None,
                "name": f"{self.generator.split}_{index:06d}", "path": f"synthetic://{self.generator.split}/{index}",
                "record": s.record.to_dict()}


def load_dataset(root: str | Path | None, layout: str, **kwargs: Any) -> FolderDataset | SyntheticImageDataset:
    """Open a dataset by layout: ``casia``, ``columbia``, ``coverage``, ``imd2020``, ``manifest``
    (``root`` is the JSON file) or ``synthetic`` (``root`` ignored; kwargs go to the generator).

    Example:
        >>> len(load_dataset(None, "synthetic", size=64, length=3))
        3
    """
    if layout == "synthetic":
        return SyntheticImageDataset(**kwargs)
    if root is None:
        raise BadDatasetError(f"layout {layout!r} needs a root folder (or manifest file)")
    if layout == "manifest":
        return ManifestDataset(root, **kwargs)
    if layout in FolderDataset.EXPECTED:
        return FolderDataset(root, layout, **kwargs)
    raise BadDatasetError(f"unknown layout {layout!r}; choose one of {LAYOUTS}")


__all__ = [
    "LAYOUTS", "to_tensor_image", "to_tensor_mask", "SyntheticForgeryDataset", "collate_samples",
    "FolderDataset", "ManifestDataset", "SyntheticImageDataset", "load_dataset",
]
