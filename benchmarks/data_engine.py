"""Throughput of the synthetic forgery engine on one core (target: mix >= 50 samples/s at 256 px).

Run: ``.venv/bin/python -m benchmarks.data_engine [n]``; writes ``benchmarks/results/data_engine.json``.
"""

from __future__ import annotations

import sys
import time

import torch

from benchmarks._common import write_result
from forensix.data.forge import ALL_OPS, ForgeryGenerator

SIZE, SEED = 256, 0


def rate(gen: ForgeryGenerator, n: int, op: str | None = None, clock=time.perf_counter) -> float:
    """Samples per second generating ``n`` samples sequentially (wall clock by default)."""
    start = clock()
    for i in range(n):
        gen.sample(i, op=op)
    return n / (clock() - start)


def main(n: int = 300) -> dict:
    """Measure the mix and each op; write and return the result."""
    torch.set_num_threads(1)
    gen = ForgeryGenerator(size=SIZE, seed=SEED)
    gen.sample(0)  # load and cache photos
    payload = {
        "mix_samples_per_s": round(rate(gen, n), 2),
        "mix_samples_per_s_cpu_time": round(rate(gen, n, clock=time.process_time), 2),
        "per_op_samples_per_s": {op: round(rate(gen, max(n // 3, 20), op), 2) for op in ALL_OPS + ("authentic",)},
        "size": SIZE,
        "seed": SEED,
        "n": n,
    }
    write_result("data_engine", payload)
    return payload


if __name__ == "__main__":
    print(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300))
