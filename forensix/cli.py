"""Command line: ``forensix demo | train | photos | analyze | explain | eval``.

Errors caused by input (a bad image path, an unknown preset, a tampered checkpoint) end the
command with one line on stderr and exit status 2; ``--debug`` shows the full traceback.

Example:
    $ forensix train --stage all --preset small --out runs/small
    $ forensix analyze photo.jpg --model runs/small/stage3/model --out out/
    $ forensix eval --data my_casia --layout casia --detector ela --out eval/ela
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from forensix.baselines import DETECTORS
from forensix.config import PRESETS, RECIPES
from forensix.errors import ForensixError
from forensix.weights import DEFAULT_MODEL

if TYPE_CHECKING:
    import pandas as pd

DEMO_EVAL_IMAGES = 24
RELEASED_PRESET = "small"  # the preset of the released model the demo report compares with
PHOTOS_HELP = ("a folder of your own photos to forge for training too, or 'camera' for the camera photos that "
               "`forensix photos` fetched (validation and test keep the bundled photos)")


def _stages(value: str) -> tuple[int, ...]:
    if value == "all":
        return (1, 2, 3)
    parts = value.split(",")
    if all(p in {"1", "2", "3"} for p in parts):
        return tuple(sorted({int(p) for p in parts}))
    raise argparse.ArgumentTypeError(f"--stage {value!r}: choose 1, 2, 3, a list such as 2,3, or all")


def _steps(values: Sequence[str] | None) -> dict[int, int]:
    """``["2=300", "3=80"]`` -> ``{2: 300, 3: 80}``."""
    steps = {}
    for value in values or []:
        stage, _, count = value.partition("=")
        if stage not in {"1", "2", "3"} or not count.isdigit() or int(count) < 1:
            raise ForensixError(f"--steps {value!r}: write STAGE=STEPS, e.g. --steps 2=300")
        steps[int(stage)] = int(count)
    return steps


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="forensix", description="Explainable image forgery detection and localization.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="train the small model through all stages and write an explained report")
    demo.add_argument("--out", default="runs/demo")
    demo.add_argument("--preset", default="small", choices=sorted(PRESETS))
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--steps", nargs="*", metavar="STAGE=N", help="override steps per stage, e.g. 2=300")
    demo.add_argument("--eval-images", type=int, default=DEMO_EVAL_IMAGES)
    demo.add_argument("--photos", default=None, help=PHOTOS_HELP)

    train = sub.add_parser("train", help="train one stage or all stages")
    train.add_argument("--stage", type=_stages, default=(1, 2, 3))
    train.add_argument("--preset", default="small", choices=sorted(PRESETS))
    train.add_argument("--out", required=True)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--steps", nargs="*", metavar="STAGE=N")
    train.add_argument("--recipe", default="default", choices=sorted(RECIPES),
                       help="steps per stage: the preset's (default) or the shipped model's (release; about 1.5 hours on 2 cores)")
    train.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    train.add_argument("--photos", default=None, help=PHOTOS_HELP)
    train.add_argument("--init", default=None, metavar="MODEL",
                       help="warm-start from a model directory or released name (e.g. forensix-small with --stage 2,3)")

    photos = sub.add_parser("photos", help="fetch the camera photographs for training once (Debian packages, licences recorded)")
    photos.add_argument("--out", default=None, help="where to put them (default: the forensix cache)")

    analyze = sub.add_parser("analyze", help="explain one image: text, p_fake, mask PNG, HTML report")
    analyze.add_argument("image")
    analyze.add_argument("--model", default=DEFAULT_MODEL,
                         help=f"a directory written by save_pretrained / forensix train, or a released name (default {DEFAULT_MODEL})")
    analyze.add_argument("--question", default=None)
    analyze.add_argument("--out", default="out")

    explain = sub.add_parser("explain", help="analyze + ground every explanation token; HTML with heatmaps")
    explain.add_argument("image")
    explain.add_argument("--model", default=DEFAULT_MODEL, help=f"a model directory or a released name (default {DEFAULT_MODEL})")
    explain.add_argument("--mask", default=None, help="ground-truth mask to score the grounding against")
    explain.add_argument("--out", default="out")

    evaluate = sub.add_parser("eval", help="score a detector on a dataset (pixel and image metrics, HTML report)")
    evaluate.add_argument("--data", default=None, help="dataset folder or manifest (not needed for synthetic)")
    evaluate.add_argument("--layout", required=True,
                          choices=["casia", "columbia", "coverage", "imd2020", "manifest", "synthetic"])
    evaluate.add_argument("--detector", required=True,
                          help=f"model ({DEFAULT_MODEL}), model:DIR, or a classical baseline: {', '.join(DETECTORS)}")
    evaluate.add_argument("--out", required=True)
    evaluate.add_argument("--n", type=int, default=200, help="synthetic layout: number of held-out images")
    evaluate.add_argument("--size", type=int, default=224, help="synthetic layout: image size")
    return parser


def cmd_train(args: argparse.Namespace) -> int:
    from forensix.train.pipeline import train_stages

    stages = args.stage
    _, results = train_stages(args.preset, args.out, stages=stages, seed=args.seed, steps=_steps(args.steps),
                              resume=args.resume, photos=args.photos, recipe=args.recipe, init=args.init)
    for stage, result in results.items():
        last = result.history[-1] if result.history else {}
        print(f"stage {stage}: {len(result.history)} steps, final loss {last.get('loss', float('nan')):.4f}")
    print(f"model: {Path(args.out) / f'stage{stages[-1]}' / 'model'}")
    return 0


def cmd_photos(args: argparse.Namespace) -> int:
    from forensix.data.camera_photos import CAMERA_PHOTOS, fetch_camera_photos

    where = fetch_camera_photos(args.out)
    print(f"{len(CAMERA_PHOTOS)} camera photos with their licences in {where}; train with --photos camera")
    return 0


def _load_model(path: str):
    from forensix.models import ForensixModel

    return ForensixModel.from_pretrained(path)


def cmd_analyze(args: argparse.Namespace) -> int:
    from forensix.data.io import read_image, write_mask
    from forensix.viz.report import ReportItem, write_report

    image = read_image(args.image)
    model = _load_model(args.model)
    analysis = model.analyze(image, args.question, capture_attention=False)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(args.image).stem
    write_mask(out / f"{stem}_mask.png", analysis.mask)
    report = write_report([ReportItem(analysis)], out / f"{stem}_report.html", title=f"forensix analysis of {stem}")
    (out / f"{stem}_analysis.json").write_text(json.dumps(analysis.to_dict(), indent=1))
    print(analysis.text)
    print(f"p_fake = {analysis.p_fake:.4f}")
    print(f"mask: {out / f'{stem}_mask.png'}  report: {report}")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from forensix.data.io import read_image, read_mask
    from forensix.explain.grounding import ground
    from forensix.viz.report import ReportItem, write_report

    image = read_image(args.image)
    gt = read_mask(args.mask, shape=image.shape[:2]) if args.mask else None
    model = _load_model(args.model)
    analysis = model.analyze(image)
    grounding = ground(analysis)
    out = Path(args.out)
    stem = Path(args.image).stem
    tables = []
    if gt is not None:
        tables.append(("grounding against the given mask", grounding.evaluate(gt).to_html(float_format="%.3f")))
    report = write_report([ReportItem(analysis, gt_mask=gt, grounding=grounding)], out / f"{stem}_explain.html",
                          title=f"forensix explanation of {stem}", tables=tables)
    print(analysis.text)
    print(f"p_fake = {analysis.p_fake:.4f}  report: {report}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from forensix.eval.detectors import run_eval

    extra = {"length": args.n, "size": args.size} if args.layout == "synthetic" else {}
    result = run_eval(args.data, args.layout, args.detector, args.out, dataset_kwargs=extra)
    for key, value in result.summary.items():
        print(f"{key}: {value}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from forensix.data.conversations import detection_answer
    from forensix.explain.grounding import ground
    from forensix.train.pipeline import train_stages
    from forensix.eval.model_quality import SUMMARY_KEYS, evaluate_model
    from forensix.viz.report import ReportItem, write_report
    from forensix.viz.figures import training_curves

    started = time.perf_counter()
    out = Path(args.out)
    model, results = train_stages(args.preset, out, seed=args.seed, steps=_steps(args.steps), photos=args.photos)
    trained = time.perf_counter()
    quality = evaluate_model(model, n=args.eval_images, seed=1234)
    released = _released_model() if args.preset == RELEASED_PRESET else None
    released_quality = evaluate_model(released, n=args.eval_images, seed=1234) if released is not None else None
    rng = np.random.default_rng(0)
    forged = [i for i, s in enumerate(quality.samples) if s.record.is_fake][:5]
    authentic = [i for i, s in enumerate(quality.samples) if not s.record.is_fake][:2]
    items = []
    for i in forged + authentic:
        sample = quality.samples[i]
        with torch.no_grad():
            analysis = model.analyze(sample.image)
            alongside = [(f"released {DEFAULT_MODEL}", released.analyze(sample.image))] if released is not None else []
        items.append(ReportItem(analysis, gt_mask=sample.mask, reference=detection_answer(sample, rng), grounding=ground(analysis),
                                alongside=alongside))
    intervals = quality.intervals(seed=args.seed)
    rows = {"demo model": intervals}
    if released_quality is not None:
        rows[f"released {DEFAULT_MODEL}"] = released_quality.intervals(seed=args.seed)
    histories = {stage: result.history for stage, result in results.items()}
    validations = {stage: result.validations for stage, result in results.items()}
    intro = (f"Preset <b>{args.preset}</b>, seed {args.seed}: three training stages on synthetic forgeries, then "
             f"{quality.summary['n_images']} held-out images (photos and seeds never seen in training). "
             f"Training {trained - started:.0f} s, total {time.perf_counter() - started:.0f} s."
             + (f" Beside each analysis, the released model {DEFAULT_MODEL} (trained for longer with "
                "<code>--recipe release</code>) on the same image." if released is not None else ""))
    report = write_report(items, out / "report.html", title="forensix demo: explained forgery analysis", intro=intro,
                          figures=[("Training curves", training_curves(histories, validations=validations, backend="matplotlib"))],
                          tables=[("Held-out quality", _quality_table(rows))])
    spans = {k: [round(intervals.low[k], 4), round(intervals.high[k], 4)] for k in SUMMARY_KEYS}
    (out / "quality.json").write_text(json.dumps({**quality.summary, "interval_95": spans}, indent=1))
    for key in SUMMARY_KEYS:
        print(f"{key:>12}: {quality.summary[key]:.3f}  (95% interval {spans[key][0]:.3f} to {spans[key][1]:.3f})")
    if released_quality is not None:
        print(f"released {DEFAULT_MODEL}: " + ", ".join(f"{k} {released_quality.summary[k]:.3f}" for k in SUMMARY_KEYS))
    print(f"report: {report}")
    return 0


def _released_model():
    """The released model (shown beside a demo of its preset), or ``None`` when this checkout lacks its weights."""
    from forensix.errors import ModelNotAvailableError

    try:
        return _load_model(DEFAULT_MODEL).eval()
    except ModelNotAvailableError:
        return None


def _quality_table(rows: dict[str, pd.DataFrame]) -> str:
    """HTML table of held-out metrics, one row per model (:meth:`QualityResult.intervals`), 95% intervals below each."""
    first = next(iter(rows.values()))
    head = "".join(f"<th>{k}</th>" for k in first.index)
    body = ""
    for name, intervals in rows.items():
        values = "".join(f"<td>{v:.3f}</td>" for v in intervals.value)
        spans = "".join(f"<td>{low:.2f}–{high:.2f}</td>" for low, high in zip(intervals.low, intervals.high))
        body += f"<tr><th>{name}</th>{values}</tr><tr><th>95% interval</th>{spans}</tr>"
    return f"<table><tr><th></th>{head}</tr>{body}</table>"


COMMANDS = {"demo": cmd_demo, "train": cmd_train, "photos": cmd_photos, "analyze": cmd_analyze, "explain": cmd_explain,
            "eval": cmd_eval}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``forensix`` console script."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ForensixError as err:
        if args.debug:
            raise
        print(f"forensix {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"forensix {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
