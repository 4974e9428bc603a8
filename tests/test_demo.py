"""The demo path on the tiny preset: train all stages, evaluate held-out images, write the report."""

from __future__ import annotations

import json
import math

from forensix.cli import main
from forensix.eval.model_quality import SUMMARY_KEYS


def test_demo_writes_a_report_with_measured_quality(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--preset", "tiny", "--out", str(out), "--steps", "1=2", "2=2", "3=2", "--eval-images", "8"]) == 0
    report = (out / "report.html").read_text()
    assert "Held-out quality" in report and "Training curves" in report
    assert report.count("<img") >= 3 * 7, "every analysed image shows ground truth, prediction and probability"
    assert "grounding" in report and "<script" not in report and "src=\"http" not in report
    threshold = json.loads((out / "stage3" / "calibration.json").read_text())["mask_threshold"]
    assert f"prediction (probability ≥ {threshold:.2f})" in report, "the mask is shown at the calibrated threshold"
    quality = json.loads((out / "quality.json").read_text())
    assert set(SUMMARY_KEYS) <= set(quality) and quality["n_images"] == 8
    assert all(0.0 <= quality[k] <= 1.0 for k in SUMMARY_KEYS if not math.isnan(quality[k]))
    low, high = quality["interval_95"]["pixel_f1"]  # bootstrap over the held-out images
    assert low <= quality["pixel_f1"] + 1e-9 and quality["pixel_f1"] <= high + 1e-9
    assert "95% interval" in report
    printed = capsys.readouterr().out
    assert "report:" in printed and "pixel_f1" in printed

    # a second run reuses the finished stages instead of retraining
    stamp = (out / "stage3" / "model" / "model.safetensors").stat().st_mtime_ns
    assert main(["demo", "--preset", "tiny", "--out", str(out), "--steps", "1=2", "2=2", "3=2", "--eval-images", "8"]) == 0
    assert (out / "stage3" / "model" / "model.safetensors").stat().st_mtime_ns == stamp


def test_quality_metrics_use_held_out_photos():
    from forensix.data.sources import split_photo_names
    from forensix.eval.model_quality import held_out_samples

    names = split_photo_names()
    samples = held_out_samples(12, 64, seed=1234)
    sources = {s.record.source for s in samples} | {s.record.donor for s in samples if s.record.donor}
    assert not sources & set(names["train"]), "test images must not come from training photos"
    assert any(s.record.is_fake for s in samples) and any(not s.record.is_fake for s in samples)
