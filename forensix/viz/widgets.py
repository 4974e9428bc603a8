"""Interactive explorers for Jupyter: ipywidgets controls over plotly figures (:class:`~forensix.viz.figure_pane.FigurePane`).

Each explorer is a class whose ``.widget`` is the ipywidgets container; the class displays as
that widget in Jupyter (and as a static HTML snapshot where no widget manager runs). Errors
raised inside a callback are shown in the widget's red error box (``.error``), never lost.

* :class:`DataExplorer`: op, region shape, post-processing, photo, seed -> image, mask, text.
* :class:`AttentionExplorer`: raw attention of one layer/head and rollout (fusion, discard, start).
* :class:`GroundingExplorer`: pick an explanation token; its heatmap vs the mask, pointing game, energy.
* :class:`StageWalkthrough`: train N steps of a stage with a live loss plot and sample predictions.
* :class:`PromptLab`: edit question, system prompt and clue prompt; compare two prompts.

Example:
    >>> ex = DataExplorer(size=64)
    >>> ex.op.value = "copy_move"
    >>> ex.sample.record.op
    'copy_move'
"""

from __future__ import annotations

import contextlib
import functools
import html
import threading
from collections.abc import Callable
from typing import Any

import ipywidgets as W
import numpy as np

from forensix.errors import ForensixError
from forensix.inline import HEAT_COLORSCALE, png_data_uri
from forensix.viz.figure_pane import FigurePane
from forensix.viz.figures import GT_COLOR, PRED_COLOR, _image, _map, _tint

__all__ = ["DataExplorer", "AttentionExplorer", "GroundingExplorer", "StageWalkthrough", "PromptLab"]


# ------------------------------------------------------------------------------------------ base


def _png_img(image: np.ndarray, width: int = 256) -> str:
    return f'<img src="{png_data_uri(image)}" style="width:{width}px;image-rendering:pixelated">'


# Top margin and title placement shared by every explorer figure: the title sits below the plotly
# toolbar (the modebar, about 30 px at the top right) and above the subplot titles.
_TOOLBAR_PX = 34


def _title(text: str) -> dict:
    return dict(text=text, x=0.5, xanchor="center", yref="container", y=1.0, yanchor="top", pad=dict(t=_TOOLBAR_PX))


def _colorbar(text: str) -> dict:
    """A colour bar whose label runs vertically to the right of its tick labels (never over them)."""
    return dict(title=dict(text=text, side="right"), thickness=14, len=0.85, outlinewidth=0)


def _image_figure(titles: list[str], traces: list[tuple[Any, int]] = (), *, title: str = "", width: int = 720,
                  height: int = 420, top: int = 100, right: int = 20):
    """A :class:`~forensix.viz.figure_pane.FigurePane` with one image panel per title (y axes reversed,
    equal aspect), built with its ``(trace, column)`` pairs and its layout in one go."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=len(titles), subplot_titles=titles, horizontal_spacing=0.08)
    for trace, col in traces:
        fig.add_trace(trace, row=1, col=col)
    fig.update_layout(width=width, height=height, title=_title(title), margin=dict(l=50, r=right, t=top, b=40),
                      legend=dict(orientation="h", y=-0.12))
    fig.update_xaxes(title_text="x (px)")
    fig.update_yaxes(title_text="y (px)", autorange="reversed")
    return FigurePane(fig)


def _contour(m: np.ndarray, name: str, color: str, dash: str = "solid"):
    import plotly.graph_objects as go

    return go.Contour(z=m, name=name, showscale=False, showlegend=True, hoverinfo="skip",
                      contours=dict(start=0.5, end=0.5, size=1, coloring="none"), line=dict(color=color, width=3, dash=dash))


class _Explorer:
    """Common plumbing: ``.widget``, an error box, a guarded-callback decorator, display delegation."""

    widget: W.Box

    def __init__(self) -> None:
        self.error = W.HTML(value="", layout=W.Layout(display="none"))
        self.last_error: BaseException | None = None

    def _show_error(self, err: BaseException | None) -> None:
        self.last_error = err
        if err is None:
            self.error.value, self.error.layout.display = "", "none"
            return
        self.error.value = (
            '<div style="background:#fdecea;border:1px solid #e74c3c;color:#922b21;padding:6px;border-radius:4px">'
            f"<b>{html.escape(type(err).__name__)}</b>: {html.escape(str(err))}</div>"
        )
        self.error.layout.display = None

    def _guarded(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap a callback: clear the error box, run, show any exception in the box."""

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                out = fn(*args, **kwargs)
            except Exception as err:  # shown to the user in the widget
                self._show_error(err)
                return None
            self._show_error(None)
            return out

        return run

    def _snapshot_html(self) -> str:
        return f"<i>{type(self).__name__}: run the notebook with a Jupyter kernel to use this widget.</i>"

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        bundle = self.widget._repr_mimebundle_(**kwargs) or {}
        bundle = dict(bundle[0] if isinstance(bundle, tuple) else bundle)
        bundle["text/html"] = self._snapshot_html()
        return bundle


# ------------------------------------------------------------------------------------------ data


class DataExplorer(_Explorer):
    """Synthetic forgeries, live: op, region shape, post-processing, photo and seed controls.

    Shows the forged image, the image with its mask, and the generated explanation text.
    ``.sample`` is the current :class:`~forensix.data.Sample`.
    """

    def __init__(self, *, size: int = 192, photo: str | None = None, op: str = "splice", seed: int = 0) -> None:
        super().__init__()
        from forensix.data import ALL_OPS, ALL_SHAPES, bundled_names

        self.size = int(size)
        names = list(bundled_names())
        self.op = W.Dropdown(options=list(ALL_OPS) + ["authentic"], value=op, description="op")
        self.shape = W.Dropdown(options=list(ALL_SHAPES), value="ellipse", description="shape")
        self.photo = W.Dropdown(options=names, value=photo or names[0], description="photo")
        self.seed = W.IntText(value=seed, description="seed")
        self.jpeg = W.IntSlider(value=0, min=0, max=100, description="JPEG q", tooltip="0 = no JPEG")
        self.resize = W.FloatSlider(value=1.0, min=0.3, max=1.0, step=0.05, description="resize", tooltip="1 = none")
        self.noise = W.FloatSlider(value=0.0, min=0.0, max=10.0, step=0.5, description="noise σ")
        self.granularity = W.ToggleButtons(options=["verdict", "location", "explanation", "full"], value="full", description="text")
        self.text = W.HTML()
        blank = np.zeros((self.size, self.size, 3), np.uint8)
        import plotly.graph_objects as go

        self.figure = _image_figure(["forged image", "mask (green)"],
                                    [(go.Image(z=blank, name="image"), 1), (go.Image(z=blank, name="mask overlay"), 2)],
                                    title="Synthetic forgery", height=440)
        self.sample = None
        self.update = self._guarded(self._update)
        for c in (self.op, self.shape, self.photo, self.seed, self.jpeg, self.resize, self.noise, self.granularity):
            c.observe(lambda change: self.update(), names="value")
        controls = W.HBox([W.VBox([self.op, self.shape, self.photo, self.seed]), W.VBox([self.jpeg, self.resize, self.noise])])
        self.widget = W.VBox([controls, self.granularity, self.error, self.figure.widget, self.text])
        self.update()

    def postprocess(self) -> list[dict[str, Any]]:
        """The post-processing chain the controls describe."""
        steps: list[dict[str, Any]] = []
        if self.resize.value < 1.0:
            steps.append({"op": "resize", "factor": float(self.resize.value)})
        if self.noise.value > 0:
            steps.append({"op": "noise", "sigma": float(self.noise.value), "seed": int(self.seed.value)})
        if self.jpeg.value > 0:
            steps.append({"op": "jpeg", "quality": int(self.jpeg.value)})
        return steps

    def _photo(self) -> np.ndarray:
        from PIL import Image

        from forensix.data import bundled_photo

        photo = bundled_photo(self.photo.value)
        h, w = photo.shape[:2]
        side = min(h, w)
        y0, x0 = (h - side) // 2, (w - side) // 2
        crop = Image.fromarray(photo[y0 : y0 + side, x0 : x0 + side])
        return np.asarray(crop.resize((self.size, self.size), Image.BILINEAR))

    def _update(self) -> None:
        from forensix.data import describe, forge

        if self.seed.value < 0:
            raise ForensixError(f"seed={self.seed.value}: must be 0 or more")
        donor = None
        if self.op.value == "splice":
            others = [n for n in self.photo.options if n != self.photo.value]
            donor_name = others[int(self.seed.value) % len(others)]
            from forensix.data import bundled_photo

            donor = bundled_photo(donor_name)
        sample = forge(self._photo(), self.op.value, int(self.seed.value), shape=self.shape.value, donor=donor,
                       postprocess=self.postprocess(), source=self.photo.value)
        self.sample = sample
        with self.figure.batch_update():
            self.figure.data[0].z = sample.image
            self.figure.data[1].z = _tint(sample.image, sample.mask)
            self.figure.layout.title.text = f"{sample.record.op} / {sample.record.shape or '-'} — mask area {100 * sample.mask.mean():.1f}%"
        text = describe(sample.record, sample.mask, self.granularity.value, np.random.default_rng(int(self.seed.value)))
        post = ", ".join(f"{p['op']}" for p in sample.record.postprocess) or "none"
        self.text.value = f"<p><b>Explanation:</b> {html.escape(text)}</p><p style='color:#777'>post-processing: {post}</p>"

    def _snapshot_html(self) -> str:
        if self.sample is None:
            return super()._snapshot_html()
        return (f'<div class="forensix-snapshot" style="display:flex;gap:8px">{_png_img(self.sample.image)}'
                f"{_png_img(_tint(self.sample.image, self.sample.mask))}<div style='max-width:360px'>{self.text.value}</div></div>")


# ------------------------------------------------------------------------------------------ attention


class AttentionExplorer(_Explorer):
    """Vision-encoder attention of one image: raw attention (layer, head) and attention rollout.

    Attentions are computed once; rollout is recomputed when head fusion, discard ratio or start
    layer change. ``.raw_map`` / ``.rollout_map`` hold the current pixel maps.
    """

    def __init__(self, model: Any, image: Any, *, gt_mask: Any = None) -> None:
        super().__init__()
        import plotly.graph_objects as go

        from forensix.explain.rollout import HEAD_FUSIONS, vision_attentions

        self.image = _image(image)
        self.gt_mask = gt_mask
        pixels, _ = model.preprocess(self.image)
        vision = model.vision
        self.attentions = vision_attentions(vision.model, (pixels - vision.mean) / vision.std)
        self.grid = (pixels.shape[-2] // vision.patch_size, pixels.shape[-1] // vision.patch_size)
        n_layers, n_heads = len(self.attentions), self.attentions[0].shape[1]
        self.n_prefix = self.attentions[0].shape[-1] - self.grid[0] * self.grid[1]
        self.layer = W.IntSlider(value=n_layers - 1, min=0, max=n_layers - 1, description="layer")
        self.head = W.Dropdown(options=[("mean of heads", -1)] + [(f"head {h}", h) for h in range(n_heads)], value=-1, description="head")
        self.fusion = W.ToggleButtons(options=list(HEAD_FUSIONS), value="mean", description="head fusion")
        self.discard = W.FloatSlider(value=0.0, min=0.0, max=0.95, step=0.05, description="discard")
        self.start_layer = W.IntSlider(value=0, min=0, max=n_layers - 1, description="start layer")
        traces = []
        for col in (1, 2):
            traces.append((go.Image(z=self.image, name="image", hoverinfo="skip"), col))
            traces.append((go.Heatmap(z=np.zeros(self.image.shape[:2]), colorscale=HEAT_COLORSCALE, opacity=0.6, zmin=0, zmax=1,
                                      name="raw" if col == 1 else "rollout", showscale=col == 2,
                                      colorbar=_colorbar("relevance (min-max)")), col))
            if gt_mask is not None:
                contour = _contour(_map(gt_mask, self.image.shape[:2], "gt_mask"), "ground truth", GT_COLOR)
                contour.showlegend = col == 1
                traces.append((contour, col))
        self.figure = _image_figure(["raw attention (CLS → patches)", "attention rollout"], traces,
                                    title="Vision encoder attention", width=780, height=480, top=120, right=40)
        self.update_raw = self._guarded(self._update_raw)
        self.update_rollout = self._guarded(self._update_rollout)
        for c in (self.layer, self.head):
            c.observe(lambda change: self.update_raw(), names="value")
        for c in (self.fusion, self.discard, self.start_layer):
            c.observe(lambda change: self.update_rollout(), names="value")
        self.widget = W.VBox([W.HBox([W.VBox([self.layer, self.head]), W.VBox([self.fusion, self.discard, self.start_layer])]),
                              self.error, self.figure.widget])
        self.update_raw()
        self.update_rollout()

    def _to_pixels(self, patch_map: Any) -> np.ndarray:
        import torch

        from forensix.explain.rollout import upsample_to_pixels

        t = torch.as_tensor(np.asarray(patch_map, np.float32))[None]
        return upsample_to_pixels(t, self.image.shape[:2])[0].numpy()

    def _update_raw(self) -> None:
        att = self.attentions[self.layer.value][0]  # [heads, T, T]
        row = att[:, 0, self.n_prefix :] if self.n_prefix else att[:, self.n_prefix :, self.n_prefix :].mean(1)
        row = row.mean(0) if self.head.value < 0 else row[self.head.value]
        self.raw_map = self._to_pixels(row.reshape(self.grid).numpy())
        with self.figure.batch_update():
            self.figure.data[1].z = self.raw_map
            if hasattr(self, "rollout_map"):
                self._retitle()

    def _update_rollout(self) -> None:
        from forensix.explain.rollout import attention_rollout, relevance_to_patches

        if self.start_layer.value >= len(self.attentions):
            raise ForensixError(f"start layer {self.start_layer.value}: the encoder has {len(self.attentions)} layers")
        relevance = attention_rollout(self.attentions, head_fusion=self.fusion.value, discard_ratio=float(self.discard.value),
                                      start_layer=int(self.start_layer.value), n_prefix_tokens=self.n_prefix)
        patch = relevance_to_patches(relevance, grid=self.grid, n_prefix_tokens=self.n_prefix)[0]
        self.rollout_map = self._to_pixels(patch.numpy())
        with self.figure.batch_update():
            self.figure.data[4 if self.gt_mask is not None else 3].z = self.rollout_map
            self._retitle()

    def _retitle(self) -> None:
        head = "mean of heads" if self.head.value < 0 else f"head {self.head.value}"
        self.figure.layout.title.text = (
            "Vision encoder attention<br><span style='font-size:13px'>"
            f"raw: layer {self.layer.value}, {head} · rollout: {self.fusion.value} fusion, "
            f"discard {self.discard.value:.2f}, from layer {self.start_layer.value}</span>")


# ------------------------------------------------------------------------------------------ grounding


class GroundingExplorer(_Explorer):
    """Pick an explanation token and see its grounding heatmap over the image beside the true mask.

    ``source``: an object with ``.maps`` (``[n_tokens, H, W]``) and ``.tokens`` (a ``Grounding``), or
    an :class:`~forensix.models.analysis.Analysis` (grounded with ``forensix.explain.grounding.ground``).
    Shows the token's pointing-game hit and energy inside the mask (needs ``gt_mask``; else the
    predicted mask of the analysis is used and the stats say so).
    """

    def __init__(self, source: Any, gt_mask: Any = None, *, image: Any = None) -> None:
        super().__init__()
        import plotly.graph_objects as go

        grounding = source
        if not (hasattr(source, "maps") and hasattr(source, "tokens")):
            from forensix.explain.grounding import ground

            grounding = ground(source)
        image = image if image is not None else getattr(grounding, "image", None)
        if image is None:
            image = getattr(source, "image", None)
        if image is None:
            raise ForensixError("image: the grounding carries no image; pass image=")
        self.image = _image(image)
        shape = self.image.shape[:2]
        maps = grounding.maps.detach().float().cpu().numpy() if hasattr(grounding.maps, "detach") else np.asarray(grounding.maps, np.float32)
        self.tokens = [str(t) for t in grounding.tokens]
        if maps.ndim != 3 or len(maps) != len(self.tokens) or not self.tokens:
            raise ForensixError(f"source: maps of shape {maps.shape} do not match {len(self.tokens)} tokens; expected [n_tokens, H, W]")
        self.maps = np.stack([_map(m, shape, f"maps[{i}]") for i, m in enumerate(maps)])
        if gt_mask is not None:
            self.mask, self.mask_kind = (_map(gt_mask, shape, "gt_mask") >= 0.5).astype(np.uint8), "true mask"
        elif hasattr(source, "mask"):
            self.mask, self.mask_kind = _map(source.mask, shape, "mask").round().astype(np.uint8), "predicted mask"
        else:
            self.mask, self.mask_kind = None, "no mask"
        options = [(f"{i}: {t.strip() or repr(t)}", i) for i, t in enumerate(self.tokens)]
        self.token = (W.ToggleButtons(options=options, value=0, description="token") if len(options) <= 8
                      else W.Select(options=options, value=0, rows=8, description="token"))
        self.stats = W.HTML()
        traces = [(go.Image(z=self.image, name="image", hoverinfo="skip"), 1),
                  (go.Heatmap(z=self.maps[0], colorscale=HEAT_COLORSCALE, opacity=0.6, name="grounding", colorbar=_colorbar("grounding")), 1),
                  (go.Image(z=_tint(self.image, self.mask) if self.mask is not None else self.image, name=self.mask_kind), 2)]
        if self.mask is not None:
            traces.append((_contour(self.mask, self.mask_kind, GT_COLOR), 1))
        self.figure = _image_figure(["token heatmap", self.mask_kind], traces, title="Grounding", height=460, right=40)
        self.update = self._guarded(self._update)
        self.token.observe(lambda change: self.update(), names="value")
        self.widget = W.VBox([self.token, self.error, self.figure.widget, self.stats])
        self.update()

    def _update(self) -> None:
        from forensix.explain.explanation_metrics import energy_in_mask, pointing_game

        i = int(self.token.value)
        heat = self.maps[i]
        with self.figure.batch_update():
            self.figure.data[1].z = heat
            self.figure.layout.title.text = f"Grounding of token {i}: {self.tokens[i]!r}"
        if self.mask is None:
            self.hit, self.energy = None, float("nan")
            self.stats.value = "<i>no mask: pass gt_mask to score the grounding</i>"
            return
        self.hit, self.energy = pointing_game(heat, self.mask), energy_in_mask(heat, self.mask)
        hit = "n/a (empty mask)" if self.hit is None else ("✔ hit" if self.hit else "✘ miss")
        self.stats.value = (f"<b>token {i}</b> {html.escape(repr(self.tokens[i]))}: pointing game <b>{hit}</b>, "
                            f"energy in {self.mask_kind} <b>{self.energy:.3f}</b> (mask area {self.mask.mean():.3f} = chance)")


# ------------------------------------------------------------------------------------------ training


class StageWalkthrough(_Explorer):
    """Train a stage step by step: Run (``steps_per_click`` steps) / Stop, live loss curves, and the
    prediction on a fixed validation image refreshed every ``refresh_every`` steps.

    Runs in a background thread from the buttons; :meth:`run_steps` runs synchronously (tests,
    scripts). Stop takes effect between steps. ``.history`` holds the step records.
    """

    def __init__(self, model: Any, stage: int, data: Any, *, steps_per_click: int = 10, refresh_every: int = 5,
                 total_steps: int = 200, batch_size: int = 2, lr: float | None = None, val_sample: Any = None) -> None:
        super().__init__()
        import plotly.graph_objects as go

        from forensix.train import TrainConfig, Trainer, get_stage

        self.model = model
        self.trainer = Trainer(model, get_stage(stage), data, TrainConfig(steps=total_steps, batch_size=batch_size, lr=lr), progress=False)
        self.steps_per_click, self.refresh_every = int(steps_per_click), int(refresh_every)
        if val_sample is None:
            val_sample = data.sample(0) if hasattr(data, "sample") else None
        if val_sample is None:
            raise ForensixError("val_sample: pass a Sample (image + mask) to watch; the dataset has no .sample()")
        self.val_image, self.val_mask = _image(val_sample.image), val_sample.mask
        self.history: list[dict[str, float]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.run_button = W.Button(description=f"Run {self.steps_per_click} steps", icon="play", button_style="success")
        self.stop_button = W.Button(description="Stop", icon="stop", button_style="danger")
        self.status = W.HTML(f"stage {stage}: step 0 / {self.trainer.config.steps}")
        self.loss_figure = FigurePane(go.Figure(layout=dict(
            title=_title(f"Stage {stage} training loss"), xaxis_title="step", yaxis_title="loss", width=520, height=400,
            margin=dict(l=60, r=20, t=90, b=50), legend_title_text="loss term")))
        shape = self.val_image.shape[:2]
        self.pred_figure = _image_figure(
            ["validation image: prediction"],
            [(go.Image(z=self.val_image, name="image", hoverinfo="skip"), 1),
             (go.Heatmap(z=np.zeros(shape), zmin=0, zmax=1, colorscale=HEAT_COLORSCALE, opacity=0.5, name="mask probability",
                         colorbar=_colorbar("p(manipulated)")), 1),
             (_contour(_map(self.val_mask, shape, "mask"), "ground truth", GT_COLOR), 1)],
            title="Prediction", width=420, height=440, right=40)
        self.run_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.widget = W.VBox([W.HBox([self.run_button, self.stop_button, self.status]), self.error,
                              W.HBox([self.loss_figure.widget, self.pred_figure.widget])])
        self._guarded(self.refresh_prediction)()

    def refresh_prediction(self) -> None:
        """Redraw the prediction on the validation image."""
        loc = self.model.localize(self.val_image)
        self.prediction = loc
        with self.pred_figure.batch_update():
            self.pred_figure.data[1].z = loc.heatmap
            self.pred_figure.layout.title.text = f"step {self.trainer.step}: p_fake {loc.score:.3f}, mask area {100 * loc.mask.mean():.1f}%"

    def _plot(self, record: dict[str, float]) -> None:
        import plotly.graph_objects as go

        terms = [k for k, v in record.items() if k not in ("step", "lr", "seconds", "data_seconds") and isinstance(v, float)]
        if self.trainer.losses_at(record["step"] - 1) != self.trainer.spec.losses:
            terms.remove("loss")  # a total over fewer terms would zigzag against the full ones
        names = [t.name for t in self.loss_figure.data]
        with self.loss_figure.batch_update():
            for term in terms:
                if term not in names:
                    self.loss_figure.add_trace(go.Scatter(x=[], y=[], mode="lines+markers", name=term,
                                                          line=dict(width=3 if term == "loss" else 1.5)))
                    names.append(term)
                trace = self.loss_figure.data[names.index(term)]
                trace.x = tuple(trace.x or ()) + (record["step"],)
                trace.y = tuple(trace.y or ()) + (record[term],)

    def run_steps(self, n: int | None = None) -> list[dict[str, float]]:
        """Run up to ``n`` (default ``steps_per_click``) steps now; stops early on :meth:`stop`. Returns the new records."""
        n = self.steps_per_click if n is None else int(n)
        if n < 1:
            raise ForensixError(f"n={n}: run at least one step")
        self._stop.clear()
        done: list[dict[str, float]] = []
        for _ in range(n):
            if self._stop.is_set() or self.trainer.step >= self.trainer.config.steps:
                break
            record = self.trainer.train_step()
            self.history.append(record)
            done.append(record)
            self._plot(record)
            self.status.value = f"stage {self.trainer.spec.stage}: step {self.trainer.step} / {self.trainer.config.steps}, loss {record['loss']:.4f}"
            if self.trainer.step % self.refresh_every == 0:
                self.refresh_prediction()
        return done

    def start(self) -> None:
        """Run ``steps_per_click`` steps in a background thread (the Run button)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._guarded(self.run_steps), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask a running :meth:`run_steps` to stop after the current step (the Stop button)."""
        self._stop.set()


# ------------------------------------------------------------------------------------------ prompts


@contextlib.contextmanager
def _prompt_settings(model: Any, system_prompt: str, clues: bool, region: bool):
    lang, cfg = model.config.language, model.config
    saved = (lang.system_prompt, cfg.clues_in_prompt, cfg.region_in_prompt)
    try:
        lang.system_prompt, cfg.clues_in_prompt, cfg.region_in_prompt = system_prompt, clues, region
        yield model
    finally:
        lang.system_prompt, cfg.clues_in_prompt, cfg.region_in_prompt = saved


class _PromptSide:
    def __init__(self, label: str, model: Any, image: np.ndarray, lab: PromptLab) -> None:
        import plotly.graph_objects as go

        from forensix.data import analysis_question

        self.label = label
        self.question = W.Textarea(value=analysis_question(), description="question", continuous_update=False,
                                   layout=W.Layout(width="98%", height="60px"))
        self.system = W.Textarea(value=model.config.language.system_prompt, description="system", continuous_update=False,
                                 layout=W.Layout(width="98%", height="60px"))
        self.clues = W.Checkbox(value=model.config.clues_in_prompt, description="clue words in prompt")
        self.region = W.Checkbox(value=model.config.region_in_prompt, description="region words in prompt")
        self.result = W.HTML()
        self.figure = _image_figure(
            [f"prompt {label}: predicted mask"],
            [(go.Image(z=image, name="image", hoverinfo="skip"), 1),
             (go.Heatmap(z=np.zeros(image.shape[:2]), zmin=0, zmax=1, colorscale=HEAT_COLORSCALE, opacity=0.5, name="mask probability",
                         colorbar=_colorbar("p(manipulated)")), 1),
             (_contour(np.zeros(image.shape[:2]), "predicted mask", PRED_COLOR, "dash"), 1)],
            title=f"Prompt {label}", width=400, height=420, right=40)
        self.error = W.HTML(layout=W.Layout(display="none"))
        self.analysis = None
        self.box = W.VBox([W.HTML(f"<h4>Prompt {label}</h4>"), self.question, self.system, self.clues, self.region,
                           self.error, self.result, self.figure.widget], layout=W.Layout(width="50%"))


class PromptLab(_Explorer):
    """Two prompts side by side on one image: question, system prompt, and clue- and region-word toggles.

    Each side re-analyses when its controls change (text boxes commit on Enter/blur) and shows
    ``p_fake``, the answer, the clues and the predicted mask; the summary compares A and B.
    The model's own prompt settings are restored after each analysis.
    """

    def __init__(self, model: Any, image: Any, *, max_new_tokens: int | None = None) -> None:
        super().__init__()
        self.model, self.image, self.max_new_tokens = model, _image(image), max_new_tokens
        self.sides = {k: _PromptSide(k, model, self.image, self) for k in ("A", "B")}
        self.summary = W.HTML()
        for key, side in self.sides.items():
            run = functools.partial(self.analyze, key)
            for c in (side.question, side.system, side.clues, side.region):
                c.observe(lambda change, run=run: run(), names="value")
        self.widget = W.VBox([W.HBox([s.box for s in self.sides.values()]), self.summary, self.error])
        for key in self.sides:
            self.analyze(key)

    def analyze(self, key: str) -> Any:
        """Re-run side ``key`` ("A"/"B"); errors show in that side's box. Returns the Analysis or None."""
        side = self.sides[key]
        try:
            with _prompt_settings(self.model, side.system.value, bool(side.clues.value), bool(side.region.value)):
                a = self.model.analyze(self.image, side.question.value, max_new_tokens=self.max_new_tokens, capture_attention=False)
        except Exception as err:  # shown in the widget
            self._show_error(err)
            side.error.value, side.error.layout.display = self.error.value, None
            return None
        self._show_error(None)
        side.error.value, side.error.layout.display = "", "none"
        side.analysis = a
        colour = "#c0392b" if a.verdict == "fake" else "#1e8449"
        side.result.value = (
            f'<div><b style="color:{colour}">{a.verdict.upper()}</b> p_fake = <b>{a.p_fake:.3f}</b></div>'
            f"<div><b>answer:</b> {html.escape(a.text) or '<i>(empty)</i>'}</div>"
            f"<div><b>clues:</b> {html.escape(', '.join(a.clues)) or '<i>none</i>'}</div>"
        )
        with side.figure.batch_update():
            side.figure.data[1].z = a.mask_probs
            side.figure.data[2].z = a.mask.astype(np.float32)
            side.figure.layout.title.text = f"prompt {key}: p_fake {a.p_fake:.3f}, mask area {100 * a.mask.mean():.1f}%"
        self._compare()
        return a

    def _compare(self) -> None:
        a, b = self.sides["A"].analysis, self.sides["B"].analysis
        if a is None or b is None:
            return
        inter, union = (a.mask & b.mask).sum(), (a.mask | b.mask).sum()
        iou = inter / union if union else 1.0
        self.summary.value = (f"<b>A vs B:</b> Δp_fake (B − A) = {b.p_fake - a.p_fake:+.3f}; mask IoU = {iou:.3f}; "
                              f"same answer: {'yes' if a.text == b.text else 'no'}")
