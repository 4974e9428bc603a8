"""Real camera photographs for training, fetched once from Debian's wallpaper packages (optional, offline after).

The bundled photos are few (13 in the training split, several of them textures, text pages or
micrographs). Debian's ``mate-backgrounds`` (its ``nature/`` folder) and ``lomiri-wallpapers-20.04``
ship camera photographs at 1280-6000 px under free licences. :func:`fetch_camera_photos` downloads the
two packages with ``apt-get download`` (no root needed), unpacks them with ``dpkg -x``, keeps only the
files listed in :data:`CAMERA_PHOTOS` (renderings and abstract art are left out), and writes
``LICENSES.json`` beside them with each file's package, version, copyright holder and licence, plus the
packages' ``copyright`` files. :func:`camera_photos` reads them back (``None`` when they were never
fetched), for the *training* split only: validation and the held-out test split keep the bundled
photos, so held-out scores stay comparable.

Example:
    >>> photos = camera_photos()  # None until `make photos` (or fetch_camera_photos()) ran  # doctest: +SKIP
    >>> sorted(p.licence for p in CAMERA_PHOTOS)[0]
    'CC-BY-SA-3.0'
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from forensix.cache import cache_dir
from forensix.data.sources import FolderPhotos
from forensix.errors import ForensixError


@dataclass(frozen=True)
class CameraPhoto:
    """One photograph: the package holding it, its path inside, and its copyright as the package's ``copyright`` file states."""

    package: str
    path: str
    copyright: str
    licence: str

    @property
    def name(self) -> str:
        return "debian:" + Path(self.path).stem


_MATE = "usr/share/backgrounds/mate/nature/"
CAMERA_PHOTOS: tuple[CameraPhoto, ...] = (
    CameraPhoto("mate-backgrounds", _MATE + "Aqua.jpg", "2008, Charles Barbin", "GPL-2+"),
    CameraPhoto("mate-backgrounds", _MATE + "Blinds.jpg", "2008, Lennart Poettering; 2008, Andrea Cimitan", "GPL-2+"),
    CameraPhoto("mate-backgrounds", _MATE + "Dune.jpg", "2007, Marco Cogoni; 2008, Hylke Bons", "GPL-2+"),
    CameraPhoto("mate-backgrounds", _MATE + "FreshFlower.jpg", "2005, Jens Ansorg", "GPL-2+"),
    CameraPhoto("mate-backgrounds", _MATE + "Garden.jpg", "2008, Charles Barbin", "GPL-2+"),
    CameraPhoto("mate-backgrounds", _MATE + "GreenMeadow.jpg", "2005, Timothy Schellhase; 2008, Lapo Calamandrei", "GPL-2+"),
    CameraPhoto("mate-backgrounds", _MATE + "LadyBird.jpg", "2008, Charles Barbin", "GPL-2+"),
    CameraPhoto("mate-backgrounds", _MATE + "RainDrops.jpg", '2008, "blackcombwhistler07"', "GPL-2+"),
    CameraPhoto("mate-backgrounds", _MATE + "Storm.jpg", "2008, Sergey Nazarov", "GPL-2+"),
    CameraPhoto("mate-backgrounds", _MATE + "TwoWings.jpg", "2008, Charles Barbin; 2008, Hylke Bons", "GPL-2+"),
    CameraPhoto("mate-backgrounds", _MATE + "Wood.jpg", "2008, Jean-François Fortin Tam", "GPL-2+"),
    CameraPhoto("mate-backgrounds", _MATE + "YellowFlower.jpg", "2008, Charles Barbin", "GPL-2+"),
    CameraPhoto("lomiri-wallpapers-20.04", "usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg", "2021, Lukas Baubkus",
                "CC-BY-SA-3.0"),
)
PACKAGES = tuple(dict.fromkeys(p.package for p in CAMERA_PHOTOS))

Runner = Callable[..., subprocess.CompletedProcess]


def camera_photos_dir() -> Path:
    """Where :func:`fetch_camera_photos` puts the photos: ``<cache>/photos/debian``."""
    return cache_dir() / "photos" / "debian"


def _run(runner: Runner, args: list[str], cwd: Path) -> str:
    try:
        done = runner(args, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as err:
        raise ForensixError(f"{args[0]} is not installed ({err}); the camera photos come from Debian packages, "
                            "so fetch them on a Debian or Ubuntu machine, or train with --photos DIR") from None
    if done.returncode != 0:
        raise ForensixError(f"`{' '.join(args)}` failed ({done.stderr.strip()[-300:]}); run `apt-get update` "
                            "once, or train with the bundled photos (the default) or --photos DIR")
    return done.stdout


def fetch_camera_photos(dest: str | Path | None = None, runner: Runner = subprocess.run) -> Path:
    """Download the packages, keep the listed photos in ``dest`` with ``LICENSES.json``; returns ``dest``.

    Fetching again replaces what is there. Raises :class:`ForensixError` when ``apt-get``/``dpkg``
    are missing or fail, or a listed file is not in its package.
    """
    dest = Path(dest) if dest is not None else camera_photos_dir()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        _run(runner, ["apt-get", "download", *PACKAGES], work)
        versions = {}
        for deb in sorted(work.glob("*.deb")):
            _run(runner, ["dpkg", "-x", deb.name, "root"], work)
            package, version = deb.stem.split("_")[:2]
            versions[package] = version
        missing = [p.path for p in CAMERA_PHOTOS if not (work / "root" / p.path).is_file()]
        if missing:
            raise ForensixError(f"the downloaded packages lack {missing}; the package versions changed, "
                                "so update forensix.data.camera_photos.CAMERA_PHOTOS")
        staging = dest.with_name(dest.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for photo in CAMERA_PHOTOS:
            shutil.copy2(work / "root" / photo.path, staging / Path(photo.path).name)
        for package in PACKAGES:
            notice = work / "root" / "usr/share/doc" / package / "copyright"
            if notice.is_file():
                shutil.copy2(notice, staging / f"{package}.copyright")
        records = [{**asdict(p), "file": Path(p.path).name, "version": versions.get(p.package)} for p in CAMERA_PHOTOS]
        (staging / "LICENSES.json").write_text(json.dumps(records, indent=2, ensure_ascii=False) + "\n")
        shutil.rmtree(dest, ignore_errors=True)
        staging.rename(dest)
    return dest


def camera_photos(path: str | Path | None = None) -> dict | None:
    """The fetched photos as ``{"debian:<stem>": array}`` (downscaled to 1024 px), or ``None`` if never fetched.

    Only files recorded in ``LICENSES.json`` are read, so a photo is never used without its licence.
    """
    root = Path(path) if path is not None else camera_photos_dir()
    licences = root / "LICENSES.json"
    if not licences.is_file():
        return None
    listed = {r["file"] for r in json.loads(licences.read_text())}
    folder = FolderPhotos(root)
    return {"debian:" + Path(name).stem: folder[name] for name in folder if name in listed}


__all__ = ["CAMERA_PHOTOS", "PACKAGES", "CameraPhoto", "camera_photos", "camera_photos_dir", "fetch_camera_photos"]
