"""Evaluate any localizer (classical baseline or the model) on a dataset; compare detectors.

A dataset is any iterable of items ``{"image": uint8 H x W x 3, "mask": uint8 H x W or None,
"name": str}`` (optional ``"label"``: 1 forged / 0 authentic; default ``mask`` has a 1).
With ``out_dir`` the run is resumable: each finished image appends one JSON line to
``rows.jsonl`` (and its maps to ``maps/``); a restart skips names already there. At the end it
writes ``summary.json``, ``rows.csv`` and a self-contained ``report.html``.

Example:
    >>> import numpy as np
    >>> from forensix.baselines import get_detector
    >>> img = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    >>> mask = np.zeros((32, 32), np.uint8); mask[8:16, 8:16] = 1
    >>> res = evaluate_detector(get_detector("ela"), [{"image": img, "mask": mask, "name": "a"}], progress=False)
    >>> res.summary["n_forged"]
    1
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from forensix.baselines import get_detector
from forensix.baselines.base import Detector, Localization, check_image
from forensix.errors import BadDatasetError, BadMaskError, ForensixError
from forensix.eval.metrics import image_metrics, pixel_metrics
from forensix.inline import HEAT_COLORSCALE
from forensix.weights import DEFAULT_MODEL

__all__ = ["EvalResult", "evaluate_detector", "compare_detectors", "comparison_figure", "resolve_detector", "run_eval"]

ROW_COLUMNS = ["name", "is_fake", "score", "f1", "iou", "auroc", "f1_best", "iou_best", "seconds"]
SUMMARY_METRICS = [
    "pixel_f1",
    "pixel_iou",
    "pixel_auroc",
    "pixel_f1_best",
    "pixel_iou_best",
    "image_accuracy",
    "image_auroc",
]


@dataclass
class EvalResult:
    """Per-image rows and a summary of one detector on one dataset.

    Example:
        >>> r = EvalResult({"detector": "x"}, pd.DataFrame(columns=ROW_COLUMNS))
        >>> r.to_frame().shape[0]
        0
    """

    summary: dict[str, Any]
    rows: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        """The per-image rows (a copy)."""
        return self.rows.copy()


def _nan_to_none(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def summarize(rows: pd.DataFrame, detector: str) -> dict[str, Any]:
    """Summary over rows: pixel metrics averaged over forged images (nans skipped), image metrics over all.

    Example:
        >>> rows = pd.DataFrame([{"name": "a", "is_fake": 1, "score": 0.9, "f1": 0.5, "iou": 0.3,
        ...     "auroc": 0.8, "f1_best": 0.6, "iou_best": 0.4, "seconds": 0.1}])
        >>> summarize(rows, "ela")["pixel_f1"]
        0.5
    """
    fake = rows[rows["is_fake"] == 1]

    def mean(col: str) -> float:
        vals = fake[col].astype(float).to_numpy()
        return float(np.nanmean(vals)) if np.isfinite(vals).any() else math.nan

    img = image_metrics(rows["score"].astype(float).tolist(), rows["is_fake"].astype(int).tolist())
    return {
        "detector": detector,
        "n_images": int(len(rows)),
        "n_forged": int(len(fake)),
        "n_authentic": int(len(rows) - len(fake)),
        "pixel_f1": mean("f1"),
        "pixel_iou": mean("iou"),
        "pixel_auroc": mean("auroc"),
        "pixel_f1_best": mean("f1_best"),
        "pixel_iou_best": mean("iou_best"),
        "image_accuracy": img["accuracy"],
        "image_auroc": img["auroc"],
        "seconds_per_image": float(rows["seconds"].mean()) if len(rows) else math.nan,
    }


def _item_fields(item: Mapping[str, Any], index: int) -> tuple[str, np.ndarray, np.ndarray, int]:
    if not isinstance(item, Mapping) or "image" not in item:
        raise BadDatasetError(f"dataset item {index}: expected a dict with 'image', 'mask', 'name'; got {type(item).__name__}")
    name = str(item.get("name", index))
    image = check_image(item["image"], arg=f"dataset item {name!r} image")
    mask = item.get("mask")
    if mask is None:
        mask = np.zeros(image.shape[:2], np.uint8)
    mask = np.asarray(mask)
    if mask.shape != image.shape[:2]:
        raise BadMaskError(f"dataset item {name!r}: mask {mask.shape} does not match image {image.shape[:2]}")
    if not np.isin(mask, (0, 1)).all():
        raise BadMaskError(f"dataset item {name!r}: mask must hold only 0 and 1; binarise it with (mask > 0)")
    label = int(item["label"]) if item.get("label") is not None else int(mask.any())
    return name, image, mask.astype(np.uint8), label


def _read_jsonl(path: Path, detector: str) -> dict[str, dict[str, Any]]:
    done: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return done
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by an interrupted run: that image is evaluated again
        if row.get("detector") != detector:
            raise ForensixError(
                f"{path}: holds rows of detector {row.get('detector')!r}, not {detector!r}; "
                "use another out_dir or resume=False"
            )
        done[row["name"]] = {k: (math.nan if row.get(k) is None else row[k]) for k in ROW_COLUMNS}
    return done


def _map_path(out: Path, name: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return out / "maps" / f"{safe}.npz"


class _Cases:
    """Keeps the ``k`` best and ``k`` worst forged cases (by F1) seen so far, with their arrays."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.best: list[tuple[float, str, tuple]] = []
        self.worst: list[tuple[float, str, tuple]] = []

    def wants(self, f1: float) -> bool:
        return len(self.best) < self.k or len(self.worst) < self.k or f1 > self.best[-1][0] or f1 < self.worst[-1][0]

    def add(self, f1: float, name: str, arrays: tuple) -> None:
        self.best = sorted([*self.best, (f1, name, arrays)], key=lambda c: -c[0])[: self.k]
        self.worst = sorted([*self.worst, (f1, name, arrays)], key=lambda c: c[0])[: self.k]


def _png(image: np.ndarray, gt: np.ndarray, heat: np.ndarray, pred: np.ndarray, title: str) -> str:
    fig = Figure(figsize=(10, 2.8), dpi=80)
    axes = fig.subplots(1, 4)
    for ax, (arr, label, cmap) in zip(
        axes, [(image, "image", None), (gt, "ground truth", "gray"), (heat, "heatmap", HEAT_COLORSCALE), (pred, "predicted mask", "gray")]
    ):
        ax.imshow(arr, cmap=cmap, vmin=None if cmap is None else 0, vmax=None if cmap is None else 1)
        ax.set_title(label, fontsize=9)
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _report_html(summary: dict[str, Any], cases: _Cases) -> str:
    def section(title: str, items: list) -> str:
        imgs = "".join(
            f'<figure><img alt="{html.escape(n)}" src="data:image/png;base64,{_png(*a, f"{n}  F1={f:.3f}")}"/></figure>'
            for f, n, a in items
        )
        return f"<h2>{title}</h2>{imgs or '<p>no forged images</p>'}"

    table = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(f'{v:.4f}' if isinstance(v, float) else str(v))}</td></tr>"
        for k, v in summary.items()
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>forensix evaluation: "
        f"{html.escape(str(summary.get('detector')))}</title><style>body{{font-family:sans-serif;margin:2em}}"
        "table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:2px 8px;text-align:left}"
        "figure{margin:0.5em 0}img{max-width:100%}</style></head><body>"
        f"<h1>Evaluation of {html.escape(str(summary.get('detector')))}</h1><table>{table}</table>"
        f"{section('Best forged cases', cases.best)}{section('Worst forged cases', cases.worst)}</body></html>"
    )


def evaluate_detector(
    detector: Detector,
    dataset: Iterable[Mapping[str, Any]],
    *,
    out_dir: str | Path | None = None,
    progress: bool = True,
    resume: bool = True,
    n_cases: int = 4,
) -> EvalResult:
    """Run ``detector.localize`` on every item and score it.

    Args:
        detector: anything with ``name`` and ``localize(image) -> Localization``.
        dataset: iterable of ``{"image", "mask", "name"}`` dicts (``mask`` None = authentic).
        out_dir: where rows.jsonl, maps/, summary.json, rows.csv and report.html go (None: nothing written).
        progress: show a tqdm progress bar.
        resume: skip images already in ``out_dir/rows.jsonl`` (False starts over).
        n_cases: best and worst forged cases shown in the report.

    Example:
        >>> from forensix.baselines import get_detector
        >>> evaluate_detector(get_detector("noise"), [], progress=False).summary["n_images"]
        0
    """
    name = str(getattr(detector, "name", type(detector).__name__))
    out = Path(out_dir) if out_dir is not None else None
    done: dict[str, dict[str, Any]] = {}
    jsonl = None
    if out is not None:
        try:
            (out / "maps").mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ForensixError(f"out_dir {out}: cannot create it ({err}); choose a writable folder") from err
        if resume:
            done = _read_jsonl(out / "rows.jsonl", name)
        jsonl = (out / "rows.jsonl").open("a" if resume else "w")
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    cases = _Cases(n_cases)
    total = len(dataset) if hasattr(dataset, "__len__") else None
    try:
        for index, item in enumerate(tqdm(dataset, total=total, disable=not progress, desc=f"eval {name}")):
            key, image, gt, label = _item_fields(item, index)
            if key in seen:
                raise BadDatasetError(f"dataset item {index}: duplicate name {key!r}; names must be unique")
            seen.add(key)
            if key in done:
                row = done[key]
                if label == 1 and cases.wants(row["f1"]) and out is not None and _map_path(out, key).exists():
                    with np.load(_map_path(out, key)) as z:
                        cases.add(row["f1"], key, (image, gt, z["heatmap"].astype(np.float32) / 255.0, z["mask"]))
                rows.append(row)
                continue
            start = time.perf_counter()
            loc: Localization = detector.localize(image)
            seconds = time.perf_counter() - start
            heat = np.asarray(loc.heatmap, dtype=np.float32)
            pred = np.asarray(loc.mask, dtype=np.uint8)
            if heat.shape != gt.shape or pred.shape != gt.shape:
                raise ForensixError(f"{name}: localize returned maps {heat.shape}/{pred.shape} for image {key!r} of size {gt.shape}")
            m = pixel_metrics(heat, gt, pred_mask=pred)
            row = {"name": key, "is_fake": label, "score": float(loc.score), **{k: m[k] for k in ("f1", "iou", "auroc", "f1_best", "iou_best")}, "seconds": seconds}
            rows.append(row)
            if label == 1 and cases.wants(row["f1"]):
                cases.add(row["f1"], key, (image, gt, heat, pred))
            if jsonl is not None:
                np.savez_compressed(_map_path(out, key), heatmap=np.round(heat * 255).astype(np.uint8), mask=pred)
                jsonl.write(json.dumps({"detector": name, **{k: _nan_to_none(v) for k, v in row.items()}}) + "\n")
                jsonl.flush()
    finally:
        if jsonl is not None:
            jsonl.close()
    frame = pd.DataFrame(rows, columns=ROW_COLUMNS)
    summary = summarize(frame, name)
    if out is not None:
        (out / "summary.json").write_text(json.dumps({k: _nan_to_none(v) for k, v in summary.items()}, indent=2) + "\n")
        frame.to_csv(out / "rows.csv", index=False)
        (out / "report.html").write_text(_report_html(summary, cases))
    return EvalResult(summary, frame)


def compare_detectors(results: Mapping[str, EvalResult]) -> pd.DataFrame:
    """One table: a row per detector, a column per summary metric (plus seconds per image).

    Example:
        >>> r = EvalResult({"pixel_f1": 0.5, "image_auroc": 0.7}, pd.DataFrame())
        >>> float(compare_detectors({"ela": r}).loc["ela", "pixel_f1"])
        0.5
    """
    if not results:
        raise ForensixError("compare_detectors: results is empty; pass {name: EvalResult}")
    cols = [*SUMMARY_METRICS, "seconds_per_image"]
    table = pd.DataFrame({k: {c: r.summary.get(c, math.nan) for c in cols} for k, r in results.items()}).T
    table.index.name = "detector"
    return table.astype(float)


def comparison_figure(df: pd.DataFrame, metrics: list[str] | None = None) -> Figure:
    """Grouped bar chart: metrics on the x axis, one bar per detector (rows of ``df``).

    Example:
        >>> fig = comparison_figure(pd.DataFrame({"pixel_f1": [0.2, 0.4]}, index=["ela", "dct"]))
        >>> fig.axes[0].get_ylabel()
        'score'
    """
    metrics = [m for m in (metrics or SUMMARY_METRICS) if m in df.columns]
    if not metrics:
        raise ForensixError(f"comparison_figure: none of the metrics are columns of df ({list(df.columns)})")
    fig = Figure(figsize=(max(6.0, 1.2 * len(metrics) + 2), 4), dpi=100)
    ax = fig.subplots()
    width = 0.8 / max(len(df), 1)
    x = np.arange(len(metrics))
    for i, (det, row) in enumerate(df.iterrows()):
        ax.bar(x + (i - (len(df) - 1) / 2) * width, row[metrics].astype(float).fillna(0).to_numpy(), width, label=str(det))
    ax.set_xticks(x, [m.replace("_", " ") for m in metrics], rotation=20, ha="right")
    ax.set_xlabel("metric")
    ax.set_ylabel("score")
    ax.set_ylim(0, 1)
    ax.set_title("Detector comparison")
    ax.legend(title="detector", fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def resolve_detector(spec: str, **kwargs: Any) -> Detector:
    """A detector from a string: a baseline name (``"ela"``, ...), ``"model"`` (the released
    ``forensix-small``) or ``"model:DIR"`` (a model directory or a released name).

    Example:
        >>> resolve_detector("dct").name
        'dct'
    """
    if spec == "model" or spec.startswith("model:"):
        from forensix.models.forensix_model import ForensixModel

        return ForensixModel.from_pretrained(spec[len("model:") :] or DEFAULT_MODEL, **kwargs)
    return get_detector(spec, **kwargs)


def run_eval(
    data: str | None, layout: str, detector: str, out: str, *, progress: bool = True, resume: bool = True,
    dataset_kwargs: Mapping[str, Any] | None = None, **detector_kwargs: Any,
) -> EvalResult:
    """Load a dataset with ``forensix.data.datasets.load_dataset`` and evaluate ``detector`` into ``out``.

    ``dataset_kwargs`` go to the dataset (e.g. ``{"length": 48, "size": 224}`` for the synthetic layout),
    ``detector_kwargs`` to the detector.

    Example:
        >>> run_eval("data/columbia", "columbia", "ela", "runs/ela")  # doctest: +SKIP
    """
    from forensix.data.datasets import load_dataset

    return evaluate_detector(
        resolve_detector(detector, **detector_kwargs), load_dataset(data, layout, **(dataset_kwargs or {})),
        out_dir=out, progress=progress, resume=resume,
    )
