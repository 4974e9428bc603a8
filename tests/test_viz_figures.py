"""Figure builders: traces/axes of each figure, matplotlib twins, and to_png for every kind."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from forensix.errors import ForensixError
from forensix.viz import figures as F

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (32, 32, 3)).astype(np.uint8)
    gt = np.zeros((32, 32), np.uint8)
    gt[8:20, 10:24] = 1
    pred = np.clip(np.roll(gt, 3, axis=1) + 0.2 * rng.random((32, 32)), 0, 1).astype(np.float32)
    return image, gt, pred


def _attentions(layers=2, heads=3, tokens=17):
    rng = np.random.default_rng(1)
    return [rng.dirichlet(np.ones(tokens), size=(heads, tokens)) for _ in range(layers)]


def _history():
    return {1: [{"step": i, "loss": 3 / i, "lm": 3 / i, "lr": 0.1, "seconds": 0.1} for i in range(1, 6)],
            2: [{"step": i, "loss": 4 / i, "mask": 2 / i, "clue": 1 / i, "lm": 1 / i} for i in range(1, 6)]}


def _labels():
    rng = np.random.default_rng(2)
    labels = np.array([0, 1] * 10)
    return {"good": labels + 0.3 * rng.random(20), "noise": rng.random(20)}, labels


def test_mask_overlay_plotly_and_matplotlib(scene):
    image, gt, pred = scene
    fig = F.mask_overlay(image, pred, gt, backend="plotly")
    assert [t.type for t in fig.data] == ["image", "contour", "contour"]
    assert [t.name for t in fig.data[1:]] == ["ground truth", "prediction"]
    assert fig.layout.xaxis.title.text == "x (px)" and fig.layout.title.text
    mfig = F.mask_overlay(image, pred, gt)
    ax = mfig.axes[0]
    assert ax.get_xlabel() == "x (px)" and ax.get_ylabel() == "y (px)"
    assert len(ax.collections) >= 2  # two contour sets
    assert [t.get_text() for t in ax.get_legend().get_texts()][0] == "ground truth"


def test_heatmap_overlay_has_colourbar_and_resizes(scene):
    image, gt, _ = scene
    fig = F.heatmap_overlay(image, np.arange(16.0).reshape(4, 4), gt, title="rollout")
    assert [t.type for t in fig.data] == ["image", "heatmap", "contour"]
    assert np.asarray(fig.data[1].z).shape == (32, 32)
    assert fig.data[1].colorbar.title.text == "relevance"
    mfig = F.heatmap_overlay(image, np.ones((4, 4)), backend="matplotlib")
    assert len(mfig.axes) == 2  # image axes + colourbar


def test_attention_grid_layers_by_heads():
    fig = F.attention_grid(_attentions(2, 3))
    assert len(fig.data) == 6 and all(t.type == "heatmap" for t in fig.data)
    assert np.asarray(fig.data[0].z).shape == (4, 4)
    assert fig.layout.annotations[4].text == "layer 1, head 1"
    mfig = F.attention_grid(_attentions(2, 3), backend="matplotlib")
    assert len(mfig.axes) == 7 and mfig.axes[0].get_xlabel() == "patch column"
    with pytest.raises(ForensixError, match="grid"):
        F.attention_grid(_attentions(tokens=16))


def test_token_figures():
    html = F.token_attribution_text(["The", " image", " <b>"], [0.5, -1.0, 0.0])
    assert html.data.count("<span title") == 3 and "&lt;b&gt;" in html.data
    with pytest.raises(ForensixError, match="one score per token"):
        F.token_attribution_text(["a"], [1.0, 2.0])
    fig = F.token_patch_matrix(np.random.default_rng(0).normal(size=(2, 5)), ["a", "a"], list("vwxyz"))
    assert np.asarray(fig.data[0].z).shape == (2, 5)
    assert len(set(fig.data[0].y)) == 2  # repeated tokens stay separate rows
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text


def test_training_curves_per_stage_and_term():
    fig = F.training_curves(_history())
    names = {(t.xaxis, t.name) for t in fig.data}
    assert names == {("x", "loss"), ("x", "lm"), ("x2", "loss"), ("x2", "mask"), ("x2", "clue"), ("x2", "lm")}
    assert fig.layout.xaxis.title.text == "step" and fig.layout.yaxis.title.text == "loss"
    frame = pd.DataFrame(_history()[1])
    assert {t.name for t in F.training_curves(frame).data} == {"loss", "lm"}
    mfig = F.training_curves(_history(), backend="matplotlib")
    assert [a.get_title() for a in mfig.axes] == ["stage 1", "stage 2"]
    assert [a.get_title() for a in F.training_curves({"stage1": _history()[1]}, backend="matplotlib").axes] == ["stage1"]
    (legend,) = mfig.legends  # one legend naming the terms of every stage
    assert {t.get_text() for t in legend.get_texts()} == {"loss", "lm", "mask", "clue"}


def test_training_curves_mark_each_stages_validations_in_its_terms_colours():
    validations = {1: [{"step": 0, "val_loss": 3.0, "val_lm": 3.0}, {"step": 2, "val_loss": 2.0, "val_lm": 2.0}],
                   2: [{"step": 0, "val_loss": 5.0, "val_mask": 1.0}]}
    fig = F.training_curves(_history(), validations=validations)
    dotted = {(t.xaxis, t.name): t for t in fig.data if t.line.dash == "dot"}
    assert set(dotted) == {("x", "loss (validation)"), ("x", "lm (validation)"), ("x2", "loss (validation)"),
                           ("x2", "mask (validation)")}
    assert list(dotted[("x", "lm (validation)")].x) == [0, 2] and list(dotted[("x", "lm (validation)")].y) == [3.0, 2.0]
    solid = {t.name: t.line.color for t in fig.data if t.line.dash is None}
    assert dotted[("x2", "mask (validation)")].line.color == solid["mask"]  # a term keeps its colour
    assert sum(t.showlegend is not False for t in fig.data if t.name == "loss (validation)") == 1
    mfig = F.training_curves(_history(), validations=validations, backend="matplotlib")
    assert [len(a.lines) for a in mfig.axes] == [2 + 2, 4 + 2]  # training lines, then one dotted line per validated term
    (legend,) = mfig.legends
    assert "validation" in {t.get_text() for t in legend.get_texts()}


def test_metric_table_and_curves():
    df = pd.DataFrame({"f1": [0.51234, 0.6], "auc": [0.7, 0.8]}, index=pd.Index(["ela", "forensix"], name="detector"))
    table = F.metric_table(df)
    assert table.data[0].type == "table" and "0.512" in table.data[0].cells.values[1]
    scores, labels = _labels()
    roc = F.roc_curves(scores, labels)
    assert [t.name.split(" (")[0] for t in roc.data] == ["good", "noise", "chance"]
    assert "AUC 1.000" in roc.data[0].name
    assert roc.layout.xaxis.title.text == "false positive rate"
    pr = F.pr_curves(scores, labels)
    assert pr.layout.yaxis.title.text == "precision" and "AP" in pr.data[0].name
    with pytest.raises(ForensixError, match="both classes"):
        F.roc_curves([0.1, 0.2], [1, 1])


def test_forgery_gallery_one_row_per_op():
    samples = F.op_samples(["splice", "authentic"], size=32)
    fig = F.forgery_gallery(samples)
    assert len(fig.axes) == 6
    assert "splice" in fig.axes[0].get_title() and "This picture" in fig.axes[2].texts[0].get_text()
    pfig = F.forgery_gallery(samples, backend="plotly")
    assert [t.type for t in pfig.data] == ["image"] * 4


def test_to_png_every_kind(tmp_path, scene):
    image, gt, pred = scene
    scores, labels = _labels()
    figs = {
        "mask": F.mask_overlay(image, pred, gt), "mask_plotly": F.mask_overlay(image, pred, gt, backend="plotly"),
        "heat": F.heatmap_overlay(image, pred, gt), "att": F.attention_grid(_attentions()),
        "tokens": F.token_attribution_text(["a", "b"], [1.0, -1.0]), "matrix": F.token_patch_matrix(np.eye(2), ["a", "b"]),
        "curves": F.training_curves(_history()), "table": F.metric_table(pd.DataFrame({"f1": [0.5]})),
        "roc": F.roc_curves(scores, labels), "pr": F.pr_curves(scores, labels),
    }
    for name, fig in figs.items():
        path = F.to_png(fig, tmp_path / f"{name}.png")
        data = path.read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 2000, name
    with pytest.raises(ForensixError, match="PNG"):
        F.to_png(object(), tmp_path / "x.png")


def test_bad_backend_is_a_forensix_error(scene):
    with pytest.raises(ForensixError, match="backend"):
        F.mask_overlay(scene[0], backend="bokeh")


def test_mask_overlay_plotly_tints_the_true_mask(scene):
    image, gt, pred = scene
    fig = F.mask_overlay(image, pred, gt, backend="plotly")
    shown, raw = np.asarray(fig.data[0].z).astype(int), np.asarray(image).astype(int)
    inside = np.asarray(gt) >= 0.5
    assert inside.any() and np.array_equal(shown[~inside], raw[~inside])  # untouched outside the mask
    assert (shown[inside][:, 1] - raw[inside][:, 1]).mean() > 10  # greener inside
    plain = F.mask_overlay(image, pred, None, backend="plotly")
    assert np.array_equal(np.asarray(plain.data[0].z), np.asarray(image))
