"""Greedy decoding with n-gram drafts: same tokens as plain greedy decoding, fewer forward passes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forensix.models import ForensixModel
from forensix.models.decoding import NGramDrafts, greedy_decode
from forensix.models.language import load_language_model


@pytest.fixture(scope="module")
def lm():
    model = load_language_model("tiny", seed=3).model.eval()
    with torch.no_grad():  # sharper logits than the tiny init, so greedy text varies
        for param in model.parameters():
            param.mul_(4.0)
    return model


def _reference(lm, embeds, n):
    out = lm.generate(inputs_embeds=embeds, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                      return_dict_in_generate=True, output_logits=True, pad_token_id=0)
    return out.sequences[0].tolist(), out.logits[0][0]


def test_ngram_drafts_look_in_the_context_first_then_in_memory():
    drafts = NGramDrafts(n=3, max_draft=2)
    drafts.add([1, 2, 3, 4, 5])
    assert drafts.propose([9, 2, 3]) == [4, 5]
    assert drafts.propose([2, 3, 7, 7, 2, 3]) == [7, 7]  # the context's own earlier occurrence wins
    assert drafts.propose([8, 9]) == []
    small = NGramDrafts(capacity=6)
    small.add([1, 2, 3, 4])
    small.add([5, 6, 7, 8])
    assert small.propose([1, 2]) == [] and small.propose([5, 6]) == [7, 8]  # oldest sequence dropped


@pytest.mark.parametrize("drafts", ["none", "right", "wrong", "partly", "memory"])
def test_drafted_decoding_gives_the_greedy_tokens(lm, drafts):
    torch.manual_seed(0)
    embeds = torch.randn(1, 7, lm.config.hidden_size)
    n = 24
    with torch.no_grad():
        ref_ids, ref_first = _reference(lm, embeds, n)
        assert len(set(ref_ids)) > 3  # a non-trivial answer
        table = None
        if drafts == "right":
            table = NGramDrafts(n=2, max_draft=5)
            table.add(ref_ids)
        elif drafts == "wrong":
            table = NGramDrafts(n=2, max_draft=5)
            table.add([(t + 1) % lm.config.vocab_size for t in ref_ids])
        elif drafts == "partly":  # right keys, every fifth token wrong: partial acceptance
            table = NGramDrafts(n=2, max_draft=4)
            table.add([t if i % 5 else (t + 1) % lm.config.vocab_size for i, t in enumerate(ref_ids)])
        elif drafts == "memory":
            table = NGramDrafts()
        out = greedy_decode(lm, embeds, max_new_tokens=n, eos_token_id=None, drafts=table)
        if drafts == "memory":
            table.add(out.ids)
            again = greedy_decode(lm, embeds, max_new_tokens=n, eos_token_id=None, drafts=table)
            assert again.ids == out.ids and again.forward_passes < out.forward_passes
    assert out.ids == ref_ids
    torch.testing.assert_close(out.first_logits, ref_first, rtol=1e-5, atol=1e-5)
    if drafts == "right":
        assert out.forward_passes <= 1 + -(-(n - 1) // 6) + 2
    if drafts in ("none", "wrong"):
        assert out.forward_passes == n
    if drafts == "partly":
        assert 1 + -(-(n - 1) // 5) < out.forward_passes < n


@pytest.mark.filterwarnings("ignore:Passing `no_repeat_ngram_size`")
@pytest.mark.parametrize("drafts", ["none", "memory"])
def test_no_repeat_decoding_matches_transformers_and_never_repeats_a_trigram(drafts):
    lm = load_language_model("tiny", seed=3).model.eval()  # its flat initial logits loop
    torch.manual_seed(1)
    embeds = torch.randn(1, 5, lm.config.hidden_size)
    n = 30
    with torch.no_grad():
        looping, _ = _reference(lm, embeds, n)
        ref = lm.generate(inputs_embeds=embeds, max_new_tokens=n, min_new_tokens=n, do_sample=False, no_repeat_ngram_size=3,
                          return_dict_in_generate=True, pad_token_id=0).sequences[0].tolist()
        table = NGramDrafts() if drafts == "memory" else None
        if table is not None:
            table.add(looping)  # drafts that would repeat: every banned guess must be rejected
        out = greedy_decode(lm, embeds, max_new_tokens=n, eos_token_id=None, drafts=table, no_repeat_ngram=3)
    grams = [tuple(looping[i : i + 3]) for i in range(n - 2)]
    assert len(grams) != len(set(grams))  # plain greedy decoding loops here
    assert out.ids == ref
    assert len({tuple(ref[i : i + 3]) for i in range(n - 2)}) == n - 2


def test_decoding_stops_at_eos_and_batches_are_refused(lm):
    torch.manual_seed(0)
    embeds = torch.randn(1, 7, lm.config.hidden_size)
    with torch.no_grad():
        ids, _ = _reference(lm, embeds, 12)
        out = greedy_decode(lm, embeds, max_new_tokens=12, eos_token_id=ids[4])
        assert out.ids == ids[: ids.index(ids[4]) + 1]
        with pytest.raises(ValueError, match="one sequence"):
            greedy_decode(lm, embeds.repeat(2, 1, 1), max_new_tokens=4, eos_token_id=None)


def test_analyze_with_drafts_keeps_text_p_fake_and_token_attention():
    model = ForensixModel.from_config("tiny").eval()
    image = np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    first = model.analyze(image, max_new_tokens=8)  # no memory yet
    second = model.analyze(image, max_new_tokens=8)  # drafted from the first answer
    batched = model.analyze_batch([image, image], max_new_tokens=8)[0]  # transformers' generate
    assert first.generated_ids == second.generated_ids == batched.generated_ids
    assert first.p_fake == pytest.approx(batched.p_fake, abs=1e-6)
    assert first.slot_attention.shape == (len(first.generated_ids), 2, 4, 6)
    torch.testing.assert_close(second.slot_attention, first.slot_attention, rtol=1e-4, atol=1e-5)


def test_draft_memory_starts_from_the_phrasebook_and_drafts_can_be_turned_off():
    image = np.random.default_rng(2).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    drafted = ForensixModel.from_config("tiny").eval()
    plain = ForensixModel.from_config("tiny", language={"draft_tokens": 0}).eval()
    tok = drafted.tokenizer
    context = tok(" This region was pasted from a", add_special_tokens=False)["input_ids"]
    proposal = tok.decode(drafted._drafts.propose(context))
    assert proposal.startswith(" different image")
    assert drafted.analyze(image, max_new_tokens=6).generated_ids == plain.analyze(image, max_new_tokens=6).generated_ids


def test_user_hooks_on_the_language_model_see_one_pass_per_generated_token():
    model = ForensixModel.from_config("tiny").eval()
    image = np.random.default_rng(3).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    first = model.analyze(image, max_new_tokens=6)  # primes the draft memory with this answer
    analysis, cache = model.run_with_cache(image, names_filter="lm.logits", max_new_tokens=6)
    assert analysis.generated_ids == first.generated_ids
    records = cache["lm.logits"]
    assert len(records) == len(analysis.generated_ids)  # the prompt pass, then one pass per later token
    assert all(r.shape[1] == 1 for r in records[1:])
