"""Train a model through the three stages on synthetic data, reusing stages already finished.

Layout of an output directory::

    OUT/stage1/model/        the model after stage 1 (save_pretrained), OUT/stage1/history.json, done.json
    OUT/stage1/checkpoint/   the latest mid-stage checkpoint (for --resume)
    OUT/stage2/...           and so on

A stage whose ``done.json`` matches the requested preset, the model's architecture, the stage's recipe (what it trains, its losses and
prompt format), its settings (seed, steps, batch size, learning rate, ...) and its training data (photos
included) is loaded instead of retrained, so running the demo twice costs one training. ``OUT/stageN/calibration.json`` records the
mask threshold chosen on the validation split (stage 2 on; :mod:`forensix.eval.calibration`).

Example:
    >>> import tempfile
    >>> model, results = train_stages("tiny", tempfile.mkdtemp(), stages=(1,), steps={1: 2}, progress=False)
    >>> results[1].history[-1]["step"]
    2
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from forensix.config import RECIPES, get_config
from forensix.data.camera_photos import camera_photos, camera_photos_dir
from forensix.data.datasets import SyntheticForgeryDataset
from forensix.data.sources import FolderPhotos, PhotoPool
from forensix.errors import ForensixError
from forensix.eval.calibration import calibrate_detection, calibrate_mask_threshold
from forensix.eval.clue_calibration import calibrate_clues
from forensix.models import ForensixModel
from forensix.models.persistence import warm_start
from forensix.train.clue_fit import CLUE_FIT_SAMPLES, fit_clue_head
from forensix.train.loop import Callback, TrainConfig, TrainResult, run_identity, train_stage
from forensix.train.stages import StageSpec, get_stage

#: The ``photos`` name of the fetched camera photographs.
CAMERA = "camera"

#: Number of distinct synthetic training images per stage and preset (cycled by the step sampler).
DATA_LENGTH = {"tiny": 32, "small": 4800, "paper": 20000}


def stage_dir(out: str | Path, stage: int) -> Path:
    return Path(out) / f"stage{stage}"


def _done_marker(preset: str, spec: StageSpec, config: TrainConfig, train: SyntheticForgeryDataset,
                 architecture: dict[str, Any]) -> dict[str, Any]:
    """What a finished stage must match to be reused: preset, the model's architecture when the run began
    (:meth:`~forensix.config.ForensixConfig.architecture`: a stage trained by another architecture is retrained), the stage's recipe (prompt format included), its
    optimisation settings and the data it trained on (the same identity a resumed checkpoint must match)."""
    marker = {"preset": preset, "model": architecture, "recipe": spec.recipe(), **run_identity(spec, config, train)}
    return json.loads(json.dumps(marker))  # as done.json reads back


def finished_stage(out: str | Path, stage: int, marker: dict[str, Any]) -> bool:
    """Whether ``stage`` finished in ``out`` with the same settings."""
    done = stage_dir(out, stage) / "done.json"
    return done.is_file() and json.loads(done.read_text()) == marker


def stage_datasets(
    preset: str, stage: int, size: int, seed: int, photos: Mapping[str, np.ndarray] | None = None,
) -> tuple[SyntheticForgeryDataset, SyntheticForgeryDataset]:
    """Train and validation data of a stage (validation photos are disjoint from training photos).

    ``photos`` (e.g. :class:`~forensix.data.sources.FolderPhotos`) are forged for training, besides the bundled
    training photos; validation and the held-out test split keep their bundled photos.
    """
    length = DATA_LENGTH.get(preset, DATA_LENGTH["small"])
    pool = PhotoPool.bundled("train", seed)
    pool = pool.with_photos(photos) if photos else pool
    train = SyntheticForgeryDataset(stage=stage, split="train", size=size, length=length, seed=seed, photos=pool)
    val = SyntheticForgeryDataset(stage=stage, split="val", size=size, length=max(8, length // 20), seed=seed)
    return train, val


#: The model settings the calibration chooses (saved with the model and in ``calibration.json``).
CALIBRATED_SETTINGS = ("mask_threshold", "mask_relative", "detection_scale", "detection_mask_weight", "detection_bias",
                       "clue_thresholds")
#: Bumped whenever the calibration changes: a finished stage calibrated by another version is recalibrated on load.
CALIBRATION_VERSION = 3


def _calibrated_settings(model: ForensixModel) -> dict[str, Any]:
    return {key: list(v) if isinstance(v := getattr(model.config, key), tuple) else v for key in CALIBRATED_SETTINGS}


def _calibrate(model: ForensixModel, val: SyntheticForgeryDataset, where: Path, detection: bool = False) -> bool:
    """Set the model's mask threshold and relative read-out (and with ``detection``, its p_fake calibration and
    per-clue thresholds) from the validation split;
    write ``calibration.json``; True if anything changed."""
    samples = [val.sample(i) for i in range(len(val))]
    calibration = calibrate_mask_threshold(model, samples)
    before = _calibrated_settings(model)
    model.config.mask_threshold, model.config.mask_relative = calibration.threshold, calibration.relative
    record = {**calibration.to_dict(), "split": val.split}
    if detection and len({s.record.is_fake for s in samples}) < 2:
        record["detection"] = "skipped: the validation split holds one class only"
    elif detection:
        fitted = calibrate_detection(model, samples)
        model.config.detection_scale, model.config.detection_bias = fitted.scale, fitted.bias
        model.config.detection_mask_weight = fitted.mask_weight
        record["detection"] = fitted.to_dict()
        clues = calibrate_clues(model, samples)
        model.config.clue_thresholds = clues.thresholds
        record["clues"] = clues.to_dict()
    record.update(version=CALIBRATION_VERSION, settings=_calibrated_settings(model))
    where.mkdir(parents=True, exist_ok=True)
    (where / "calibration.json").write_text(json.dumps(record, indent=1))
    return before != record["settings"]


def is_calibrated(model: ForensixModel, where: Path, detection: bool = False) -> bool:
    """Whether ``where/calibration.json`` was written by this calibration version for exactly these model settings
    (and, with ``detection``, holds the detection calibration), so loading the stage need not calibrate again."""
    path = where / "calibration.json"
    if not path.is_file():
        return False
    record = json.loads(path.read_text())
    if record.get("version") != CALIBRATION_VERSION or (detection and "detection" not in record):
        return False
    return record.get("settings") == _calibrated_settings(model)


def _load_finished(where: Path, val: SyntheticForgeryDataset, calibrate: bool, detection: bool) -> ForensixModel:
    """The model of a finished stage, calibrated (and saved again) if its calibration is missing or stale."""
    model = ForensixModel.from_pretrained(where / "model")
    if calibrate and not is_calibrated(model, where, detection) and _calibrate(model, val, where, detection=detection):
        model.save_pretrained(where / "model")
    return model


def training_photos(photos: str | Path | Mapping[str, np.ndarray] | None) -> Mapping[str, np.ndarray] | None:
    """Extra training photos from what a user names: ``None``, a mapping, a folder, or ``"camera"``
    (the camera photographs of :mod:`forensix.data.camera_photos`, fetched once by ``forensix photos``).

    Example:
        >>> training_photos(None) is None
        True
    """
    if isinstance(photos, str) and photos == CAMERA:
        found = camera_photos()
        if found is None:
            raise ForensixError(f"--photos camera: the camera photos were never fetched (looked in {camera_photos_dir()}); "
                                "run `forensix photos` (or `make photos`) once, or leave --photos out")
        return found
    return FolderPhotos(photos) if isinstance(photos, (str, Path)) else photos


def train_stages(
    preset: str = "small", out: str | Path = "runs/demo", *, stages: Iterable[int] = (1, 2, 3), seed: int = 0,
    steps: dict[int, int] | None = None, batch_size: dict[int, int] | None = None, resume: bool = False,
    progress: bool = True, callbacks: Sequence[Callback] = (), model: ForensixModel | None = None,
    photos: str | Path | Mapping[str, np.ndarray] | None = None, recipe: str = "default",
    init: str | Path | None = None,
) -> tuple[ForensixModel, dict[int, TrainResult]]:
    """Train stages in order; finished stages are loaded from ``out`` instead of retrained.

    ``photos``: a folder (or a mapping name -> image) of your own photos to forge for training as well, besides
    the bundled training photos, or ``"camera"`` for the fetched camera photos (:func:`training_photos`);
    validation and the held-out test split keep their bundled photos. ``recipe`` names the steps per stage
    (:data:`RECIPES`); ``steps`` overrides it stage by stage. ``init`` (a model directory or a released name)
    warm-starts the first stage that trains from that model's weights (:func:`~forensix.models.persistence.warm_start`):
    ``stages=(2, 3), init="forensix-small"`` continues the shipped model with today's recipe.

    From the stage that trains the localizer (stage 2) on, the mask threshold is calibrated on the
    stage's validation split and saved with the model (``OUT/stageN/calibration.json`` shows the choice);
    after the instruction-tuning stage (3), so are the detection calibration of ``p_fake`` and the per-clue
    thresholds. Stage 3 starts by refitting the clue head on the model's own predicted masks (``OUT/stage3/clue_fit.json``).
    """
    if recipe not in RECIPES:
        raise ForensixError(f"recipe {recipe!r}: choose one of {sorted(RECIPES)}")
    if init is not None and model is not None:
        raise ForensixError("train_stages: pass a model or init (the weights to warm-start from), not both")
    steps = {**RECIPES[recipe], **(steps or {})}
    config = get_config(preset, seed=seed)
    photos = training_photos(photos)
    results: dict[int, TrainResult] = {}
    architecture = (model.config if model is not None else config).architecture()
    localizer_trained = False
    finished: tuple | None = None  # the last finished stage, loaded only when a later stage trains or at the end
    for stage in stages:
        spec = get_stage(stage)
        train_config = TrainConfig(
            steps=steps.get(stage), batch_size=(batch_size or {}).get(stage), seed=seed,
            checkpoint_every=25, val_every=50,
        ).resolved(spec, preset)
        train, val = stage_datasets(preset, stage, config.image_size, seed, photos)
        marker = _done_marker(preset, spec, train_config, train, architecture)
        if init is not None:
            marker["init"] = str(init)
        where = stage_dir(out, stage)
        localizer_trained = localizer_trained or init is not None or "fl_expert" in spec.trainable
        if finished_stage(out, stage, marker):
            history = json.loads((where / "history.json").read_text())
            results[stage] = TrainResult(stage=stage, history=history["history"], validations=history["validations"], out_dir=where)
            finished = (where, val, localizer_trained, spec.lora)
            continue
        if finished is not None:
            model, finished = _load_finished(*finished), None
        if model is None:
            model = ForensixModel(config)
            if init is not None:
                (where / "warm_start.json").parent.mkdir(parents=True, exist_ok=True)
                (where / "warm_start.json").write_text(json.dumps({"init": str(init), **warm_start(model, init)}, indent=1))
        if spec.refit_clues:
            fit = fit_clue_head(model, [train.sample(i) for i in range(min(len(train), CLUE_FIT_SAMPLES.get(preset, 1536)))],
                                seed=seed)
            where.mkdir(parents=True, exist_ok=True)
            (where / "clue_fit.json").write_text(json.dumps(fit.to_dict(), indent=1))
        result = train_stage(model, spec, train, train_config, val_data=val, out_dir=where, callbacks=callbacks,
                             resume=resume, progress=progress)
        if localizer_trained:
            _calibrate(model, val, where, detection=spec.lora)
        model.save_pretrained(where / "model")
        (where / "history.json").write_text(json.dumps({"history": result.history, "validations": result.validations}))
        (where / "done.json").write_text(json.dumps(marker))
        results[stage] = result
    if finished is not None:
        model = _load_finished(*finished)
    if model is None:
        model = ForensixModel(config)
    return model.eval(), results


__all__ = ["CALIBRATION_VERSION", "CAMERA", "DATA_LENGTH", "finished_stage", "is_calibrated", "stage_datasets", "stage_dir", "train_stages", "training_photos"]
