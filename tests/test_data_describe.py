"""Tests of forensix.data.describe and forensix.data.conversations."""

import numpy as np
import pytest

from forensix.data.conversations import (
    DETECTION_QUESTION, analysis_question, stage1_messages, stage2_messages, stage3_messages,
)
from forensix.data.describe import (
    CLUES, GRID_CELLS, caption, clue_vector, clues_for, describe, explanation, location_phrase, mask_cells,
    parse_location, parse_verdict, verdict,
)
from forensix.data.forge import ForgeryGenerator, ForgeryRecord


@pytest.fixture(scope="module")
def samples():
    g = ForgeryGenerator(size=48, seed=2)
    return [g.sample(i) for i in range(30)]


def test_clue_vocabulary():
    for c in ("edge halo", "lighting mismatch", "duplicated texture", "blur mismatch", "noise mismatch",
              "color shift", "resampling traces", "JPEG grid misalignment"):
        assert c in CLUES


@pytest.mark.parametrize("op, params, must", [
    ("splice", {"color_match": False, "luma_diff": 40}, {"edge halo", "color shift", "lighting mismatch",
                                                        "JPEG grid misalignment", "noise mismatch"}),
    ("copy_move", {"rotation": 10.0, "scale": 1.0}, {"duplicated texture", "resampling traces"}),
    ("removal", {"add_noise": False}, {"smeared texture", "noise mismatch"}),
    ("retouch", {"kind": "blur"}, {"blur mismatch"}),
    ("color", {"kind": "hue"}, {"color shift"}),
    ("resample", {"kind": "down_up"}, {"resampling traces"}),
    ("authentic", {}, set()),
])
def test_clues_match_op(op, params, must):
    r = ForgeryRecord(op=op, params=params)
    found = clues_for(r)
    assert must <= set(found) and (found or op == "authentic")
    vec = clue_vector(r)
    assert vec.dtype == np.float32 and vec.shape == (len(CLUES),)
    assert [CLUES[i] for i in np.flatnonzero(vec)] == found
    assert clues_for(r.to_dict()) == found


def test_clues_differ_with_params():
    assert "color shift" not in clues_for(ForgeryRecord(op="splice", params={"color_match": True}))
    assert "resampling traces" not in clues_for(ForgeryRecord(op="copy_move", params={"rotation": 0, "scale": 1}))


@pytest.mark.parametrize("sl, cell", [
    ((slice(0, 10), slice(0, 10)), "top-left"), ((slice(0, 10), slice(50, 60)), "top-right"),
    ((slice(25, 35), slice(25, 35)), "center"), ((slice(50, 60), slice(25, 35)), "bottom-center"),
    ((slice(25, 35), slice(0, 8)), "middle-left"),
])
def test_location_words_exact(sl, cell):
    m = np.zeros((60, 60), np.uint8)
    m[sl] = 1
    text = location_phrase(m)
    assert parse_location(text) == [cell] == mask_cells(m)


def test_location_tokens_point_at_mask(samples):
    rng = np.random.default_rng(0)
    for s in samples:
        if not s.record.is_fake:
            continue
        cells = parse_location(describe(s.record, s.mask, "location", rng))
        assert cells
        h, w = s.mask.shape
        for c in cells:
            i = GRID_CELLS.index(c)
            r, k = divmod(i, 3)
            assert s.mask[r * h // 3:(r + 1) * h // 3 + 1, k * w // 3:(k + 1) * w // 3 + 1].any()


def test_texts_vary_and_name_clues(samples):
    fake = next(s for s in samples if s.record.is_fake)
    texts = {explanation(fake.record, fake.mask, np.random.default_rng(i)) for i in range(10)}
    assert len(texts) > 1
    for c in clues_for(fake.record):
        assert all(c in t for t in texts)
    verdicts = {verdict(fake.record, np.random.default_rng(i)) for i in range(20)}
    assert len(verdicts) > 1 and all(parse_verdict(v) == "fake" for v in verdicts)
    real = ForgeryRecord(op="authentic")
    assert all(parse_verdict(verdict(real, np.random.default_rng(i))) == "real" for i in range(20))
    full = describe(fake.record, fake.mask, "full", np.random.default_rng(0))
    assert parse_verdict(full) in ("fake", None)
    with pytest.raises(ValueError):
        describe(fake.record, fake.mask, "poem", np.random.default_rng(0))


def test_caption_from_content(samples):
    for s in samples[:10]:
        text = caption(s.record, s.image, np.random.default_rng(0))
        assert text and ("grayscale" in text or "color" in text)
    r = ForgeryRecord(op="authentic", source="chelsea")
    assert "cat" in caption(r, np.full((8, 8, 3), 200, np.uint8), np.random.default_rng(0))


@pytest.mark.parametrize("text", ["", "real", "FAKE.", None, 3, "🙂" * 1000, "not manipulated", "\x00"])
def test_parsers_never_raise(text):
    assert parse_verdict(text) in ("fake", "real", None)
    assert isinstance(parse_location(text), list)


def test_parse_synonyms():
    assert parse_location("fake. The upper-left region and lower right corner") == ["top-left", "bottom-right"]
    assert parse_verdict("real. Consistent noise.") == "real"
    assert parse_verdict("There are no signs of manipulation.") == "real"


def test_conversations(samples):
    rng = np.random.default_rng(0)
    assert analysis_question() == DETECTION_QUESTION + " Explain where and why."
    for s in samples:
        for fn in (stage1_messages, stage2_messages, stage3_messages):
            msgs = fn(s, rng)
            assert msgs[0]["role"] == "user" and "<image>" in msgs[0]["content"]
            assert [m["role"] for m in msgs] == ["user", "assistant"] * (len(msgs) // 2)
        assert "<mask>" in stage2_messages(s, rng)[0]["content"]
    seen_multi = False
    for i in range(60):
        s = samples[i % len(samples)]
        msgs = stage3_messages(s, np.random.default_rng(i))
        seen_multi |= len(msgs) > 2
        for q, a in zip(msgs[::2], msgs[1::2]):
            if DETECTION_QUESTION in q["content"]:
                want = "fake." if s.record.is_fake else "real."
                assert a["content"].startswith(want)
    assert seen_multi
