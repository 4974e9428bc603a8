"""Inference speed of the small preset on CPU: analyze latency, peak memory, hook overhead.

Run: ``.venv/bin/python -m benchmarks.inference [--model DIR] [--repeats 3]``; writes
``benchmarks/results/inference.json``. Targets: ``analyze_latency_s`` <= 3 s on 2 cores
(48-token answer + mask + p_fake), ``hooks_overhead_ratio`` <= 1.2 (``run_with_cache`` with every
hook point vs no hooks, same input, same run).
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


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(model_dir: str | None = None, repeats: int = 3) -> dict:
    model = ForensixModel.from_pretrained(model_dir) if model_dir else ForensixModel.from_config("small")
    model.eval()
    image = ForgeryGenerator(size=model.config.image_size, split="test", seed=SEED).sample(1).image
    tokens = 48

    def analyze() -> None:
        model.analyze(image, max_new_tokens=tokens, capture_attention=False)

    # a forward pass of the training kind: vision side + LM over a full conversation
    from forensix.data.datasets import SyntheticForgeryDataset, collate_samples

    batch = collate_samples([SyntheticForgeryDataset(stage=3, split="test", size=model.config.image_size, length=1)[0]])

    def plain() -> None:
        with torch.no_grad():
            model(batch)

    def cached() -> None:
        with torch.no_grad():
            model.run_with_cache(batch)

    latency = _median_time(analyze, repeats)
    with_hooks = _median_time(cached, repeats)
    without = _median_time(plain, repeats)
    analysis = model.analyze(image, max_new_tokens=tokens, capture_attention=False)
    payload = {
        "analyze_latency_s": round(latency, 3),
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
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(main(args.model, args.repeats))
