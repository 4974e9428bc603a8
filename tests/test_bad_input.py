"""Bad input at every public entry point: one table of (call, expected ForensixError subclass, message part).

Each row's message part is what a user needs: the input's name and/or what to do. A row fails if
the call returns, raises another exception type (a raw torch/PIL/numpy error) or an unhelpful message.
"""

from __future__ import annotations

import importlib
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from forensix.errors import (
    BadCheckpointError,
    BadConfigError,
    BadDatasetError,
    BadImageError,
    BadMaskError,
    BadPromptError,
    ForensixError,
    TrainingError,
    UnknownHookError,
)

def lib(module: str):
    """A forensix module, imported when the row runs (so one broken module fails its rows only)."""
    return importlib.import_module(module)


IMG = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)


class Ctx:
    """What a row may use: a scratch folder and the session's tiny model (built on first use)."""

    def __init__(self, tmp: Path, request: pytest.FixtureRequest) -> None:
        self.tmp, self._request = tmp, request

    @property
    def model(self):
        return self._request.getfixturevalue("tiny_model")

    def file(self, name: str, data: bytes) -> Path:
        path = self.tmp / name
        path.write_bytes(data)
        return path

    def saved(self, name: str, array: np.ndarray, fmt: str = "PNG") -> Path:
        path = self.tmp / name
        Image.fromarray(array).save(path, format=fmt)
        return path


def _encoded(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(IMG).save(buf, format=fmt)
    return buf.getvalue()


def _png(w: int, h: int, raw: bytes | None = None) -> bytes:
    """A hand-made RGB PNG whose header claims ``w x h`` (``raw`` = the pixel data actually present)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\0" + bytes(3 * w) for _ in range(h)) if raw is None else raw
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


PNG, JPEG = _encoded("PNG"), _encoded("JPEG")


def _read_image(name: str, data: bytes):
    from forensix.data.io import read_image

    return lambda c: read_image(c.file(name, data))


def _read_mask(name: str, data: bytes, **kw):
    from forensix.data.io import read_mask

    return lambda c: read_mask(c.file(name, data), **kw)


def _gradient_png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.tile(np.arange(64, dtype=np.uint8) * 4, (64, 1))).save(buf, format="PNG")
    return buf.getvalue()


def _eye_png(n: int = 32) -> bytes:
    buf = io.BytesIO()
    Image.fromarray((np.eye(n) * 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _as_mask(x, shape):
    from forensix.data.io import as_mask_array

    return lambda c: as_mask_array(x, shape)


def _train(out=None, data=None, **cfg):
    def run(c: Ctx):
        from forensix.data.datasets import SyntheticForgeryDataset
        from forensix.models import ForensixModel
        from forensix.train.loop import TrainConfig, train_stage

        dataset = SyntheticForgeryDataset(stage=1, size=64, length=2) if data is None else data
        steps = []
        model = ForensixModel.from_config("tiny")
        try:
            train_stage(model, 1, dataset, TrainConfig(**{"steps": 1, "batch_size": 1, **cfg}),
                        out_dir=out(c) if out else None, progress=False,
                        callbacks=[lambda event, record: steps.append(event) if event == "step" else None])
        finally:
            assert not steps, "training started before the bad input was reported"

    return run


def _run_eval(data, layout):
    def run(c: Ctx):
        from forensix.eval.detectors import run_eval

        return run_eval(data(c), layout, "ela", str(c.tmp / "eval"), progress=False)

    return run


def _cli_debug(c: Ctx):
    from forensix.cli import main

    main(["--debug", "analyze", str(c.tmp / "missing.png"), "--model", str(c.tmp / "model")])


def _widget_error(c: Ctx):
    widgets = pytest.importorskip("forensix.viz.widgets", reason="forensix.viz.widgets is being written")
    if not hasattr(widgets, "DataExplorer"):
        pytest.skip("forensix.viz.widgets.DataExplorer is not there yet")
    explorer = widgets.DataExplorer(size=64)
    explorer.seed.value = -1  # the widget's callback fails; the error must land in its error box
    assert explorer.error.layout.display != "none"
    raise explorer.last_error  # re-raise what the widget shows, so the row checks its type and message


CASES = [
    # ---------------------------------------------------------------- loaders
    ("read_image-missing", lambda c: lib("forensix.data.io").read_image(c.tmp / "nope.png"),
     BadImageError, "nope.png: file not found"),
    ("read_image-empty-file", _read_image("empty.png", b""), BadImageError, "empty.png: file is empty"),
    ("read_image-text-as-png", _read_image("notes.png", b"just some text, not pixels\n"), BadImageError,
     "notes.png: not a readable image"),
    ("read_image-corrupt-bytes", _read_image("noise.jpg", bytes(np.random.default_rng(1).integers(0, 256, 500, dtype=np.uint8))),
     BadImageError, "noise.jpg"),
    ("read_image-truncated-png", _read_image("half.png", PNG[: len(PNG) // 2]), BadImageError, "half.png: file is truncated"),
    ("read_image-truncated-png-header", _read_image("head.png", PNG[:20]), BadImageError, "re-export"),
    ("read_image-truncated-jpeg", _read_image("half.jpg", JPEG[: len(JPEG) // 2]), BadImageError, "half.jpg: file is truncated"),
    ("read_image-png-magic-then-junk", _read_image("magic.png", PNG[:8] + b"\x00" * 64), BadImageError, "magic.png"),
    ("read_image-1x1", _read_image("dot.png", _png(1, 1)), BadImageError, "dot.png: image is 1x1 pixels"),
    ("read_image-decompression-bomb-header", _read_image("bomb.png", _png(100_000, 100_000, raw=b"")), BadImageError,
     "bomb.png: image is too large"),
    ("read_image-over-max_pixels",
     lambda c: lib("forensix.data.io").read_image(c.file("big.png", _png(64, 64)), max_pixels=100),
     BadImageError, "raise max_pixels"),
    ("read_image-directory", lambda c: lib("forensix.data.io").read_image(c.tmp), BadImageError,
     "not a file"),
    ("read_mask-truncated", _read_mask("m.png", _eye_png()[:45]), BadImageError, "m.png"),
    ("read_mask-wrong-size", _read_mask("eye.png", _eye_png(), shape=(16, 16)), BadMaskError,
     "eye.png: mask is 32x32 (HxW) but the image is 16x16"),
    ("read_mask-non-binary", _read_mask("grad.png", _gradient_png()), BadMaskError, "grad.png: mask is not binary"),
    # ---------------------------------------------------------------- in-memory images and masks
    ("as_mask_array-wrong-size", _as_mask(np.zeros((8, 8), np.uint8), (9, 9)), BadMaskError, "masks must have the image's size"),
    ("as_mask_array-non-binary", _as_mask(np.arange(64).reshape(8, 8), (8, 8)), BadMaskError, "mask values must be {0, 1}"),
    ("as_mask_array-nan", _as_mask(np.full((8, 8), np.nan), None), BadMaskError, "mask holds NaN"),
    ("as_mask_array-3d", _as_mask(np.zeros((4, 8, 8)), None), BadMaskError, "expected an H x W mask"),
    ("metrics-mask-wrong-size", lambda c: lib("forensix.explain.explanation_metrics").pointing_game(
        np.random.rand(8, 8), np.ones((9, 9), np.uint8)), BadMaskError, "mask: shape (9, 9) does not match heatmap"),
    ("metrics-mask-non-binary", lambda c: lib("forensix.explain.explanation_metrics").energy_in_mask(
        np.random.rand(8, 8), np.full((8, 8), 2)), BadMaskError, "binarise it"),
    # ---------------------------------------------------------------- model entry points
    ("analyze-nan", lambda c: c.model.analyze(np.full((64, 64, 3), np.nan)), BadImageError, "images[0]: image holds NaN"),
    ("analyze-inf", lambda c: c.model.analyze(np.full((64, 64, 3), np.inf, np.float32)), BadImageError, "NaN or infinite"),
    ("analyze-5d-junk", lambda c: c.model.analyze(np.zeros((2, 3, 64, 64, 1))), BadImageError, "got shape (2, 3, 64, 64, 1)"),
    ("analyze-negative-floats", lambda c: c.model.analyze(np.full((64, 64, 3), -0.5)), BadImageError,
     "float values must lie in [0, 1] or [0, 255]"),
    ("analyze-int16-out-of-range", lambda c: c.model.analyze(np.full((64, 64, 3), 1000, np.int16)), BadImageError,
     "convert to uint8"),
    ("analyze-1x1", lambda c: c.model.analyze(np.zeros((1, 1, 3), np.uint8)), BadImageError, "image is 1x1 pixels"),
    ("analyze-path-string", lambda c: c.model.analyze("photo.png"), BadImageError, "expected a numpy array, PIL image"),
    ("analyze-empty-question", lambda c: c.model.analyze(IMG, ""), BadPromptError, "question: empty"),
    ("analyze-whitespace-question", lambda c: c.model.analyze(IMG, " \n\t "), BadPromptError, "question: empty"),
    ("analyze-over-long-question", lambda c: c.model.analyze(IMG, "why? " * 1000), BadPromptError,
     "more than the limit of 2000; shorten it"),
    ("analyze-two-image-slots", lambda c: c.model.analyze(IMG, "<image> and <image>?"), BadPromptError,
     "exactly one <image> slot"),
    ("detect-nan-batch", lambda c: c.model.detect([IMG, np.full((64, 64, 3), np.nan)]), BadImageError, "images[1]"),
    ("detect-4d-junk-array", lambda c: c.model.detect(np.zeros((2, 64, 64, 3), np.float32)), BadImageError,
     "images[0]: expected H x W"),
    ("detect-empty-batch", lambda c: c.model.detect([]), BadImageError, "images: got an empty batch"),
    ("detect-4d-tensor-out-of-range", lambda c: c.model.detect(torch.full((1, 3, 64, 64), 300.0)), BadImageError,
     "float values must lie in"),
    ("detect-masks-wrong-count", lambda c: c.model.detect([IMG, IMG], masks=[np.zeros((64, 64), bool)]), BadMaskError,
     "masks: expected a list of 2 masks, one per image, got 1"),
    ("detect-masks-not-a-list", lambda c: c.model.detect([IMG], masks="mask.png"), BadMaskError,
     "masks: expected a list of 1 masks, one per image, got str"),
    ("detect-mask-wrong-size", lambda c: c.model.detect([IMG], masks=[np.zeros((32, 32), bool)]), BadMaskError,
     "masks[0]"),
    ("chat-nan-image", lambda c: c.model.chat(np.full((64, 64, 3), np.nan)), BadImageError, "NaN or infinite"),
    ("chat-ask-empty", lambda c: c.model.chat(IMG).ask("   "), BadPromptError, "question: empty"),
    ("chat-ask-over-long", lambda c: c.model.chat(IMG).ask("x" * 5000), BadPromptError, "more than the limit"),
    ("chat-ask-not-a-string", lambda c: c.model.chat(IMG).ask(None), BadPromptError, "question: empty"),
    # ---------------------------------------------------------------- hooks and explanation tools
    ("hooks-unknown-name", lambda c: c.model.hooks([("vision.nope", lambda x, h: x)]).__enter__(), UnknownHookError,
     "unknown hook point 'vision.nope'"),
    ("run_with_cache-unknown-name", lambda c: c.model.run_with_cache(IMG, "nope.*"), UnknownHookError,
     "unknown hook point 'nope.*'"),
    ("add_head-unknown-hook", lambda c: c.model.add_head("h", torch.nn.Linear(2, 2), "no.such.hook"), UnknownHookError,
     "no.such.hook"),
    ("rollout-non-square", lambda c: lib("forensix.explain.rollout").attention_rollout(
        [torch.rand(1, 2, 5, 4)]), BadConfigError, "attentions[0]: expected a [B, heads, T, T]"),
    ("rollout-mismatched-layers", lambda c: lib("forensix.explain.rollout").attention_rollout(
        [torch.rand(1, 2, 5, 5), torch.rand(1, 2, 6, 6)]), BadConfigError, "attentions[1]"),
    ("rollout-no-layers", lambda c: lib("forensix.explain.rollout").attention_rollout([]),
     BadConfigError, "pass one [B, H, T, T] tensor per layer"),
    # ---------------------------------------------------------------- baselines
    ("get_detector-unknown", lambda c: lib("forensix.baselines").get_detector("nope"),
     BadConfigError, "detector 'nope' is unknown; choose one of"),
    ("localize-2d-junk", lambda c: lib("forensix.baselines").get_detector("ela").localize(
        np.random.rand(40, 40)), BadImageError, "image: expected dtype uint8"),
    ("localize-thin-2d-uint8", lambda c: lib("forensix.baselines").get_detector("noise").localize(
        np.zeros((3, 400), np.uint8)), BadImageError, "is smaller than 8 px on a side"),
    ("localize-rgba", lambda c: lib("forensix.baselines").get_detector("dct").localize(
        np.zeros((40, 40, 4), np.uint8)), BadImageError, "image: expected shape H x W x 3 (RGB), got (40, 40, 4)"),
    ("localize-list", lambda c: lib("forensix.baselines").get_detector("copy-move").localize([[0, 1], [2, 3]]),
     BadImageError, "expected a numpy uint8 array"),
    # ---------------------------------------------------------------- config
    ("get_config-unknown-preset", lambda c: lib("forensix.config").get_config("huge"),
     BadConfigError, "unknown preset 'huge'; choose one of"),
    ("from_dict-unknown-key", lambda c: lib("forensix.config").ForensixConfig.from_dict({"bogus": 1}),
     BadConfigError, "config: unknown keys ['bogus']"),
    ("from_dict-trust_remote_code", lambda c: lib("forensix.config").ForensixConfig.from_dict(
        {"language": {"source": "x/y", "trust_remote_code": True}}), BadConfigError, "unknown keys ['trust_remote_code']"),
    ("from_dict-wrong-type", lambda c: lib("forensix.config").ForensixConfig.from_dict(
        {"vision": {"image_size": "big"}}), BadConfigError, "config.vision.image_size"),
    ("from_config-unknown-preset", lambda c: lib("forensix.models").ForensixModel.from_config("nope"),
     BadConfigError, "unknown preset 'nope'"),
    # ---------------------------------------------------------------- training
    ("train-out-under-a-file", _train(out=lambda c: c.file("file.txt", b"x") / "run"), TrainingError,
     "file.txt/run: cannot write here"),
    ("train-empty-dataset", _train(data=[]), TrainingError, "training dataset is empty"),
    ("train-batch-size-0", _train(batch_size=0), BadConfigError, "TrainConfig.batch_size=0"),
    ("train-negative-steps", _train(steps=-1), BadConfigError, "TrainConfig.steps=-1"),
    ("train-unknown-stage", lambda c: lib("forensix.train").get_stage(9), BadConfigError,
     "unknown stage 9"),
    # ---------------------------------------------------------------- evaluation
    ("run_eval-empty-folder", _run_eval(lambda c: str(c.tmp), "casia"), BadDatasetError, "no images found for layout 'casia'"),
    ("run_eval-unknown-layout", _run_eval(lambda c: str(c.tmp), "nope"), BadDatasetError, "unknown layout 'nope'"),
    ("run_eval-missing-manifest", _run_eval(lambda c: str(c.tmp / "m.json"), "manifest"), BadDatasetError,
     "m.json: manifest not found"),
    ("run_eval-manifest-not-json", _run_eval(lambda c: str(c.file("m.json", b"{oops")), "manifest"), BadDatasetError,
     "m.json: not valid JSON"),
    # ---------------------------------------------------------------- checkpoints (more in test_checkpoint.py)
    ("from_pretrained-missing-dir", lambda c: lib("forensix.models").ForensixModel.from_pretrained(
        c.tmp / "no-model"), BadCheckpointError, "no-model: no checkpoint directory here"),
    ("from_pretrained-no-manifest", lambda c: (c.file("config.json", b"{}"),
                                               lib("forensix.models").ForensixModel.from_pretrained(c.tmp)),
     BadCheckpointError, "manifest.json is missing"),
    # ---------------------------------------------------------------- CLI (exit codes: test_cli.py) and widgets
    ("cli-debug-reraises", _cli_debug, BadImageError, "missing.png: file not found"),
    ("widget-shows-error", _widget_error, ForensixError, "seed=-1: must be 0 or more"),
]


@pytest.mark.parametrize(("call", "error", "part"), [pytest.param(*row[1:], id=row[0]) for row in CASES])
def test_bad_input(call, error, part, tmp_path, request) -> None:
    with pytest.raises(ForensixError) as info:
        call(Ctx(tmp_path, request))
    assert isinstance(info.value, error), f"{type(info.value).__name__}: {info.value}"
    assert part in str(info.value), str(info.value)


def test_table_covers_enough_cases() -> None:
    assert len(CASES) >= 30
    assert len({row[0] for row in CASES}) == len(CASES)
