"""Inference speed of the small preset on CPU: analyze latency, peak memory, hook overhead.

Run: ``.venv/bin/python -m benchmarks.inference [--model DIR] [--repeats 3]``; writes
``benchmarks/results/inference.json``. Targets: ``analyze_latency_s`` <= 3 s on 2 cores
(48-token answer + mask + p_fake), ``hooks_overhead_ratio`` <= 1.2 (``run_with_cache`` with every
hook point vs no hooks, same input, same run, measured alternately ``--repeats`` times).

Latency is the median over ``--images`` distinct held-out images (one warm-up image first), with the
n-gram draft memory reset to the data engine's phrasebook before every image, so no image profits
from an earlier answer. Beside it: the same images analysed one after another as in a session
(earlier answers stay in the draft memory), plain greedy decoding (drafts off), and whether all
three gave the same answers.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import torch

from benchmarks._common import write_result
from forensix.data.forge import ForgeryGenerator
from forensix.models import ForensixModel

SEED = 0


def _paired_times(first, second, repeats: int) -> tuple[float, float]:
    """Median times of two functions measured alternately (drift on a shared machine hits both alike)."""
    first(), second()  # warm-up
    a, b = [], []
    for _ in range(repeats):
        for fn, times in ((first, a), (second, b)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return statistics.median(a), statistics.median(b)


def main(model_dir: str | None = None, repeats: int = 11, n_images: int = 5) -> dict:
    model = ForensixModel.from_pretrained(model_dir) if model_dir else ForensixModel.from_config("small")
    model.eval()
    generator = ForgeryGenerator(size=model.config.image_size, split="test", seed=SEED)
    images = [generator.sample(i).image for i in range(n_images + 1)]
    tokens = 48

    def session(before_each=None) -> tuple[float, list[str]]:
        model.reset_draft_memory()
        model.analyze(images[-1], max_new_tokens=tokens, capture_attention=False)  # warm-up
        times, texts = [], []
        for image in images[:-1]:
            if before_each is not None:
                before_each()
            start = time.perf_counter()
            texts.append(model.analyze(image, max_new_tokens=tokens, capture_attention=False).text)
            times.append(time.perf_counter() - start)
        return statistics.median(times), texts

    latency, texts = session(model.reset_draft_memory)
    latency_session, texts_session = session()
    drafts = model.config.language.draft_tokens
    model.config.language.draft_tokens = 0
    latency_plain, texts_plain = session()
    model.config.language.draft_tokens = drafts
    model.reset_draft_memory()

    from forensix.data.datasets import SyntheticForgeryDataset, collate_samples

    batch = collate_samples([SyntheticForgeryDataset(stage=3, split="test", size=model.config.image_size, length=1)[0]])

    def plain() -> None:
        with torch.no_grad():
            model(batch)

    def cached() -> None:
        with torch.no_grad():
            model.run_with_cache(batch)

    without, with_hooks = _paired_times(plain, cached, repeats)
    analysis = model.analyze(images[0], max_new_tokens=tokens, capture_attention=False)
    payload = {
        "analyze_latency_s": round(latency, 3),
        "analyze_latency_in_session_s": round(latency_session, 3),
        "analyze_latency_plain_greedy_s": round(latency_plain, 3),
        "same_answers_all_three": texts == texts_session == texts_plain,
        "n_images": n_images,
        "generated_tokens": len(analysis.generated_ids),
        "max_new_tokens": tokens,
        "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "hooks_overhead_ratio": round(with_hooks / without, 3),
        "forward_no_hooks_s": round(without, 4),
        "forward_all_hooks_s": round(with_hooks, 4),
        "n_hook_points": len(model.hook_names()),
        "model": model_dir or "small (untrained vision side)",
        "repeats": repeats,
        "seed": SEED,
    }
    write_result("inference", payload)
    return payload


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=None)
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--images", type=int, default=5)
    args = parser.parse_args()
    print(main(args.model, args.repeats, args.images))
