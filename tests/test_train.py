"""Training stages and loop: losses fall, frozen pieces stay put, runs are reproducible, stages are reused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forensix.data.datasets import SyntheticForgeryDataset
from forensix.errors import ForensixError
from forensix.models import ForensixModel
from forensix.train import TrainConfig, get_stage, train_stage
from forensix.train.loop import cosine_with_warmup, step_indices


def _snapshot(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_stage_lowers_its_loss_and_trains_only_its_pieces(stage):
    model = ForensixModel.from_config("tiny")
    data = SyntheticForgeryDataset(stage=stage, size=64, length=8, seed=0)
    before = _snapshot(model)
    buffers = {n: b.clone() for n, b in model.named_buffers() if "running" in n}
    result = train_stage(model, stage, data, TrainConfig(steps=25, batch_size=4, lr=5e-3), progress=False)
    losses = [r["loss"] for r in result.history]
    assert np.mean(losses[-5:]) < np.mean(losses[:5]), losses
    spec = get_stage(stage)
    pieces = spec.trainable_pieces(model)
    def original(name: str) -> str:  # LoRA wraps q_proj.weight as q_proj.base_layer.weight
        return name.replace(".base_layer", "")

    for name, param in model.named_parameters():
        if "lora_" in name:
            continue  # created by the stage itself
        changed = not torch.equal(param.detach(), before[original(name)])
        if name.split(".")[0] in pieces:
            assert param.requires_grad
        else:
            assert not changed, f"frozen {name} changed in stage {stage}"
    changed_pieces = {n.split(".")[0] for n, p in model.named_parameters()
                      if "lora_" not in n and not torch.equal(p.detach(), before[original(n)])}
    assert changed_pieces, "nothing trained"
    assert changed_pieces <= set(pieces)
    for name, value in buffers.items():  # frozen buffers (e.g. running statistics) must not drift
        if name.split(".")[0] not in pieces:
            assert torch.equal(value, dict(model.named_buffers())[name]), name
    if spec.lora:
        lora = [p for n, p in model.named_parameters() if "lora_B" in n]
        assert lora and any(p.abs().sum() > 0 for p in lora)


def test_only_the_instruction_stage_turns_on_region_words():
    model = ForensixModel.from_config("tiny")
    for stage in (1, 2):
        get_stage(stage).apply(model)
        assert not model.config.region_in_prompt
    get_stage(3).apply(model)
    assert model.config.region_in_prompt
    assert "region words join the prompt" in get_stage(3).describe()


def test_lm_every_computes_the_language_term_on_every_kth_step_only():
    from forensix.errors import BadConfigError
    from forensix.train import Trainer

    model = ForensixModel.from_config("tiny")
    data = SyntheticForgeryDataset(stage=2, size=64, length=8, seed=0)
    trainer = Trainer(model, get_stage(2), data, TrainConfig(steps=4, batch_size=2, lm_every=2), progress=False)
    projector = _snapshot(model.projector)
    first = trainer.train_step()  # step 0: every term
    after_lm = _snapshot(model.projector)
    second = trainer.train_step()  # step 1: mask and clue only; the projector, reached only by the LM term, stays
    assert "lm" in first and "lm" not in second and {"mask", "clue"} <= set(second)
    assert any(not torch.equal(after_lm[n], projector[n]) for n in projector)
    assert all(torch.equal(p.detach(), after_lm[n]) for n, p in model.projector.named_parameters())
    assert second["loss"] == pytest.approx(second["mask"] + second["clue"])
    with pytest.raises(BadConfigError, match="lm_every"):
        TrainConfig(steps=2, lm_every=2).resolved(get_stage(3), "tiny")
    with pytest.raises(BadConfigError, match="lm_every"):
        TrainConfig(steps=2, lm_every=0).resolved(get_stage(2), "tiny")


def test_parameter_table_counts_every_parameter():
    model = ForensixModel.from_config("tiny")
    spec = get_stage(2)
    spec.apply(model)
    table = spec.parameter_table(model)
    assert table.loc["total"].sum() == sum(p.numel() for p in model.parameters())
    assert table.loc["lm", "trainable"] == 0 and table.loc["fl_expert", "frozen"] == 0
    text = spec.describe(model)
    assert "mask-text alignment" in text and "fl_expert" in text


def test_same_seed_same_loss_curve():
    curves = []
    for _ in range(2):
        model = ForensixModel.from_config("tiny")
        data = SyntheticForgeryDataset(stage=2, size=64, length=8, seed=0)
        result = train_stage(model, 2, data, TrainConfig(steps=4, batch_size=2, seed=3), progress=False)
        curves.append([r["loss"] for r in result.history])
    assert curves[0] == curves[1]


def test_step_batches_and_schedule_are_pure_functions():
    assert step_indices(0, 5, 4, 100) == step_indices(0, 5, 4, 100)
    assert step_indices(0, 5, 4, 100) != step_indices(0, 6, 4, 100)
    assert cosine_with_warmup(0, 100, 0.1) == pytest.approx(0.1)
    assert cosine_with_warmup(10, 100, 0.1) == pytest.approx(1.0)
    assert cosine_with_warmup(100, 100, 0.1) == pytest.approx(0.1)


def test_callbacks_and_validation_fire():
    model = ForensixModel.from_config("tiny")
    data = SyntheticForgeryDataset(stage=2, size=64, length=8, seed=0)
    val = SyntheticForgeryDataset(stage=2, split="val", size=64, length=4, seed=0)
    events = []
    result = train_stage(model, 2, data, TrainConfig(steps=5, batch_size=2, val_every=2, val_batches=1), val_data=val,
                         callbacks=[lambda event, record: events.append(event)], progress=False)
    assert events[0] == "start" and events[-1] == "end"
    assert events.count("step") == 5 and events.count("validation") == 4
    assert [v["step"] for v in result.validations] == [0, 2, 4, 5]  # before training, on schedule, after the last step


def test_validation_leaves_the_training_path_unchanged():
    data = SyntheticForgeryDataset(stage=2, size=64, length=8, seed=0)
    val = SyntheticForgeryDataset(stage=2, split="val", size=64, length=4, seed=0)
    losses = []
    for val_every in (0, 1):
        torch.manual_seed(0)
        model = ForensixModel.from_config("tiny")
        result = train_stage(model, 2, data, TrainConfig(steps=3, batch_size=2, val_every=val_every, val_batches=1),
                             val_data=val, progress=False)
        losses.append([r["loss"] for r in result.history])
    assert losses[0] == losses[1]


def test_pipeline_reuses_finished_stages(tmp_path):
    from forensix.train.pipeline import train_stages

    model, results = train_stages("tiny", tmp_path, stages=(1, 2), steps={1: 2, 2: 2}, progress=False)
    stamp = (tmp_path / "stage2" / "model" / "model.safetensors").stat().st_mtime_ns
    again, results2 = train_stages("tiny", tmp_path, stages=(1, 2), steps={1: 2, 2: 2}, progress=False)
    assert (tmp_path / "stage2" / "model" / "model.safetensors").stat().st_mtime_ns == stamp
    assert results2[2].history == results[2].history
    for key, value in model.trainable_state().items():
        assert torch.equal(value, again.trainable_state()[key])


def test_pipeline_reuses_a_finished_stage_for_a_model_handed_over_calibrated(tmp_path):
    """As notebook 04 does: stages 1-2 loaded (calibrated), then stage 3 asked for with ``model=``."""
    from forensix.train.pipeline import train_stages

    steps = {1: 1, 2: 2, 3: 1}
    train_stages("tiny", tmp_path, steps=steps, progress=False)
    stamp = (tmp_path / "stage3" / "model" / "model.safetensors").stat().st_mtime_ns
    model, _ = train_stages("tiny", tmp_path, stages=(1, 2), steps=steps, progress=False)
    model.config.mask_threshold, model.config.region_in_prompt = 0.123, True  # read-out settings, not architecture
    train_stages("tiny", tmp_path, stages=(3,), steps=steps, progress=False, model=model)
    assert (tmp_path / "stage3" / "model" / "model.safetensors").stat().st_mtime_ns == stamp


def test_pipeline_warm_starts_from_a_saved_model_and_records_what_started_fresh(tmp_path):
    """As the release continuation does: stages 2-3 from a model trained without the DCT stream."""
    import json

    from forensix.errors import BadCheckpointError
    from forensix.train.pipeline import train_stages

    old = ForensixModel.from_config("tiny", trace={"dct": False})
    source = old.save_pretrained(tmp_path / "old")
    model, _ = train_stages("tiny", tmp_path / "run", stages=(2,), steps={2: 1}, progress=False, init=source)
    report = json.loads((tmp_path / "run" / "stage2" / "warm_start.json").read_text())
    assert report["init"] == str(source) and report["fresh"] and all(".dct." in k for k in report["fresh"])
    frozen = old.vision.state_dict()  # stage 2 does not train the vision side: exactly the source's weights
    assert all(torch.equal(v, frozen[k]) for k, v in model.vision.state_dict().items())
    assert json.loads((tmp_path / "run" / "stage2" / "done.json").read_text())["init"] == str(source)
    with pytest.raises(ForensixError, match="not both"):
        train_stages("tiny", tmp_path / "run", stages=(2,), steps={2: 1}, progress=False, init=source, model=old)
    with pytest.raises(BadCheckpointError, match="manifest.json is missing"):
        train_stages("tiny", tmp_path / "run2", stages=(2,), steps={2: 1}, progress=False, init=tmp_path)


def test_pipeline_forges_your_photos_for_training_only(tmp_path):
    import json

    from PIL import Image

    from forensix.data.sources import split_photo_names
    from forensix.train.pipeline import stage_datasets, train_stages

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for name in ("mine_a.png", "mine_b.png"):
        Image.fromarray(rng.integers(0, 256, (80, 90, 3), dtype=np.uint8)).save(photos / name)
    train, val = stage_datasets("tiny", 2, 32, 0, photos={"mine_a.png": np.full((40, 40, 3), 9, np.uint8)})
    sources = {train.sample(i).record.source for i in range(len(train))}
    assert "mine_a.png" in sources and sources & set(split_photo_names()["train"])
    assert "mine_a.png" not in {val.sample(i).record.source for i in range(len(val))}

    out = tmp_path / "run"
    train_stages("tiny", out, stages=(1,), steps={1: 1}, progress=False)
    stamp = (out / "stage1" / "model" / "model.safetensors").stat().st_mtime_ns
    train_stages("tiny", out, stages=(1,), steps={1: 1}, progress=False, photos=photos)  # other photos: retrained
    assert (out / "stage1" / "model" / "model.safetensors").stat().st_mtime_ns != stamp
    assert {"mine_a.png", "mine_b.png"} <= set(json.loads((out / "stage1" / "done.json").read_text())["data"]["photos"])


def test_pipeline_retrains_a_stage_finished_with_another_recipe(tmp_path):
    import json

    from forensix.train.pipeline import train_stages

    def trained_again(edit) -> bool:
        stamp = (tmp_path / "stage1" / "model" / "model.safetensors").stat().st_mtime_ns
        done = tmp_path / "stage1" / "done.json"
        done.write_text(json.dumps(edit(json.loads(done.read_text()))))
        train_stages("tiny", tmp_path, stages=(1,), steps={1: 1}, progress=False)
        return (tmp_path / "stage1" / "model" / "model.safetensors").stat().st_mtime_ns != stamp

    train_stages("tiny", tmp_path, stages=(1,), steps={1: 1}, progress=False)
    assert not trained_again(lambda marker: marker)
    # e.g. a stage 3 finished before the region words joined its prompt
    assert trained_again(lambda marker: {**marker, "recipe": {**marker["recipe"], "region_words": True}})
    assert trained_again(lambda marker: {k: v for k, v in marker.items() if k != "recipe"})  # an older done.json
    assert trained_again(lambda marker: {**marker, "config": {**marker["config"], "warmup": 0.5}})
    # a stage trained by another architecture (e.g. before the DCT stream joined the trace branch)
    assert trained_again(lambda marker: {**marker, "model": {**marker["model"], "trace": {**marker["model"]["trace"], "dct": False}}})


def test_validation_losses_score_any_model_on_a_stage_and_restore_its_modes():
    from forensix.train import validation_losses

    data = SyntheticForgeryDataset(stage=2, size=64, length=8, seed=0)
    val = SyntheticForgeryDataset(stage=2, split="val", size=64, length=4, seed=0)
    torch.manual_seed(0)
    model = ForensixModel.from_config("tiny")
    before = validation_losses(model, 2, val, batches=1, batch_size=2)
    model.train()
    model.lm.eval()  # a mixed state, as a stage leaves it
    result = train_stage(model, 2, data, TrainConfig(steps=2, batch_size=2, val_every=2, val_batches=1), val_data=val,
                         progress=False)
    assert result.validations[0] == {"step": 0, **before}  # the trainer's first validation is the untrained model's
    model.train()
    model.lm.eval()
    after = validation_losses(model, 2, val, batches=1, batch_size=2)
    assert after == {k: v for k, v in result.validations[-1].items() if k != "step"}
    assert model.training and model.trace.training and not model.lm.training  # modes as they were


def test_resume_refuses_a_checkpoint_of_other_settings_or_photos(tmp_path):
    from forensix.data.sources import PhotoPool
    from forensix.errors import TrainingError

    config = TrainConfig(steps=2, batch_size=2, lr=1e-3, checkpoint_every=1)
    data = SyntheticForgeryDataset(stage=1, size=32, length=4, seed=0)
    train_stage(ForensixModel.from_config("tiny"), 1, data, config, out_dir=tmp_path, progress=False)
    more_photos = PhotoPool.bundled("train", 0).with_photos({"mine": np.full((48, 48, 3), 90, np.uint8)})
    other_data = SyntheticForgeryDataset(stage=1, size=32, length=4, seed=0, photos=more_photos)
    with pytest.raises(TrainingError, match=r"data\.photos: .*start over without --resume"):
        train_stage(ForensixModel.from_config("tiny"), 1, other_data, config, out_dir=tmp_path, resume=True, progress=False)
    with pytest.raises(TrainingError, match=r"config\.lr: 0\.001 then, 0\.002 now"):
        train_stage(ForensixModel.from_config("tiny"), 1, data, TrainConfig(steps=2, batch_size=2, lr=2e-3, checkpoint_every=1),
                    out_dir=tmp_path, resume=True, progress=False)
    # what does not shape the run may change
    resumed = train_stage(ForensixModel.from_config("tiny"), 1, data, TrainConfig(steps=2, batch_size=2, lr=1e-3, val_every=0),
                          out_dir=tmp_path, resume=True, progress=False)
    assert [r["step"] for r in resumed.history] == [1, 2]
