"""Training faults: SIGKILL during checkpoint writes, exact resume, full disks and unwritable output dirs.

Killed runs are real subprocesses (tiny preset, batch 1, a checkpoint every step). All of them are
started together by one module fixture and import torch while the uninterrupted reference run trains.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from forensix.checkpoint import read_checkpoint, verify_checkpoint
from forensix.errors import TrainingError

STEPS = 3  # every run, killed or not, is configured for this many steps
KILL_AT_CHECKPOINT = 2  # the kill lands while the checkpoint of this step is being written

CHILD = textwrap.dedent(
    """
    import os, sys, time
    os.environ["HF_HUB_OFFLINE"] = "1"
    mode, out = sys.argv[1], sys.argv[2]
    import forensix.checkpoint as ck
    from forensix.data.datasets import SyntheticForgeryDataset
    from forensix.models import ForensixModel
    from forensix.train.loop import TrainConfig, train_stage

    real_replace, real_save = os.replace, ck.save_file
    if mode == "window":  # stop right after the old checkpoint was moved aside, before the new one moves in
        def replace(src, dst):
            real_replace(src, dst)
            if ".old-" in str(dst):
                print("IN_WINDOW", flush=True)
                time.sleep(300)
        ck.os.replace = replace
    else:  # a slow writer, so that a kill at a random time lands inside write_checkpoint
        def save_file(*args, **kwargs):
            print("WRITING", flush=True)
            time.sleep(0.15)
            return real_save(*args, **kwargs)
        ck.save_file = save_file

    def callback(event, record):
        if event == "step":
            print("STEP", record["step"], flush=True)

    model = ForensixModel.from_config("tiny")
    data = SyntheticForgeryDataset(stage=1, size=64, length=4, seed=0)
    while not os.path.exists(out + ".go"):  # imported and built; the parent says when to train
        time.sleep(0.05)
    train_stage(model, 1, data, TrainConfig(steps=%d, batch_size=1, checkpoint_every=1, seed=0), out_dir=out,
                progress=False, callbacks=[callback])
    print("DONE", flush=True)
    """
    % STEPS
)


def _config():
    from forensix.train.loop import TrainConfig

    return TrainConfig(steps=STEPS, batch_size=1, checkpoint_every=1, seed=0)


def _data():
    from forensix.data.datasets import SyntheticForgeryDataset

    return SyntheticForgeryDataset(stage=1, size=64, length=4, seed=0)


def _kill_when(proc: subprocess.Popen, ready, delay: float) -> int:
    """Read the child's lines until ``ready(lines)``; SIGKILL it ``delay`` s later. Returns the last step seen."""
    lines: list[str] = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.strip())
        if ready(lines):
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return max(int(x.split()[1]) for x in lines if x.startswith("STEP"))
    proc.kill()
    raise AssertionError(f"child never reached the kill point; output: {lines[-10:]}; stderr: {proc.stderr.read()[-2000:]}")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Killed runs {name: (out_dir, last step reported, checkpoint dir present after the kill)} and an
    uninterrupted in-process run (trained while the children import torch)."""
    from forensix.models import ForensixModel
    from forensix.train.loop import train_stage

    root = tmp_path_factory.mktemp("faults")
    script = root / "child.py"
    script.write_text(CHILD)
    rng = np.random.default_rng(7)
    plans = {"window": ("window", 0.0), "random": ("random", rng.uniform(0, 0.4))}
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    procs = {name: subprocess.Popen([sys.executable, str(script), mode, str(root / name)], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, env=env)
             for name, (mode, _) in plans.items()}
    killed = {}
    try:
        model = ForensixModel.from_config("tiny")
        result = train_stage(model, 1, _data(), _config(), out_dir=root / "straight", progress=False)
        for name, (mode, delay) in plans.items():
            (root / f"{name}.go").touch()
            def ready(lines, mode=mode):
                after = lines[lines.index(f"STEP {KILL_AT_CHECKPOINT}") + 1:] if f"STEP {KILL_AT_CHECKPOINT}" in lines else []
                return ("IN_WINDOW" in after) if mode == "window" else ("WRITING" in after)
            step = _kill_when(procs[name], ready, delay)
            killed[name] = (root / name, step, (root / name / "checkpoint").exists())
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return killed, (model, result)


def _losses(history):
    return [(h["step"], h["loss"]) for h in history]


@pytest.mark.parametrize("name", ["window", "random"])
def test_kill_during_checkpoint_write_leaves_a_valid_checkpoint(runs, name) -> None:
    out, killed_step, present = runs[0][name]
    if name == "window":
        assert not present, "the kill should have landed between the two renames"
    tensors, meta = read_checkpoint(out / "checkpoint")  # finishes an interrupted rename, then verifies
    assert verify_checkpoint(out / "checkpoint")
    step = meta["trainer"]["step"]
    assert killed_step - 1 <= step <= killed_step  # at most one checkpoint interval lost
    assert len(meta["trainer"]["history"]) == step


def test_resume_after_kill_equals_an_uninterrupted_run(runs) -> None:
    from forensix.models import ForensixModel
    from forensix.train.loop import train_stage

    out, killed_step, _ = runs[0]["window"]  # killed with no checkpoint at out/checkpoint at all
    starts = []
    model = ForensixModel.from_config("tiny")
    result = train_stage(model, 1, _data(), _config(), out_dir=out, resume=True, progress=False,
                         callbacks=[lambda event, record: starts.append(record["step"]) if event == "start" else None])
    assert starts == [killed_step - 1]  # resumed from the last complete checkpoint
    reference, reference_result = runs[1]
    # same seed, same loss curve (the first steps come from the killed process, the rest from this one)
    assert _losses(result.history) == _losses(reference_result.history)
    got, want = model.trainable_state(), reference.trainable_state()
    assert got.keys() == want.keys()
    assert all(torch.equal(got[k], want[k]) for k in want), "resumed weights differ from the uninterrupted run"


def test_full_disk_is_reported_before_training(tmp_path, monkeypatch) -> None:
    import shutil

    from forensix.models import ForensixModel
    from forensix.train.loop import train_stage

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10 << 30, 10 << 30, 1 << 20))
    steps = []
    with pytest.raises(TrainingError, match="only 1 MiB free"):
        train_stage(ForensixModel.from_config("tiny"), 1, _data(), _config(), out_dir=tmp_path / "run", progress=False,
                    callbacks=[lambda event, record: steps.append(event)])
    assert steps == []


def test_unwritable_out_dir_is_reported_before_training(tmp_path) -> None:
    from forensix.train.pipeline import train_stages

    (tmp_path / "file.txt").write_text("a file, not a folder")
    with pytest.raises(TrainingError, match="file.txt/run/stage1: cannot write here"):
        train_stages("tiny", tmp_path / "file.txt" / "run", stages=(1,), steps={1: 1}, progress=False)


def test_disk_full_mid_run_keeps_last_checkpoint(tmp_path, monkeypatch) -> None:
    import forensix.checkpoint as ck
    from forensix.models import ForensixModel
    from forensix.train.loop import TrainConfig, train_stage

    real_save, calls = ck.save_file, []

    def save_file(*args, **kwargs):
        calls.append(1)
        if len(calls) > 3:  # the first checkpoint (3 tensor files) fits, the second does not
            raise OSError(28, "No space left on device")
        return real_save(*args, **kwargs)

    monkeypatch.setattr(ck, "save_file", save_file)
    with pytest.raises(TrainingError, match="cannot write the step-2 checkpoint .*No space left"):
        train_stage(ForensixModel.from_config("tiny"), 1, _data(), TrainConfig(steps=2, batch_size=1, checkpoint_every=1),
                    out_dir=tmp_path, progress=False)
    assert read_checkpoint(tmp_path / "checkpoint")[1]["trainer"]["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]
