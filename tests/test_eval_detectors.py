"""Evaluation harness: outputs, resume without recomputation, comparison table and figure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forensix.baselines import get_detector
from forensix.baselines.base import Localization
from forensix.errors import BadDatasetError, ForensixError
from forensix.eval.detectors import EvalResult, compare_detectors, comparison_figure, evaluate_detector


def _dataset(n: int = 6, size: int = 48, seed: int = 0) -> list[dict]:
    """Half forged by a shifted copy (mask: source and target), half authentic noise-textured images."""
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n):
        img = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        mask = None
        if i % 2 == 0:
            mask = np.zeros((size, size), np.uint8)
            img[28:44, 26:42] = img[4:20, 2:18]
            mask[28:44, 26:42] = 1
            mask[4:20, 2:18] = 1  # copy-move ground truth marks source and target
        items.append({"image": img, "mask": mask, "name": f"img{i}"})
    return items


class CountingOracle:
    """A detector that returns the ground truth it was given, and counts calls."""

    name = "oracle"

    def __init__(self, dataset: list[dict]) -> None:
        self.masks = {d["image"].tobytes(): d["mask"] for d in dataset}
        self.calls = 0

    def localize(self, image: np.ndarray) -> Localization:
        self.calls += 1
        m = self.masks[image.tobytes()]
        m = np.zeros(image.shape[:2], np.uint8) if m is None else m
        return Localization(m.astype(np.float32), m, float(m.any()))


def test_outputs_and_resume(tmp_path: Path) -> None:
    data = _dataset()
    det = CountingOracle(data)
    res = evaluate_detector(det, data, out_dir=tmp_path, progress=False)
    assert det.calls == 6
    assert {"summary.json", "rows.csv", "report.html", "rows.jsonl"} <= {p.name for p in tmp_path.iterdir()}
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["n_forged"] == 3 and s["pixel_f1"] == 1.0 and s["image_accuracy"] == 1.0 and s["image_auroc"] == 1.0
    rows = pd.read_csv(tmp_path / "rows.csv")
    assert list(rows.columns) == ["name", "is_fake", "score", "f1", "iou", "auroc", "f1_best", "iou_best", "seconds"]
    assert len(rows) == 6
    report = (tmp_path / "report.html").read_text()
    assert report.count("data:image/png;base64,") == 6  # 3 forged cases, in both best and worst
    assert "http://" not in report and "https://" not in report

    again = evaluate_detector(det, data, out_dir=tmp_path, progress=False)
    assert det.calls == 6  # nothing recomputed
    assert again.summary == res.summary
    pd.testing.assert_frame_equal(again.rows, res.rows)
    assert (tmp_path / "report.html").read_text().count("data:image/png;base64,") == 6

    extra = dict(_dataset(2, seed=5)[1], name="new")
    det.masks[extra["image"].tobytes()] = extra["mask"]
    evaluate_detector(det, [*data, extra],
                      out_dir=tmp_path, progress=False)
    assert det.calls == 7  # only the new image


def test_interrupted_run_resumes(tmp_path: Path) -> None:
    data = _dataset()

    class Failing(CountingOracle):
        def localize(self, image: np.ndarray) -> Localization:
            if self.calls == 3:
                raise KeyboardInterrupt
            return super().localize(image)

    det = Failing(data)
    with pytest.raises(KeyboardInterrupt):
        evaluate_detector(det, data, out_dir=tmp_path, progress=False)
    assert len((tmp_path / "rows.jsonl").read_text().splitlines()) == 3
    det2 = CountingOracle(data)
    res = evaluate_detector(det2, data, out_dir=tmp_path, progress=False)
    assert det2.calls == 3 and res.summary["n_images"] == 6


def test_wrong_detector_in_out_dir_and_duplicates(tmp_path: Path) -> None:
    data = _dataset(2)
    evaluate_detector(CountingOracle(data), data, out_dir=tmp_path, progress=False)
    with pytest.raises(ForensixError, match="resume=False"):
        evaluate_detector(get_detector("ela"), data, out_dir=tmp_path, progress=False)
    evaluate_detector(get_detector("ela"), data, out_dir=tmp_path, progress=False, resume=False)
    with pytest.raises(BadDatasetError, match="duplicate"):
        evaluate_detector(get_detector("ela"), [data[0], data[0]], progress=False)


def test_real_baselines_compare(tmp_path: Path) -> None:
    data = _dataset(4)
    results = {
        name: evaluate_detector(get_detector(name, min_votes=20) if name == "copy-move" else get_detector(name), data, progress=False)
        for name in ["copy-move", "ela"]
    }
    assert isinstance(results["ela"], EvalResult) and len(results["ela"].to_frame()) == 4
    table = compare_detectors(results)
    assert list(table.index) == ["copy-move", "ela"]
    assert {"pixel_f1", "pixel_iou", "pixel_auroc", "pixel_f1_best", "image_accuracy", "image_auroc"} <= set(table.columns)
    assert table.loc["copy-move", "pixel_f1"] > 0.8
    fig = comparison_figure(table)
    ax = fig.axes[0]
    assert ax.get_ylabel() == "score" and ax.get_xlabel() == "metric"
    assert len(ax.patches) == 2 * 7
    fig.savefig(tmp_path / "cmp.png")
