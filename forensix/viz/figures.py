"""Figure builders: return plotly (interactive) or matplotlib (static) figures, never display them.

Every builder takes ``backend="plotly"`` or ``"matplotlib"`` (the gallery and the token text
have their own defaults). A plotly figure built here remembers how to build its matplotlib
twin, so :func:`to_png` writes a static PNG of any figure without ``kaleido``/Chrome.

Example:
    >>> import numpy as np
    >>> img = np.zeros((32, 32, 3), np.uint8); gt = np.zeros((32, 32), np.uint8); gt[8:16, 8:16] = 1
    >>> fig = mask_overlay(img, pred_mask=gt, gt_mask=gt, backend="plotly")
    >>> [t.type for t in fig.data]
    ['image', 'contour', 'contour']
"""

from __future__ import annotations

import functools
import html
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forensix.errors import ForensixError
from forensix.inline import HEAT_COLORSCALE, overlay_mask, score_colour

__all__ = [
    "mask_overlay", "heatmap_overlay", "attention_grid", "token_attribution_text", "token_patch_matrix",
    "training_curves", "history_frame", "validation_frame", "metric_table", "roc_curves", "pr_curves", "forgery_gallery",
    "op_samples", "to_png", "GT_COLOR", "PRED_COLOR",
]

GT_COLOR = "#2ecc71"  # ground truth: green
PRED_COLOR = "#e74c3c"  # prediction: red
_LOSS_SKIP = ("step", "lr", "seconds", "data_seconds", "stage")


# ------------------------------------------------------------------------------------------ helpers


def _np(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x)


def _image(image: Any, name: str = "image") -> np.ndarray:
    arr = _np(image)
    if arr.ndim == 3 and arr.shape[0] == 3 and arr.shape[-1] != 3:  # CHW tensor
        arr = arr.transpose(1, 2, 0)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ForensixError(f"{name}: expected an H x W x 3 image, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0, 1) * 255).round().astype(np.uint8) if arr.max(initial=0) <= 1.0 else arr.clip(0, 255).astype(np.uint8)
    return np.array(arr, copy=True)  # writable: torch.from_numpy warns on read-only arrays


def _map(x: Any, shape: tuple[int, int], name: str) -> np.ndarray:
    arr = _np(x).astype(np.float32).squeeze()
    if arr.ndim != 2:
        raise ForensixError(f"{name}: expected an H x W map, got shape {arr.shape}")
    if arr.shape != shape:
        from PIL import Image

        arr = np.asarray(Image.fromarray(arr).resize((shape[1], shape[0]), Image.BILINEAR))
    return arr


def _check_backend(backend: str, allowed: tuple[str, ...] = ("plotly", "matplotlib")) -> None:
    if backend not in allowed:
        raise ForensixError(f"backend={backend!r}: choose one of {allowed}")


def _twin(fig: Any, builder: Any, *args: Any, **kwargs: Any) -> Any:
    """Attach the matplotlib twin builder to a plotly figure (used by :func:`to_png`)."""
    object.__setattr__(fig, "_forensix_twin", functools.partial(builder, *args, **{**kwargs, "backend": "matplotlib"}))
    return fig


def _mpl_figure(nrows: int = 1, ncols: int = 1, size: tuple[float, float] = (5, 4), **kw: Any):
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def _pixel_axes(ax: Any) -> None:
    ax.set_xlabel("x (px)")
    ax.set_ylabel("y (px)")


# ------------------------------------------------------------------------------------------ masks


def _gt_tint(image: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """``image`` with the ground-truth region (``gt >= 0.5``) tinted green (60 % image, 40 % GT_COLOR)."""
    shown = image.astype(np.float32)
    region = gt >= 0.5
    shown[region] = 0.6 * shown[region] + 0.4 * np.array([0x2E, 0xCC, 0x71], np.float32)
    return shown.clip(0, 255).astype(np.uint8)


def mask_overlay(
    image: Any, pred_mask: Any = None, gt_mask: Any = None, *, title: str = "Ground truth vs prediction",
    backend: str = "matplotlib", threshold: float = 0.5,
):
    """The image with the ground-truth mask (green, tinted + contour) and the prediction (red contour).

    ``pred_mask`` may be binary or probabilities (contoured at ``threshold``).

    Example:
        >>> img = np.zeros((16, 16, 3), np.uint8); m = np.zeros((16, 16), np.uint8); m[4:8, 4:8] = 1
        >>> mask_overlay(img, m, m).axes[0].get_title()
        'Ground truth vs prediction'
    """
    _check_backend(backend)
    img = _image(image)
    shape = img.shape[:2]
    pred = None if pred_mask is None else _map(pred_mask, shape, "pred_mask")
    gt = None if gt_mask is None else _map(gt_mask, shape, "gt_mask")
    if backend == "plotly":
        import plotly.graph_objects as go

        fig = go.Figure(go.Image(z=img if gt is None else _gt_tint(img, gt), name="image", hoverinfo="x+y"))
        for m, label, color, dash in ((gt, "ground truth", GT_COLOR, "solid"), (pred, "prediction", PRED_COLOR, "dash")):
            if m is not None:
                level = 0.5 if label == "ground truth" else threshold
                fig.add_trace(go.Contour(
                    z=m, name=label, showscale=False, showlegend=True, hoverinfo="skip",
                    contours=dict(start=level, end=level, size=1, coloring="none"),
                    line=dict(color=color, width=3, dash=dash),
                ))
        fig.update_layout(title=title, xaxis_title="x (px)", yaxis_title="y (px)", width=520, height=520,
                          legend=dict(orientation="h", y=-0.15))
        return _twin(fig, mask_overlay, image, pred_mask, gt_mask, title=title, threshold=threshold)
    from matplotlib.lines import Line2D

    fig, axes = _mpl_figure(size=(5, 5))
    ax = axes[0, 0]
    handles = []
    ax.imshow(img if gt is None else _gt_tint(img, gt))
    if gt is not None and gt.max() >= 0.5 > gt.min():
        ax.contour(gt, levels=[0.5], colors=[GT_COLOR], linewidths=2)
    if gt is not None:
        handles.append(Line2D([], [], color=GT_COLOR, lw=2, label="ground truth"))
    if pred is not None:
        if pred.max() >= threshold > pred.min():
            ax.contour(pred, levels=[threshold], colors=[PRED_COLOR], linewidths=2, linestyles="--")
        handles.append(Line2D([], [], color=PRED_COLOR, lw=2, ls="--", label=f"prediction (area {100 * (pred >= threshold).mean():.1f}%)"))
    if handles:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8, frameon=False)
    ax.set_title(title)
    _pixel_axes(ax)
    return fig


def heatmap_overlay(
    image: Any, heatmap: Any, mask: Any = None, *, title: str = "Heatmap", backend: str = "plotly",
    colorbar_title: str = "relevance", opacity: float = 0.55,
):
    """A heatmap (rollout, grounding, localisation) over the image, the true mask outlined in green.

    Example:
        >>> img = np.zeros((16, 16, 3), np.uint8)
        >>> [t.type for t in heatmap_overlay(img, np.random.rand(4, 4)).data]
        ['image', 'heatmap']
    """
    _check_backend(backend)
    img = _image(image)
    heat = _map(heatmap, img.shape[:2], "heatmap")
    gt = None if mask is None else _map(mask, img.shape[:2], "mask")
    if backend == "plotly":
        import plotly.graph_objects as go

        fig = go.Figure(go.Image(z=img, name="image", hoverinfo="skip"))
        fig.add_trace(go.Heatmap(z=heat, name="heatmap", colorscale=HEAT_COLORSCALE, opacity=opacity,
                                 colorbar=dict(title=dict(text=colorbar_title))))
        if gt is not None:
            fig.add_trace(go.Contour(z=gt, name="ground truth", showscale=False, showlegend=True, hoverinfo="skip",
                                     contours=dict(start=0.5, end=0.5, size=1, coloring="none"),
                                     line=dict(color=GT_COLOR, width=3)))
        fig.update_layout(title=title, xaxis_title="x (px)", yaxis_title="y (px)", width=560, height=500,
                          legend=dict(orientation="h", y=-0.15))
        fig.update_yaxes(autorange="reversed")
        return _twin(fig, heatmap_overlay, image, heatmap, mask, title=title, colorbar_title=colorbar_title, opacity=opacity)
    fig, axes = _mpl_figure(size=(5.6, 5))
    ax = axes[0, 0]
    ax.imshow(img)
    im = ax.imshow(heat, cmap=HEAT_COLORSCALE, alpha=opacity)
    fig.colorbar(im, ax=ax, label=colorbar_title, shrink=0.8)
    if gt is not None and gt.max() >= 0.5 > gt.min():
        ax.contour(gt, levels=[0.5], colors=[GT_COLOR], linewidths=2)
        from matplotlib.lines import Line2D

        ax.legend(handles=[Line2D([], [], color=GT_COLOR, lw=2, label="ground truth")], loc="upper center",
                  bbox_to_anchor=(0.5, -0.12), fontsize=8, frameon=False)
    ax.set_title(title)
    _pixel_axes(ax)
    return fig


# ------------------------------------------------------------------------------------------ attention


def _attention_maps(attentions: Any, query: int, n_prefix_tokens: int, grid: tuple[int, int] | None) -> np.ndarray:
    """``[layers, heads, gh, gw]``: row ``query`` of each layer/head, patch columns, reshaped."""
    layers = [_np(a) for a in (attentions if isinstance(attentions, (list, tuple)) else list(_np(attentions)))]
    if not layers:
        raise ForensixError("attentions: empty; pass one [heads, T, T] (or [1, heads, T, T]) array per layer")
    layers = [a[0] if a.ndim == 4 else a for a in layers]
    if any(a.ndim != 3 or a.shape[-1] != a.shape[-2] for a in layers):
        raise ForensixError(f"attentions: expected [heads, T, T] per layer, got {[a.shape for a in layers]}")
    t = layers[0].shape[-1]
    n = t - n_prefix_tokens
    if grid is None:
        side = int(round(np.sqrt(n)))
        if side * side != n:
            raise ForensixError(f"grid: {n} patch tokens are not a square; pass grid=(gh, gw)")
        grid = (side, side)
    if grid[0] * grid[1] != n:
        raise ForensixError(f"grid={grid}: does not hold the {n} patch tokens ({t} tokens - {n_prefix_tokens} prefix)")
    if not 0 <= query < t:
        raise ForensixError(f"query={query}: must lie in [0, {t - 1}]")
    return np.stack([a[:, query, n_prefix_tokens:].reshape(a.shape[0], *grid) for a in layers])


def attention_grid(
    attentions: Any, *, grid: tuple[int, int] | None = None, query: int = 0, n_prefix_tokens: int = 1,
    title: str = "Attention of the CLS token to each patch", backend: str = "plotly",
):
    """Layer x head grid of attention maps: row ``query`` (CLS) of each head, patch columns on the grid.

    ``attentions``: one ``[heads, T, T]`` (or ``[1, heads, T, T]``) array per layer, e.g.
    ``Analysis.vision_attention``.

    Example:
        >>> att = [np.full((2, 5, 5), 0.2) for _ in range(3)]
        >>> len(attention_grid(att).data)
        6
    """
    _check_backend(backend)
    maps = _attention_maps(attentions, query, n_prefix_tokens, grid)
    n_layers, n_heads = maps.shape[:2]
    vmin, vmax = float(maps.min()), float(maps.max())
    vmax = vmax if vmax > vmin else vmin + 1e-6
    if backend == "plotly":
        from plotly.subplots import make_subplots
        import plotly.graph_objects as go

        fig = make_subplots(rows=n_layers, cols=n_heads, horizontal_spacing=0.03, vertical_spacing=0.05,
                            subplot_titles=[f"layer {l}, head {h}" for l in range(n_layers) for h in range(n_heads)])
        for l in range(n_layers):
            for h in range(n_heads):
                fig.add_trace(go.Heatmap(z=maps[l, h], coloraxis="coloraxis", name=f"L{l} H{h}"), row=l + 1, col=h + 1)
        fig.update_yaxes(autorange="reversed", scaleanchor="x", title_text="patch row")
        fig.update_xaxes(title_text="patch column")
        fig.update_layout(title=title, coloraxis=dict(colorscale=HEAT_COLORSCALE, cmin=vmin, cmax=vmax, colorbar=dict(title=dict(text="attention"))),
                          width=max(420, 220 * n_heads), height=max(360, 200 * n_layers + 80))
        return _twin(fig, attention_grid, attentions, grid=grid, query=query, n_prefix_tokens=n_prefix_tokens, title=title)
    fig, axes = _mpl_figure(n_layers, n_heads, size=(2.4 * n_heads + 1.2, 2.3 * n_layers + 0.6))
    for l in range(n_layers):
        for h in range(n_heads):
            ax = axes[l, h]
            im = ax.imshow(maps[l, h], cmap=HEAT_COLORSCALE, vmin=vmin, vmax=vmax)
            ax.set_title(f"layer {l}, head {h}", fontsize=9)
            ax.set_xlabel("patch column", fontsize=8)
            ax.set_ylabel("patch row", fontsize=8)
            ax.tick_params(labelsize=7)
    fig.colorbar(im, ax=axes, label="attention", shrink=0.8)
    fig.suptitle(title)
    return fig


# ------------------------------------------------------------------------------------------ tokens


def token_attribution_text(tokens: Sequence[str], scores: Any, *, title: str = "Token attribution", backend: str = "html"):
    """Tokens on a red (positive) / blue (negative) background by score: IPython ``HTML`` or a matplotlib figure.

    Example:
        >>> token_attribution_text(["a", "b"], [1.0, -0.5]).data.count("<span title=")  # one per token
        2
    """
    _check_backend(backend, ("html", "matplotlib"))
    vals = _np(scores).astype(np.float64).ravel()
    if len(vals) != len(tokens):
        raise ForensixError(f"scores: {len(vals)} values for {len(tokens)} tokens; pass one score per token")
    vmax = float(np.nanmax(np.abs(vals))) if len(vals) else 0.0
    if backend == "html":
        from IPython.display import HTML

        spans = "".join(
            f'<span title="{s:.3g}" style="background:{score_colour(s, vmax)};border-radius:3px;padding:1px 2px;'
            f'margin:1px;white-space:pre">{html.escape(t)}</span>' for t, s in zip(tokens, vals)
        )
        out = HTML(f'<div style="font-family:monospace;line-height:1.9"><b>{html.escape(title)}</b>'
                   f' <span style="color:#777">(red +, blue −, max |score| {vmax:.3g})</span><br>{spans}</div>')
        object.__setattr__(out, "_forensix_twin", functools.partial(token_attribution_text, tokens, scores, title=title, backend="matplotlib"))
        return out
    import matplotlib.colors as mcolors
    from matplotlib.cm import ScalarMappable

    fig, axes = _mpl_figure(size=(8, 1.2 + 0.35 * (1 + len(tokens) // 12)))
    ax = axes[0, 0]
    ax.set_axis_off()
    x, y = 0.0, 1.0
    for t, s in zip(tokens, vals):
        label = t.replace("\n", "⏎") or "∅"
        ax.text(x, y, label, family="monospace", fontsize=10, va="top",
                bbox=dict(facecolor=mcolors.to_rgba(_rgba(score_colour(s, vmax))), edgecolor="none", pad=1.5))
        x += 0.012 * (len(label) + 2)
        if x > 0.95:
            x, y = 0.0, y - 0.3
    cmap = mcolors.LinearSegmentedColormap.from_list("attr", ["#3498db", "white", "#e74c3c"])
    fig.colorbar(ScalarMappable(mcolors.Normalize(-vmax or -1, vmax or 1), cmap), ax=ax, orientation="horizontal",
                 label="attribution score", shrink=0.5, pad=0.05)
    ax.set_title(title)
    return fig


def _rgba(css: str) -> tuple[float, float, float, float]:
    if "(" not in css:  # "transparent"
        return (0.0, 0.0, 0.0, 0.0)
    r, g, b, a = (float(v) for v in css[css.index("(") + 1 : -1].split(","))
    return (r / 255, g / 255, b / 255, a)


def token_patch_matrix(
    scores: Any, target_tokens: Sequence[str], input_tokens: Sequence[str] | None = None, *,
    title: str = "Token attribution", backend: str = "plotly",
):
    """Heatmap of attribution ``scores[targets, positions]``: generated tokens (rows) x inputs (columns).

    Example:
        >>> f = token_patch_matrix(np.ones((2, 3)), ["a", "a"], ["x", "y", "z"])
        >>> f.data[0].z.shape
        (2, 3)
    """
    _check_backend(backend)
    z = _np(scores).astype(np.float64)
    if z.ndim != 2 or z.shape[0] != len(target_tokens):
        raise ForensixError(f"scores: shape {z.shape} does not match {len(target_tokens)} target tokens; expected [targets, positions]")
    inputs = list(input_tokens) if input_tokens is not None else [str(i) for i in range(z.shape[1])]
    if len(inputs) != z.shape[1]:
        raise ForensixError(f"input_tokens: {len(inputs)} labels for {z.shape[1]} positions")
    rows = [f"{i}:{t!r}"[:24] for i, t in enumerate(target_tokens)]
    cols = [f"{i}:{t!r}"[:24] for i, t in enumerate(inputs)]
    if backend == "plotly":
        import plotly.graph_objects as go

        fig = go.Figure(go.Heatmap(z=z, x=cols, y=rows, colorscale="RdBu_r", zmid=0,
                                   colorbar=dict(title=dict(text="attribution"))))
        fig.update_layout(title=title, xaxis_title="input position (token)", yaxis_title="generated token",
                          width=max(500, 14 * len(cols) + 200), height=max(320, 22 * len(rows) + 160))
        fig.update_yaxes(autorange="reversed", type="category")
        fig.update_xaxes(type="category")
        return _twin(fig, token_patch_matrix, scores, target_tokens, input_tokens, title=title)
    fig, axes = _mpl_figure(size=(min(14, 2 + 0.25 * len(cols)), min(10, 1.5 + 0.3 * len(rows))))
    ax = axes[0, 0]
    vmax = float(np.nanmax(np.abs(z))) or 1.0
    im = ax.imshow(z, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto")
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    step = max(1, len(cols) // 40)
    ax.set_xticks(range(0, len(cols), step), cols[::step], rotation=90, fontsize=6)
    ax.set_xlabel("input position (token)")
    ax.set_ylabel("generated token")
    fig.colorbar(im, ax=ax, label="attribution")
    ax.set_title(title)
    return fig


# ------------------------------------------------------------------------------------------ training


def history_frame(histories: Any) -> pd.DataFrame:
    """Long frame ``stage, step, term, value`` from ``{stage: [record, ...]}``, a list of records or a frame.

    The total ``loss`` is kept only on steps that computed every loss term of their stage, so that it
    stays comparable along the curve (with ``lm_every`` > 1, most stage-2 steps skip the LM term).

    Example:
        >>> history_frame({1: [{"step": 1, "loss": 2.0, "lr": 0.1}]}).to_dict("records")
        [{'stage': '1', 'step': 1, 'term': 'loss', 'value': 2.0}]
        >>> steps = [{"step": 1, "loss": 3.0, "mask": 1.0, "lm": 2.0}, {"step": 2, "loss": 0.9, "mask": 0.9}]
        >>> history_frame({2: steps}).query("term == 'loss'").step.tolist()
        [1]
    """
    if isinstance(histories, pd.DataFrame):
        frame = histories.copy()
        if "stage" not in frame:
            frame["stage"] = "1"
    elif isinstance(histories, Mapping):
        parts = [pd.DataFrame(list(records)).assign(stage=str(stage)) for stage, records in histories.items() if len(records)]
        frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["stage", "step"])
    else:
        frame = pd.DataFrame(list(histories)).assign(stage="1")
    if "step" not in frame:
        frame["step"] = frame.groupby("stage").cumcount() + 1
    frame["stage"] = frame["stage"].astype(str)
    terms = [c for c in frame.columns if c not in _LOSS_SKIP and pd.api.types.is_numeric_dtype(frame[c])]
    parts = [t for t in terms if t != "loss"]
    if "loss" in terms and parts:  # a total over fewer terms (a step without the LM term) is not drawn
        in_stage = frame.groupby("stage")[parts].transform(lambda column: column.notna().any()).astype(bool)
        frame.loc[(frame[parts].isna() & in_stage).any(axis=1), "loss"] = np.nan
    long = frame.melt(id_vars=["stage", "step"], value_vars=terms, var_name="term", value_name="value").dropna()
    return long[["stage", "step", "term", "value"]].reset_index(drop=True)


def _stage_label(stage: Any) -> str:
    """``3`` -> ``'stage 3'``; names that already say so (``'stage3'``, a run folder) stay as they are."""
    return str(stage) if str(stage).startswith("stage") else f"stage {stage}"


def validation_frame(validations: Mapping[Any, Sequence[Mapping[str, float]]]) -> pd.DataFrame:
    """Long frame ``stage, step, term, value`` from ``{stage: [{"step": 0, "val_loss": ..., "val_lm": ...}]}``
    (the ``val_`` prefix dropped, so a validation term matches its training term).

    Example:
        >>> validation_frame({1: [{"step": 0, "val_loss": 3.0, "val_lm": 3.0}]}).term.tolist()
        ['loss', 'lm']
    """
    parts = []
    for stage, records in validations.items():
        for record in records:
            parts.extend({"stage": str(stage), "step": record["step"], "term": key[4:], "value": value}
                         for key, value in record.items() if key.startswith("val_"))
    return pd.DataFrame(parts, columns=["stage", "step", "term", "value"])


def training_curves(histories: Any, *, validations: Mapping[Any, Sequence[Mapping[str, float]]] | None = None,
                    title: str = "Training losses", backend: str = "plotly", log_y: bool = False):
    """One panel per stage, one line per loss term (total ``loss`` included) against the step; with
    ``validations`` (``TrainResult.validations`` per stage), each term's validation loss as dotted
    markers in the same colour, from before the first step to after the last.

    Example:
        >>> f = training_curves({1: [{"step": 1, "loss": 2.0, "lm": 2.0}, {"step": 2, "loss": 1.0, "lm": 1.0}]})
        >>> sorted(t.name for t in f.data)
        ['lm', 'loss']
        >>> f = training_curves({1: [{"step": 1, "loss": 2.0}]}, validations={1: [{"step": 0, "val_loss": 2.5}]})
        >>> [t.name for t in f.data]
        ['loss', 'loss (validation)']
    """
    _check_backend(backend)
    long = history_frame(histories)
    if long.empty:
        raise ForensixError("histories: no loss records; pass {stage: [{'step': 1, 'loss': ...}, ...]}")
    checks = validation_frame(validations or {})
    stages = list(dict.fromkeys(long["stage"]))
    terms = list(dict.fromkeys([*long["term"], *checks["term"]]))
    import matplotlib

    palette = [matplotlib.colors.to_hex(c) for c in matplotlib.colormaps["tab10"].colors]
    colours = {t: palette[i % len(palette)] for i, t in enumerate(terms)}
    if backend == "plotly":
        from plotly.subplots import make_subplots
        import plotly.graph_objects as go

        fig = make_subplots(rows=1, cols=len(stages), subplot_titles=[_stage_label(s) for s in stages], shared_yaxes=False)
        shown: set[str] = set()
        for col, stage in enumerate(stages, start=1):
            part, checked = long[long["stage"] == stage], checks[checks["stage"] == stage]
            for term in terms:
                for d, name, style in ((part[part["term"] == term], term, {}),
                                       (checked[checked["term"] == term], f"{term} (validation)", {"dash": "dot"})):
                    if len(d):
                        fig.add_trace(go.Scatter(x=d["step"], y=d["value"], mode="lines+markers" if style else "lines", name=name,
                                                 legendgroup=name, showlegend=name not in shown,
                                                 line=dict(color=colours[term], width=3 if term == "loss" else 1.5, **style)),
                                      row=1, col=col)
                        shown.add(name)
        fig.update_xaxes(title_text="step")
        fig.update_yaxes(title_text="loss", type="log" if log_y else "linear")
        fig.update_layout(title=title, width=max(520, 380 * len(stages)), height=420, legend_title_text="loss term")
        return _twin(fig, training_curves, histories, validations=validations, title=title, log_y=log_y)
    import matplotlib.lines
    import seaborn as sns

    fig, axes = _mpl_figure(1, len(stages), size=(4.2 * len(stages) + 1, 3.8))
    for i, stage in enumerate(stages):
        ax = axes[0, i]
        part = long[long["stage"] == stage]
        sns.lineplot(data=part, x="step", y="value", hue="term", palette=colours, ax=ax, legend=False)
        for term, d in checks[checks["stage"] == stage].groupby("term", sort=False):
            ax.plot(d["step"], d["value"], ls=":", marker="o", ms=4, color=colours[term])
        ax.set_title(_stage_label(stage))
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        if log_y:
            ax.set_yscale("log")
    handles = [matplotlib.lines.Line2D([], [], color=colours[t], label=t) for t in terms]  # every term of every stage
    if not checks.empty:
        handles.append(matplotlib.lines.Line2D([], [], color="#555", ls=":", marker="o", ms=4, label="validation"))
    fig.legend(handles=handles, title="loss term", loc="outside right center", frameon=False)
    fig.suptitle(title)
    return fig


# ------------------------------------------------------------------------------------------ evaluation


def metric_table(df: pd.DataFrame, *, title: str = "Metrics", backend: str = "plotly", digits: int = 3):
    """A table of a metrics frame (e.g. :func:`forensix.eval.detectors.compare_detectors`), numbers rounded.

    Example:
        >>> metric_table(pd.DataFrame({"f1": [0.5]}, index=["ela"])).data[0].type
        'table'
    """
    _check_backend(backend)
    if not isinstance(df, pd.DataFrame) or df.empty:
        raise ForensixError("df: pass a non-empty pandas DataFrame of metrics")
    shown = df.reset_index() if not isinstance(df.index, pd.RangeIndex) else df
    cells = [[f"{v:.{digits}f}" if isinstance(v, (float, np.floating)) else str(v) for v in shown[c]] for c in shown.columns]
    if backend == "plotly":
        import plotly.graph_objects as go

        fig = go.Figure(go.Table(header=dict(values=[f"<b>{c}</b>" for c in shown.columns], fill_color="#dfe6e9"),
                                 cells=dict(values=cells, fill_color="white")))
        fig.update_layout(title=title, width=max(420, 110 * len(shown.columns)), height=120 + 30 * len(shown))
        return _twin(fig, metric_table, df, title=title, digits=digits)
    fig, axes = _mpl_figure(size=(max(4, 1.4 * len(shown.columns)), 0.9 + 0.35 * (len(shown) + 1)))
    ax = axes[0, 0]
    ax.set_axis_off()
    table = ax.table(cellText=list(map(list, zip(*cells))), colLabels=[str(c) for c in shown.columns], loc="center", cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    for (r, _), cell in table.get_celld().items():
        if r == 0:
            cell.set_facecolor("#dfe6e9")
            cell.set_text_props(weight="bold")
    ax.set_title(title)
    return fig


def _as_series(scores: Any, labels: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    if not isinstance(scores, Mapping):
        scores = {"scores": scores}
    out = {}
    for name, s in scores.items():
        lab = labels[name] if isinstance(labels, Mapping) else labels
        s, lab = _np(s).astype(np.float64).ravel(), _np(lab).astype(int).ravel()
        if s.shape != lab.shape:
            raise ForensixError(f"scores[{name!r}]: {s.size} scores for {lab.size} labels")
        if lab.min(initial=0) < 0 or lab.max(initial=0) > 1 or len(set(lab.tolist())) < 2:
            raise ForensixError(f"labels for {name!r}: need both classes 0 (real) and 1 (fake)")
        out[str(name)] = (s, lab)
    return out


def _roc(s: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    from sklearn.metrics import roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(y, s)
    return fpr, tpr, float(roc_auc_score(y, s))


def _pr(s: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    from sklearn.metrics import average_precision_score, precision_recall_curve

    precision, recall, _ = precision_recall_curve(y, s)
    return recall, precision, float(average_precision_score(y, s))


def _curves(kind: str, scores: Any, labels: Any, title: str, backend: str):
    _check_backend(backend)
    series = _as_series(scores, labels)
    fn, xlab, ylab, stat = (_roc, "false positive rate", "true positive rate", "AUC") if kind == "roc" else (
        _pr, "recall", "precision", "AP")
    curves = {name: fn(s, y) for name, (s, y) in series.items()}
    prevalence = float(np.mean(next(iter(series.values()))[1]))
    chance = ([0, 1], [0, 1], "chance") if kind == "roc" else ([0, 1], [prevalence, prevalence], f"chance (prevalence {prevalence:.2f})")
    if backend == "plotly":
        import plotly.graph_objects as go

        fig = go.Figure()
        for name, (x, y, v) in curves.items():
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=f"{name} ({stat} {v:.3f})",
                                     line_shape="hv" if kind == "roc" else "linear"))
        fig.add_trace(go.Scatter(x=chance[0], y=chance[1], mode="lines", name=chance[2], line=dict(dash="dot", color="grey")))
        fig.update_layout(title=title, xaxis_title=xlab, yaxis_title=ylab, width=520, height=480,
                          xaxis_range=[0, 1], yaxis_range=[0, 1.02])
        return _twin(fig, _curves, kind, scores, labels, title)
    fig, axes = _mpl_figure(size=(5, 4.6))
    ax = axes[0, 0]
    for name, (x, y, v) in curves.items():
        ax.plot(x, y, drawstyle="steps-post" if kind == "roc" else "default", label=f"{name} ({stat} {v:.3f})")
    ax.plot(chance[0], chance[1], ls=":", color="grey", label=chance[2])
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(xlab)
    ax.set_ylabel(ylab)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right" if kind == "roc" else "lower left")
    return fig


def roc_curves(scores: Any, labels: Any, *, title: str = "ROC curve (image level)", backend: str = "plotly"):
    """ROC curves of one or several detectors: ``scores`` an array or ``{name: array}``, ``labels`` 0/1.

    Example:
        >>> f = roc_curves({"a": [0.1, 0.9, 0.4, 0.6]}, [0, 1, 0, 1])
        >>> f.data[0].name
        'a (AUC 1.000)'
    """
    return _curves("roc", scores, labels, title, backend)


def pr_curves(scores: Any, labels: Any, *, title: str = "Precision-recall curve (image level)", backend: str = "plotly"):
    """Precision-recall curves with average precision; same inputs as :func:`roc_curves`."""
    return _curves("pr", scores, labels, title, backend)


# ------------------------------------------------------------------------------------------ data


def op_samples(ops: Sequence[str] | None = None, *, size: int = 128, seed: int = 0, split: str = "val") -> list:
    """One synthetic forgery per op (and ``"authentic"``), from the bundled photos, deterministic."""
    from forensix.data import ALL_OPS, ForgeryGenerator

    ops = tuple(ops) if ops is not None else ALL_OPS + ("authentic",)
    gen = ForgeryGenerator(size=size, p_authentic=0.0, split=split, seed=seed)
    return [gen.sample(i, op=op) for i, op in enumerate(ops)]


def forgery_gallery(samples: Sequence[Any] | None = None, *, title: str = "Synthetic forgeries, one per operation",
                    seed: int = 0, size: int = 128, backend: str = "matplotlib", wrap: int = 48):
    """Op gallery: one row per sample, ``image | mask overlay | short description``.

    ``samples``: :class:`~forensix.data.Sample` s (default: :func:`op_samples`).

    Example:
        >>> len(forgery_gallery(op_samples(["splice"], size=32)).axes)
        3
    """
    _check_backend(backend)
    from forensix.data import describe

    samples = list(samples) if samples is not None else op_samples(size=size, seed=seed)
    if not samples:
        raise ForensixError("samples: empty; pass at least one Sample")
    rows = []
    for s in samples:
        rng = np.random.default_rng(seed)
        text = describe(s.record, s.mask, "full", rng)
        post = ", ".join(f"{p['op']} {p.get('quality', p.get('factor', p.get('sigma', '')))}" for p in s.record.postprocess) or "none"
        rows.append((s, f"{s.record.op} / {s.record.shape or '-'}", text, post))
    if backend == "plotly":
        from plotly.subplots import make_subplots
        import plotly.graph_objects as go

        fig = make_subplots(rows=len(rows), cols=2, subplot_titles=[t for _, label, _, _ in rows for t in (label, "mask (green)")],
                            horizontal_spacing=0.02, vertical_spacing=0.03)
        for r, (s, label, text, _) in enumerate(rows, start=1):
            fig.add_trace(go.Image(z=s.image, name=label), row=r, col=1)
            fig.add_trace(go.Image(z=_tint(s.image, s.mask), name="mask"), row=r, col=2)
            fig.update_xaxes(title_text="<br>".join(textwrap.wrap(text, 60)[:3]), title_font_size=9, row=r, col=2)
        fig.update_layout(title=title, width=560, height=300 * len(rows))
        return _twin(fig, forgery_gallery, samples, title=title, seed=seed, size=size, wrap=wrap)
    fig, axes = _mpl_figure(len(rows), 3, size=(10, 2.6 * len(rows)), width_ratios=[1, 1, 1.6])
    for r, (s, label, text, post) in enumerate(rows):
        axes[r, 0].imshow(s.image)
        axes[r, 0].set_title(f"forged: {label}" if s.record.is_fake else "authentic", fontsize=9)
        axes[r, 1].imshow(_tint(s.image, s.mask))
        axes[r, 1].set_title(f"mask (green), area {100 * s.mask.mean():.1f}%", fontsize=9)
        for ax in axes[r, :2]:
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(s.record.op, fontsize=11, weight="bold")
        axes[r, 2].set_axis_off()
        axes[r, 2].text(0, 0.95, textwrap.fill(text, wrap) + f"\n\npost-processing: {post}", va="top", fontsize=8, wrap=True)
    axes[0, 2].set_title("generated description", fontsize=9)
    fig.suptitle(title)
    return fig


def _tint(image: np.ndarray, mask: np.ndarray) -> np.ndarray:

    return overlay_mask(_image(image), mask, color=(0x2E, 0xCC, 0x71))


# ------------------------------------------------------------------------------------------ export


def to_png(fig: Any, path: str | Path, *, dpi: int = 110) -> Path:
    """Write a static PNG of any figure built here (matplotlib, plotly, seaborn grid, token HTML).

    Plotly figures use ``kaleido`` when it is installed and their matplotlib twin otherwise.

    Example:
        >>> import tempfile, os
        >>> p = to_png(roc_curves([0.1, 0.9], [0, 1]), os.path.join(tempfile.mkdtemp(), "roc.png"))
        >>> p.stat().st_size > 0
        True
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    twin = getattr(fig, "_forensix_twin", None)
    mpl_fig = getattr(fig, "figure", None) if not hasattr(fig, "savefig") else fig  # seaborn grids carry .figure
    if mpl_fig is not None and hasattr(mpl_fig, "savefig"):
        mpl_fig.savefig(path, dpi=dpi)
        return path
    if twin is not None:
        try:
            import kaleido  # noqa: F401
        except ImportError:
            twin().savefig(path, dpi=dpi)
            return path
    if hasattr(fig, "write_image"):
        try:
            fig.write_image(str(path))
            return path
        except Exception as err:  # kaleido missing or no Chrome
            if twin is not None:
                twin().savefig(path, dpi=dpi)
                return path
            raise ForensixError(f"{path}: cannot render this plotly figure to PNG ({err}); install kaleido or build it with backend='matplotlib'") from err
    raise ForensixError(f"fig: cannot write a {type(fig).__name__} as PNG; pass a figure from forensix.viz.figures")
