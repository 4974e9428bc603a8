"""Widgets, headless: build each with the tiny model, move controls, check figures and errors."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from forensix.viz.widgets import AttentionExplorer, DataExplorer, GroundingExplorer, PromptLab, StageWalkthrough


@pytest.fixture(scope="module")
def sample():
    from forensix.data import ForgeryGenerator

    s = ForgeryGenerator(size=64, p_authentic=0.0, seed=0).sample(0, op="splice")
    s.image = np.array(s.image)
    return s


def _shown(error_widget) -> bool:
    return error_widget.layout.display != "none" and bool(error_widget.value)


def test_data_explorer_updates_and_shows_errors():
    ex = DataExplorer(size=48)
    before = np.array(ex.figure.data[0].z).copy()
    ex.op.value = "copy_move"
    ex.jpeg.value = 40
    assert ex.sample.record.op == "copy_move" and ex.sample.record.postprocess == [{"op": "jpeg", "quality": 40}]
    assert not np.array_equal(np.array(ex.figure.data[0].z), before)
    assert "copy_move" in ex.figure.layout.title.text and "Explanation" in ex.text.value
    ex.granularity.value = "verdict"
    assert "edited" in ex.text.value or "altered" in ex.text.value
    ex.seed.value = -3  # bad value: shown in the widget, not raised
    assert _shown(ex.error) and "seed=-3" in ex.error.value
    ex.seed.value = 2
    assert not _shown(ex.error)
    bundle = ex._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle and "<img" in bundle["text/html"]


def test_attention_explorer(tiny_model, sample):
    ex = AttentionExplorer(tiny_model, sample.image, gt_mask=sample.mask)
    assert len(ex.attentions) == 2 and ex.grid == (4, 4)
    rollout, raw = ex.rollout_map.copy(), ex.raw_map.copy()
    ex.fusion.value = "max"
    ex.discard.value = 0.5
    assert not np.allclose(ex.rollout_map, rollout)
    assert np.allclose(np.asarray(ex.figure.data[4].z), ex.rollout_map)
    ex.head.value = 1
    ex.layer.value = 0
    assert not np.allclose(ex.raw_map, raw) and np.allclose(np.asarray(ex.figure.data[1].z), ex.raw_map)
    assert "max fusion" in ex.figure.layout.title.text
    ex.attentions = []  # corrupt state: the callback error lands in the widget
    ex.start_layer.value = 1
    assert _shown(ex.error)


class _Grounding:
    def __init__(self, maps, tokens):
        self.maps, self.tokens = maps, tokens


def test_grounding_explorer_with_handmade_grounding(sample):
    mask = np.zeros((64, 64), np.uint8)
    mask[:16, :16] = 1
    maps = np.zeros((3, 8, 8), np.float32)
    maps[0, 1, 1] = 1.0  # inside the mask
    maps[1, 6, 6] = 1.0  # outside
    maps[2] = 1.0
    ex = GroundingExplorer(_Grounding(maps, ["The", " fake", " edge"]), mask, image=sample.image)
    assert ex.hit is True and ex.energy > 0.5 and "hit" in ex.stats.value
    ex.token.value = 1
    assert ex.hit is False and ex.energy < 0.1 and "miss" in ex.stats.value
    assert np.allclose(np.asarray(ex.figure.data[1].z), ex.maps[1])
    assert "fake" in ex.figure.layout.title.text
    ex.maps = ex.maps[:1]  # bad state: error in the widget
    ex.token.value = 2
    assert _shown(ex.error) and "IndexError" in ex.error.value


def test_prompt_lab_compares_prompts(tiny_model, sample):
    lab = PromptLab(tiny_model, sample.image, max_new_tokens=2)
    a = lab.sides["A"].analysis
    assert a is not None and "p_fake" in lab.sides["A"].result.value and "A vs B" in lab.summary.value
    system = tiny_model.config.language.system_prompt
    lab.sides["B"].system.value = "You are a careless assistant."
    lab.sides["B"].clues.value = not tiny_model.config.clues_in_prompt
    b = lab.sides["B"].analysis
    assert b is not a and b.prompt_ids != a.prompt_ids  # the prompt really changed
    assert tiny_model.config.language.system_prompt == system  # and was restored
    lab.sides["B"].region.value = not tiny_model.config.region_in_prompt
    with_region = lab.sides["B"].analysis
    assert "Region:" in tiny_model.tokenizer.decode(with_region.prompt_ids) and not tiny_model.config.region_in_prompt
    assert np.allclose(np.asarray(lab.sides["B"].figure.data[1].z), with_region.mask_probs)
    lab.sides["B"].question.value = "   "
    assert _shown(lab.sides["B"].error) and "question" in lab.error.value


def test_stage_walkthrough_runs_stops_resumes(fresh_tiny_model):
    from forensix.data import SyntheticForgeryDataset

    data = SyntheticForgeryDataset(stage=2, split="train", size=64, length=4)
    walk = StageWalkthrough(fresh_tiny_model, 2, data, steps_per_click=2, refresh_every=2, total_steps=20)
    first = np.asarray(walk.pred_figure.data[1].z).copy()
    records = walk.run_steps(2)
    assert [r["step"] for r in records] == [1, 2]
    loss = next(t for t in walk.loss_figure.data if t.name == "loss")
    assert list(loss.x) == [1, 2] and {t.name for t in walk.loss_figure.data} >= {"loss", "mask", "clue", "lm"}
    assert not np.allclose(np.asarray(walk.pred_figure.data[1].z), first)  # refreshed at step 2
    walk.trainer.train_step = lambda: (walk.stop(), {"step": 99, "loss": 1.0})[1]  # stop during a step
    assert len(walk.run_steps(5)) == 1
    del walk.trainer.train_step
    assert [r["step"] for r in walk.run_steps(1)] == [3]  # resumes where it stopped
    walk.trainer.config.lm_every = 2  # step 4 skips the LM term: its partial total is not drawn
    walk.run_steps(2)
    traces = {t.name: list(t.x) for t in walk.loss_figure.data}
    assert 4 in traces["mask"] and 4 not in traces["lm"] and 4 not in traces["loss"] and 5 in traces["loss"]
    walk._guarded(walk.run_steps)(0)
    assert _shown(walk.error) and "at least one step" in walk.error.value


# -------------------------------------------------------------------------- synced browser state


def _plain(value):
    """A synced (JSON) value as plain numbers: plotly's base64 typed arrays back to arrays."""
    if isinstance(value, dict) and "bdata" in value:
        array = np.frombuffer(base64.b64decode(value["bdata"]), np.dtype(value["dtype"]))
        shape = value.get("shape")
        return array.reshape([int(n) for n in str(shape).split(",")]) if shape else array
    return value


def _assert_synced(pane) -> None:
    """The state a browser gets (reload, second view, saved notebook) is the figure as it is now."""
    (output,) = pane.widget.get_state()["outputs"]
    synced = output["data"]["application/vnd.plotly.v1+json"]
    data, layout = synced["data"], synced["layout"]
    assert len(data) == len(pane.data) > 0, f"synced state holds {len(data)} traces, the figure {len(pane.data)}"
    for synced_trace, trace in zip(data, pane.data):
        assert synced_trace["type"] == trace.type and synced_trace.get("name") == trace.name
        for key in ("z", "x", "y"):
            value = getattr(trace, key, None)
            if value is not None:
                assert np.allclose(np.asarray(_plain(synced_trace[key]), float), np.asarray(value, float)), f"{trace.name}.{key} is stale"
    assert layout.get("title", {}).get("text") == pane.layout.title.text
    assert layout["margin"]["t"] >= 90  # the title sits below the plotly toolbar
    assert len(json.dumps(pane.widget.get_state())) < 2_000_000  # no plotly.js in the state: kilobytes, not megabytes


def test_every_explorer_figure_syncs_its_state(tiny_model, fresh_tiny_model, sample):
    from forensix.data import SyntheticForgeryDataset

    ex = DataExplorer(size=48)
    _assert_synced(ex.figure)
    ex.op.value = "copy_move"
    _assert_synced(ex.figure)
    assert "copy_move" in ex.figure.synced_figure()["layout"]["title"]["text"]

    att = AttentionExplorer(tiny_model, sample.image, gt_mask=sample.mask)
    _assert_synced(att.figure)
    att.fusion.value = "max"
    _assert_synced(att.figure)
    att.layer.value = 0
    _assert_synced(att.figure)
    assert "layer 0" in att.figure.layout.title.text  # the raw-attention controls retitle too

    maps = np.random.default_rng(0).random((3, 8, 8)).astype(np.float32)
    grd = GroundingExplorer(_Grounding(maps, ["The", " fake", " edge"]), sample.mask, image=sample.image)
    _assert_synced(grd.figure)
    grd.token.value = 2
    _assert_synced(grd.figure)

    lab = PromptLab(tiny_model, sample.image, max_new_tokens=2)
    _assert_synced(lab.sides["A"].figure)
    lab.sides["B"].clues.value = not tiny_model.config.clues_in_prompt
    _assert_synced(lab.sides["B"].figure)

    data = SyntheticForgeryDataset(stage=2, split="train", size=64, length=4)
    walk = StageWalkthrough(fresh_tiny_model, 2, data, steps_per_click=2, refresh_every=2, total_steps=4)
    _assert_synced(walk.pred_figure)
    walk.run_button.click()  # trains in a background thread, as in the notebook
    walk._thread.join(60)
    assert walk.last_error is None and walk.trainer.step == 2
    _assert_synced(walk.pred_figure)
    _assert_synced(walk.loss_figure)
    assert "step 2" in walk.pred_figure.layout.title.text


def test_colour_bars_label_beside_their_ticks(tiny_model, sample):
    att = AttentionExplorer(tiny_model, sample.image, gt_mask=sample.mask)
    bars = [t.colorbar for t in att.figure.data if t.type == "heatmap" and t.showscale is not False]
    assert bars and all(b.title.side == "right" for b in bars)
    title = att.figure.layout.title
    assert title.yanchor == "top" and title.pad.t >= 30 and "<br>" in title.text  # two short lines, not one cut-off line
