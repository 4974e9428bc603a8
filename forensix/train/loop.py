"""One training loop for every stage, on ``accelerate``.

Single process by default; ``accelerate launch -m forensix.cli train ...`` runs the same code on
several GPUs or with DeepSpeed. bf16 autocast on CUDA, gradient accumulation, gradient clipping,
cosine schedule with warmup, tqdm progress, callbacks, periodic validation, and checkpoints
(safetensors + JSON, written atomically) holding weights, optimizer, scheduler and RNG state, so
that a resumed run ends with exactly the weights of an uninterrupted one.

The batch of step ``k`` is a deterministic function of ``(seed, k)``, which is what makes exact
resume possible without replaying the data pipeline.

Example:
    >>> from forensix.models import ForensixModel
    >>> from forensix.data import SyntheticForgeryDataset
    >>> model = ForensixModel.from_config("tiny")
    >>> data = SyntheticForgeryDataset(stage=1, size=64, length=16)
    >>> result = train_stage(model, 1, data, TrainConfig(steps=2, batch_size=2), progress=False)
    >>> len(result.history)
    2
"""

from __future__ import annotations

import math
import numbers
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from forensix.checkpoint import read_checkpoint, recover_checkpoint, write_checkpoint
from forensix.errors import BadConfigError, TrainingError
from forensix.train.stages import StageSpec, get_stage

Callback = Callable[[str, dict[str, Any]], None]


@dataclass
class TrainConfig:
    """Optimisation settings of one stage run (``None`` fields take the stage's preset defaults).

    ``lm_every=k`` computes the language-model term on every ``k``-th step only (steps 0, k, 2k, ...), so
    the localizer sees ``k`` times more images for a little more time: on a CPU a step with the LM term takes
    about eight times one without it. Pieces that only the LM term reaches are not updated on the other steps. Under
    multi-GPU DDP (``accelerate launch``) keep ``lm_every=1``: DDP expects every trained parameter in every step.
    """

    steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    warmup: float | None = None
    grad_accum: int | None = None
    lm_subbatch: int | None = None
    lm_every: int | None = None
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    val_every: int = 0
    val_batches: int = 4
    checkpoint_every: int = 0
    seed: int = 0

    def resolved(self, spec: StageSpec, preset: str) -> TrainConfig:
        defaults = spec.defaults.get(preset) or spec.defaults["small"]
        values = asdict(self)
        for key in ("steps", "batch_size", "lr", "warmup", "grad_accum", "lm_subbatch", "lm_every"):
            if values[key] is None:
                values[key] = getattr(defaults, key)
        resolved = TrainConfig(**values)
        for key, low in (("steps", 0), ("batch_size", 1), ("grad_accum", 1), ("lm_every", 1), ("val_every", 0),
                         ("val_batches", 1), ("checkpoint_every", 0)):
            value = getattr(resolved, key)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
                raise BadConfigError(f"TrainConfig.{key}={value!r}: must be an integer >= {low}")
        if resolved.lm_every > 1 and set(spec.losses) <= {"lm"}:
            raise BadConfigError(f"TrainConfig.lm_every={resolved.lm_every}: stage {spec.stage} trains only the "
                                 "language-model loss, so every step needs it; use lm_every=1")
        return resolved


@dataclass
class TrainResult:
    """Per-step records (``step``, ``loss``, each loss term, ``lr``, ``seconds``, ``data_seconds``) and validations."""

    stage: int
    history: list[dict[str, float]] = field(default_factory=list)
    validations: list[dict[str, float]] = field(default_factory=list)
    out_dir: Path | None = None

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(self.history)


def step_indices(seed: int, step: int, batch_size: int, n: int) -> list[int]:
    """Dataset indices of the batch at ``step``: a pure function of ``(seed, step)``."""
    rng = np.random.default_rng([seed, step])
    return rng.choice(n, size=batch_size, replace=n < batch_size).tolist()


def cosine_with_warmup(step: int, total: int, warmup: float) -> float:
    """Learning-rate factor: linear warmup over ``warmup * total`` steps, then cosine decay to 0.1."""
    warm = max(1, int(round(warmup * total)))
    if step < warm:
        return (step + 1) / warm
    progress = (step - warm) / max(1, total - warm)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def check_output_dir(path: Path, need_bytes: int = 50 << 20) -> None:
    """Fail before training when the output directory is not writable or the disk is nearly full."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".forensix-write-test"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as err:
        raise TrainingError(f"{path}: cannot write here ({err.strerror}); choose another --out directory") from err
    free = shutil.disk_usage(path).free
    if free < need_bytes:
        raise TrainingError(f"{path}: only {free >> 20} MiB free, need at least {need_bytes >> 20} MiB; free space or change --out")


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors = {f"{idx}.{key}": value for idx, slots in state["state"].items() for key, value in slots.items()
               if isinstance(value, torch.Tensor)}
    return tensors, {"param_groups": state["param_groups"]}


def _load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    slots: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        idx, name = key.split(".", 1)
        slots.setdefault(int(idx), {})[name] = value
    optimizer.load_state_dict({"state": slots, "param_groups": meta["param_groups"]})


def _rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors["cuda"] = torch.cuda.get_rng_state()
    np_state = np.random.get_state()
    meta = {"numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]], "python": _jsonable(random.getstate())}
    return tensors, meta


def _jsonable(value: Any) -> Any:
    return [_jsonable(v) for v in value] if isinstance(value, (tuple, list)) else value


def _tuplify(value: Any) -> Any:
    return tuple(_tuplify(v) for v in value) if isinstance(value, list) else value


def _restore_rng(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch"])
    if "cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["cuda"])
    kind, keys, *rest = meta["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), *rest))
    random.setstate(_tuplify(meta["python"]))


@torch.no_grad()
def validation_losses(model: nn.Module, stage: int | StageSpec, data, *, batches: int = 4, batch_size: int = 8,
                      seed: int = 0, lm_subbatch: int | None = None) -> dict[str, float]:
    """A stage's own losses on ``batches`` fixed batches of ``data``, in eval mode: ``val_loss`` (their sum)
    and ``val_<term>`` per loss term. Any model can be scored on any stage's objective, e.g. before and
    after the stage trained it. The batches depend only on ``seed``; every module's mode is restored.

    Example:
        >>> from forensix.models import ForensixModel
        >>> from forensix.data import SyntheticForgeryDataset
        >>> val = SyntheticForgeryDataset(stage=2, split="val", size=64, length=4)
        >>> sorted(validation_losses(ForensixModel.from_config("tiny"), 2, val, batches=1, batch_size=2))
        ['val_clue', 'val_lm', 'val_loss', 'val_mask']
    """
    from forensix.data.datasets import collate_samples

    spec = stage if isinstance(stage, StageSpec) else get_stage(stage)
    if len(data) == 0:
        raise TrainingError(f"stage {spec.stage}: the validation dataset is empty; pass a dataset with at least one sample")
    modes = {module: module.training for module in model.modules()}
    model.eval()
    sums: dict[str, float] = {}
    try:
        for i in range(batches):
            batch = collate_samples([data[j] for j in step_indices(seed, 10_000_000 + i, batch_size, len(data))])
            out = model(batch, losses=spec.losses, mask_source=spec.mask_source, lm_subbatch=lm_subbatch)
            for key, value in out["losses"].items():
                sums[key] = sums.get(key, 0.0) + value.item() / batches
    finally:
        for module, training in modes.items():
            module.training = training
    return {"val_loss": sum(sums.values()), **{f"val_{k}": v for k, v in sums.items()}}


#: TrainConfig fields that do not change the training trajectory (a resume may change them).
_NOT_TRAJECTORY = ("val_every", "val_batches", "checkpoint_every")


def run_identity(spec: StageSpec, config: TrainConfig, data) -> dict[str, Any]:
    """What a checkpoint must match to be resumed exactly: stage, optimisation settings and training data.

    Example:
        >>> from forensix.data.datasets import SyntheticForgeryDataset
        >>> data = SyntheticForgeryDataset(stage=1, size=32, length=4)
        >>> ident = run_identity(get_stage(1), TrainConfig(steps=2, batch_size=2, lr=1e-3), data)
        >>> ident["stage"], ident["config"]["lr"], ident["data"]["length"], "val_every" in ident["config"]
        (1, 0.001, 4, False)
    """
    return {"stage": spec.stage, "config": _trajectory(asdict(config)), "data": _describe_data(data)}


def _trajectory(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in settings.items() if k not in _NOT_TRAJECTORY}


def _describe_data(data) -> dict[str, Any]:
    described = {"type": type(data).__name__, "length": len(data)}
    described.update({k: getattr(data, k) for k in ("stage", "split", "size", "seed") if hasattr(data, k)})
    photos = getattr(getattr(getattr(data, "generator", None), "photos", None), "names", None)
    if photos is not None:
        described["photos"] = list(photos)
    return described


def _differences(saved: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r:.60} then, {b!r:.60} now")
    return out


class Trainer:
    """Runs one stage on a model; see :func:`train_stage` for the one-call form."""

    def __init__(self, model: nn.Module, spec: StageSpec, train_data, config: TrainConfig, *, val_data=None,
                 out_dir: str | Path | None = None, callbacks: Sequence[Callback] = (), progress: bool = True) -> None:
        from accelerate import Accelerator

        from forensix.data.datasets import collate_samples

        self.spec = spec
        self.config = config.resolved(spec, model.config.preset)
        self.collate = collate_samples
        self.train_data, self.val_data = train_data, val_data
        self.out_dir = Path(out_dir) if out_dir is not None else None
        if self.out_dir is not None:
            check_output_dir(self.out_dir)
        self.callbacks = list(callbacks)
        self.progress = progress
        if len(train_data) == 0:
            raise TrainingError(f"stage {spec.stage}: the training dataset is empty; pass a dataset with at least one sample")
        spec.apply(model)
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise TrainingError(f"stage {spec.stage}: nothing to train; check the stage's trainable pieces")
        mixed = "bf16" if torch.cuda.is_available() else "no"
        self.accelerator = Accelerator(mixed_precision=mixed, gradient_accumulation_steps=self.config.grad_accum, cpu=not torch.cuda.is_available())
        optimizer = torch.optim.AdamW(params, lr=self.config.lr, weight_decay=self.config.weight_decay)
        total = self.config.steps
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: cosine_with_warmup(s, total, self.config.warmup))
        self.model, self.optimizer, self.scheduler = self.accelerator.prepare(model, optimizer, scheduler)
        self.raw_model = model
        self.step = 0
        self.result = TrainResult(stage=spec.stage, out_dir=self.out_dir)

    @property
    def checkpoint_dir(self) -> Path | None:
        return self.out_dir / "checkpoint" if self.out_dir is not None else None

    def _emit(self, event: str, record: dict[str, Any]) -> None:
        for callback in self.callbacks:
            callback(event, record)

    def _batch(self, data, step: int, batch_size: int) -> dict[str, Any]:
        return self.collate([data[i] for i in step_indices(self.config.seed, step, batch_size, len(data))])

    def losses_at(self, step: int) -> tuple[str, ...]:
        """The loss terms of ``step``: the stage's, with the language-model term only on every ``lm_every``-th step."""
        if step % self.config.lm_every:
            return tuple(term for term in self.spec.losses if term != "lm")
        return self.spec.losses

    def train_step(self) -> dict[str, float]:
        """One optimisation step (``grad_accum`` micro-batches); returns its record."""
        self.spec.train_mode(self.raw_model)
        started = time.perf_counter()
        terms: dict[str, float] = {}
        data_seconds = 0.0
        for micro in range(self.config.grad_accum):
            t0 = time.perf_counter()
            batch = self._batch(self.train_data, self.step * self.config.grad_accum + micro, self.config.batch_size)
            data_seconds += time.perf_counter() - t0
            with self.accelerator.accumulate(self.model), self.accelerator.autocast():
                out = self.model(batch, losses=self.losses_at(self.step), mask_source=self.spec.mask_source,
                                 lm_subbatch=self.config.lm_subbatch)
                if not torch.isfinite(out["loss"]):
                    raise TrainingError(f"stage {self.spec.stage}, step {self.step}: loss is {out['loss'].item()}; lower the learning rate")
                self.accelerator.backward(out["loss"])
                if self.accelerator.sync_gradients:
                    self.accelerator.clip_grad_norm_(self.model.parameters(), self.config.clip_norm)
                self.optimizer.step()
                self.scheduler.step()  # the prepared scheduler only advances on synced steps
                self.optimizer.zero_grad(set_to_none=True)
            for key, value in out["losses"].items():
                terms[key] = terms.get(key, 0.0) + value.item() / self.config.grad_accum
        record = {"step": self.step + 1, "loss": sum(terms.values()), **terms,
                  "lr": self.scheduler.get_last_lr()[0], "seconds": time.perf_counter() - started,
                  "data_seconds": data_seconds}
        self.step += 1
        return record

    def validate(self) -> dict[str, float]:
        """Mean losses over ``val_batches`` fixed validation batches (:func:`validation_losses`)."""
        c = self.config
        losses = validation_losses(self.raw_model, self.spec, self.val_data, batches=c.val_batches,
                                   batch_size=c.batch_size, seed=c.seed, lm_subbatch=c.lm_subbatch)
        return {"step": self.step, **losses}

    def _record_validation(self) -> None:
        val = self.validate()
        self.result.validations.append(val)
        self._emit("validation", val)

    def save_checkpoint(self) -> Path:
        """Weights, optimizer, scheduler, RNG and history at the current step, atomically."""
        opt_tensors, opt_meta = _optimizer_tensors(self.optimizer)
        rng_tensors, rng_meta = _rng_state()
        state = {k: v for k, v in self.raw_model.state_dict().items() if k in self.raw_model.trainable_state()}
        try:
            return write_checkpoint(
                self.checkpoint_dir,
                tensors={"model": state, "optimizer": opt_tensors, "rng": rng_tensors},
                meta={"trainer": {"step": self.step, "stage": self.spec.stage, "config": asdict(self.config),
                                  "data": _describe_data(self.train_data),
                                  "scheduler": self.scheduler.state_dict(), "optimizer": opt_meta, "rng": rng_meta,
                                  "history": self.result.history, "validations": self.result.validations}},
            )
        except OSError as err:  # the previous checkpoint is left intact by write_checkpoint
            raise TrainingError(f"{self.checkpoint_dir}: cannot write the step-{self.step} checkpoint ({err.strerror or err}); "
                                "free disk space or choose another --out, then rerun with --resume") from err

    def load_checkpoint(self) -> bool:
        """Restore the latest checkpoint if there is one; returns whether it did."""
        if self.checkpoint_dir is None:
            return False
        recover_checkpoint(self.checkpoint_dir)  # a crash between the two renames of write_checkpoint
        if not self.checkpoint_dir.exists():
            return False
        tensors, meta = read_checkpoint(self.checkpoint_dir)
        info = meta["trainer"]
        if info["stage"] != self.spec.stage:
            raise TrainingError(f"{self.checkpoint_dir}: checkpoint of stage {info['stage']}, not {self.spec.stage}")
        differences = []
        if "data" in info:  # absent in checkpoints from before forensix recorded the training data
            config = {"lm_every": 1, **info["config"]}  # checkpoints from before lm_every had the LM term every step
            saved = {"stage": info["stage"], "config": _trajectory(config), "data": info["data"]}
            differences = _differences(saved, run_identity(self.spec, self.config, self.train_data))
        if differences:
            raise TrainingError(
                f"{self.checkpoint_dir}: this checkpoint comes from a run with other settings or data "
                f"({'; '.join(differences)}), so resuming would not continue that run; rerun with the same "
                "settings and photos, or start over without --resume (delete that checkpoint folder)")
        self.raw_model.load_state_dict(tensors["model"], strict=False)
        _load_optimizer(self.optimizer, tensors["optimizer"], info["optimizer"])
        self.scheduler.load_state_dict(info["scheduler"])
        _restore_rng(tensors["rng"], info["rng"])
        self.step = info["step"]
        self.result.history = info["history"]
        self.result.validations = info["validations"]
        return True

    def run(self, resume: bool = False) -> TrainResult:
        """Train to ``steps`` (from the checkpoint when ``resume``), checkpointing on schedule and validating
        before the first step, every ``val_every`` steps and after the last."""
        from tqdm.auto import tqdm

        if resume:
            self.load_checkpoint()
        total = self.config.steps
        bar = tqdm(total=total, initial=self.step, desc=f"stage {self.spec.stage}", disable=not self.progress, leave=True)
        self._emit("start", {"stage": self.spec.stage, "step": self.step, "steps": total})
        validating = self.val_data is not None and self.config.val_every > 0
        if validating and self.step == 0:
            self._record_validation()  # where the stage starts from, so its effect shows in its own losses
        while self.step < total:
            record = self.train_step()
            self.result.history.append(record)
            bar.update(1)
            bar.set_postfix(loss=f"{record['loss']:.3f}")
            self._emit("step", record)
            if validating and (self.step % self.config.val_every == 0 or self.step == total):
                self._record_validation()
            if self.checkpoint_dir is not None and self.config.checkpoint_every and self.step % self.config.checkpoint_every == 0:
                self.save_checkpoint()
        bar.close()
        self._emit("end", {"stage": self.spec.stage, "step": self.step})
        return self.result


def train_stage(model: nn.Module, stage: int | StageSpec, train_data, config: TrainConfig | None = None, *,
                val_data=None, out_dir: str | Path | None = None, callbacks: Sequence[Callback] = (),
                resume: bool = False, progress: bool = True) -> TrainResult:
    """Train ``model`` through one stage; see the module docstring."""
    spec = stage if isinstance(stage, StageSpec) else get_stage(stage)
    trainer = Trainer(model, spec, train_data, config or TrainConfig(), val_data=val_data, out_dir=out_dir,
                      callbacks=callbacks, progress=progress)
    return trainer.run(resume=resume)


__all__ = ["Callback", "TrainConfig", "TrainResult", "Trainer", "check_output_dir", "cosine_with_warmup",
           "run_identity", "step_indices", "train_stage", "validation_losses"]
