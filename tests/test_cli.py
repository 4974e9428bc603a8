"""The command line, in-process: train -> analyze -> eval, and bad input as one line on stderr with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from forensix.cli import main
from forensix.errors import BadImageError


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", "--stage", "1", "--preset", "tiny", "--out", str(out), "--steps", "1=2"]) == 0
    return out / "stage1" / "model"


@pytest.fixture()
def image(tmp_path) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(path)
    return path


def test_train_writes_a_model(trained, capsys) -> None:
    assert (trained / "manifest.json").is_file() and (trained.parent / "done.json").is_file()
    assert len(json.loads((trained.parent / "history.json").read_text())["history"]) == 2


def test_train_continues_a_saved_model_over_a_list_of_stages(trained, tmp_path, capsys) -> None:
    out = tmp_path / "continued"
    assert main(["train", "--stage", "2,3", "--preset", "tiny", "--out", str(out), "--steps", "2=1", "3=1",
                 "--init", str(trained)]) == 0
    assert not (out / "stage1").exists() and (out / "stage3" / "done.json").is_file()
    assert json.loads((out / "stage2" / "warm_start.json").read_text())["fresh"] == []
    with pytest.raises(SystemExit):
        main(["train", "--stage", "2,4", "--preset", "tiny", "--out", str(out)])
    assert "--stage '2,4'" in capsys.readouterr().err


def test_analyze(trained, image, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["analyze", str(image), "--model", str(trained), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "p_fake = " in printed
    mask = np.asarray(Image.open(out / "photo_mask.png"))
    assert mask.shape == (48, 40) and set(np.unique(mask).tolist()) <= {0, 255}
    assert (out / "photo_report.html").stat().st_size > 0
    assert 0.0 <= json.loads((out / "photo_analysis.json").read_text())["p_fake"] <= 1.0


def test_eval_on_a_tiny_manifest(tmp_path, capsys) -> None:
    from forensix.data.datasets import SyntheticImageDataset
    from forensix.data.io import write_image, write_mask

    entries = []
    for item in SyntheticImageDataset(size=64, length=3, seed=0):
        write_image(tmp_path / f"{item['name']}.png", item["image"])
        mask = None
        if item["mask"] is not None:
            mask = f"{item['name']}_mask.png"
            write_mask(tmp_path / mask, item["mask"])
        entries.append([f"{item['name']}.png", mask])
    (tmp_path / "m.json").write_text(json.dumps(entries))
    code = main(["eval", "--data", str(tmp_path / "m.json"), "--layout", "manifest", "--detector", "ela",
                 "--out", str(tmp_path / "eval")])
    assert code == 0
    assert "ela" in capsys.readouterr().out


def _one_line_error(capsys, argv, part) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"forensix {argv[0]}: error: ") and part in lines[0], lines[0]


def test_bad_inputs_exit_2_with_one_line(tmp_path, image, capsys) -> None:
    (tmp_path / "file.txt").write_text("x")
    cases = [
        (["analyze", str(tmp_path / "missing.png"), "--model", str(tmp_path)], "missing.png: file not found"),
        (["analyze", str(image), "--model", str(tmp_path / "no-model")], "no-model: no checkpoint directory here"),
        (["train", "--stage", "1", "--preset", "tiny", "--out", str(tmp_path / "o"), "--steps", "1=x"], "--steps '1=x'"),
        (["train", "--stage", "1", "--preset", "tiny", "--out", str(tmp_path / "file.txt" / "run"), "--steps", "1=1"],
         "cannot write here"),
        (["eval", "--data", str(tmp_path), "--layout", "casia", "--detector", "ela", "--out", str(tmp_path / "e")],
         "no images found for layout 'casia'"),
        (["eval", "--layout", "synthetic", "--detector", "nope", "--out", str(tmp_path / "e")], "detector 'nope' is unknown"),
        (["train", "--stage", "1", "--preset", "tiny", "--out", str(tmp_path / "o"), "--photos", str(tmp_path / "none")],
         "none: not a folder"),
    ]
    for argv, part in cases:
        _one_line_error(capsys, argv, part)


def test_full_disk_exits_2(tmp_path, capsys, monkeypatch) -> None:
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(1 << 30, 1 << 30, 0))
    _one_line_error(capsys, ["train", "--stage", "1", "--preset", "tiny", "--out", str(tmp_path / "r"), "--steps", "1=1"],
                    "MiB free")


def test_debug_reraises(tmp_path) -> None:
    with pytest.raises(BadImageError, match="missing.png: file not found"):
        main(["--debug", "analyze", str(tmp_path / "missing.png"), "--model", str(tmp_path)])


def test_real_process_prints_one_line(tmp_path) -> None:
    """Nothing else (warnings, logging) reaches stderr in a real process; --debug is checked in-process above."""
    argv = [sys.executable, "-m", "forensix.cli", "analyze", str(tmp_path / "missing.png"), "--model", str(tmp_path)]
    plain = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert plain.returncode == 2 and plain.stderr.count("\n") == 1 and "Traceback" not in plain.stderr, plain.stderr


def test_eval_on_a_short_synthetic_split(tmp_path, capsys):
    from forensix.cli import main

    assert main(["eval", "--layout", "synthetic", "--detector", "ela", "--out", str(tmp_path / "ela"), "--n", "4", "--size", "64"]) == 0
    assert "pixel_f1" in capsys.readouterr().out
    assert (tmp_path / "ela" / "summary.json").is_file() and (tmp_path / "ela" / "report.html").is_file()


def test_eval_help_names_every_registered_detector(capsys):
    from forensix.baselines import DETECTORS

    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert all(name in text for name in DETECTORS)
