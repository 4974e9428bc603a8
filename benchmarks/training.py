"""Training-step cost of the small preset on CPU.

``stage3_step_ratio``: one stage-3 step of ours (vision side, prompt assembly, LoRA LM forward and
backward, optimizer) vs a bare forward+backward of the same language model (with the same LoRA) on
the same token embeddings, measured side by side (target <= 1.5). ``data_share``: share of the
stage-2 step time spent producing the batch (target <= 0.10).

Run: ``.venv/bin/python -m benchmarks.training [--steps 4]``; writes ``benchmarks/results/training.json``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from benchmarks._common import write_result
from forensix.models import ForensixModel
from forensix.train.pipeline import stage_datasets
from forensix.train import TrainConfig, Trainer, get_stage

SEED = 0


def main(steps: int = 4) -> dict:
    model = ForensixModel.from_config("small", seed=SEED)
    size = model.config.image_size

    # stage 2: data share of the step
    train2, _ = stage_datasets("small", 2, size, SEED)
    trainer2 = Trainer(model, get_stage(2), train2, TrainConfig(steps=steps + 1, seed=SEED), progress=False)
    records2 = [trainer2.train_step() for _ in range(steps + 1)][1:]
    data_share = sum(r["data_seconds"] for r in records2) / sum(r["seconds"] for r in records2)

    # stage 3: our step vs a bare LM forward+backward on the same embeddings
    train3, _ = stage_datasets("small", 3, size, SEED)
    trainer3 = Trainer(model, get_stage(3), train3, TrainConfig(steps=steps + 1, seed=SEED), progress=False)
    ours, bare = [], []
    for _ in range(steps + 1):
        ours.append(trainer3.train_step()["seconds"])
        batch = trainer3._batch(train3, trainer3.step - 1, trainer3.config.batch_size)
        with torch.no_grad():
            vision = model.encode_image(batch["image"])
            tokens = model.tokenize(batch["messages"], model.prompter_words(vision),
                                    max_tokens=model.train_token_limit())
            embeds = model.embed(tokens, vision)
        embeds.requires_grad_(True)
        start = time.perf_counter()
        logits = model.lm(inputs_embeds=embeds, attention_mask=tokens.attention_mask, use_cache=False).logits
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), tokens.labels[:, 1:].reshape(-1))
        loss.backward()
        model.zero_grad(set_to_none=True)
        bare.append(time.perf_counter() - start)
    ratio = statistics.median(ours[1:]) / statistics.median(bare[1:])
    payload = {
        "stage3_step_ratio": round(ratio, 3),
        "stage3_step_s": round(statistics.median(ours[1:]), 3),
        "bare_lm_fwd_bwd_s": round(statistics.median(bare[1:]), 3),
        "data_share": round(data_share, 4),
        "stage2_step_s": round(statistics.median(r["seconds"] for r in records2), 3),
        "stage2_batch_size": trainer2.config.batch_size,
        "stage3_batch_size": trainer3.config.batch_size,
        "steps_measured": steps,
        "seed": SEED,
    }
    write_result("training", payload)
    return payload


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=4)
    print(main(parser.parse_args().steps))
