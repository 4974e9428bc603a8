"""Explanation tools: IG speed vs captum's per-token loop, grounding cost, grounding quality.

Run: ``.venv/bin/python -m benchmarks.explain [--model DIR] [--n 12] [--tokens 32] [--steps 16]``;
writes ``benchmarks/results/explain.json``. Without ``--model`` the untrained ``small`` preset runs
(``"trained": false``: quality numbers are then meaningless, speed ratios are real).

* ``ig_speedup_vs_captum`` = captum ``LLMGradientAttribution(LayerIntegratedGradients)`` time /
  :func:`attribute_tokens` time, all ``--tokens`` tokens of one explanation, ``--steps`` steps,
  equal inputs and baselines; ``ig_max_rel_diff`` = max |ours − captum| / max |captum|.
* ``grounding_time_ratio = (analyze_s + ground_s) / analyze_s`` (attention method, all tokens).
* quality on ``SyntheticImageDataset(split="test")``: pointing game over location tokens (and over
  all tokens), energy in mask, deletion AUC of ``p_fake`` on each image's mean location-token map
  (all tokens when none), beside a random map and the mask-area chance level. The pointing game of
  location tokens comes with a 95% interval from resampling whole images (tokens of one image are not
  independent; :func:`forensix.eval.bootstrap.grouped_rate_interval`); authentic images score no tokens.
  ``pointing_game_localizer_peak``: the same test once per forged image for the maximum of the
  predicted mask probabilities, the localizer's own answer to "where?".
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings

import numpy as np
import torch

from benchmarks._common import write_result

SEED = 0


def _load(model_dir: str | None):
    from forensix.models.forensix_model import ForensixModel

    return (ForensixModel.from_pretrained(model_dir) if model_dir else ForensixModel.from_config("small")), bool(model_dir)


def _explanation(model, image, n_tokens: int):
    """An analysis whose explanation has exactly ``n_tokens`` tokens (teacher-forced text if the model stops early)."""
    a = model.analyze(image, max_new_tokens=n_tokens)
    if len(a.generated_ids) < n_tokens:
        filler = " The region in the top-left corner shows a halo and a resampling pattern near the left edge." * 4
        ids = (a.generated_ids + model.tokenizer.encode(filler, add_special_tokens=False))[:n_tokens]
        a.generated_ids = ids
        a.generated_tokens = [model.tokenizer.decode([i]) for i in ids]
    return a


def ig_speed(model, image, n_tokens: int, steps: int, baseline: str = "pad") -> dict:
    from forensix.explain.captum_reference import captum_token_attribution
    from forensix.explain.token_attribution import attribute_tokens

    a = _explanation(model, image, n_tokens)
    targets = list(range(n_tokens))
    attribute_tokens(model, a, n_steps=2, targets=[0])  # warm-up
    t = time.perf_counter()
    ours = attribute_tokens(model, a, n_steps=steps, targets=targets, baseline=baseline)
    ours_s = time.perf_counter() - t
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        ref = captum_token_attribution(model, a, n_steps=steps, targets=targets, baseline=baseline)
        captum_s = time.perf_counter() - t
    diff = float((ours.scores - ref).abs().max() / ref.abs().max())
    return {"ig_ours_s": round(ours_s, 3), "ig_captum_s": round(captum_s, 3), "ig_speedup_vs_captum": round(captum_s / ours_s, 3),
            "ig_max_rel_diff": diff, "ig_tokens": n_tokens, "ig_steps": steps, "ig_baseline": baseline, "prompt_tokens": len(a.prompt_ids),
            "ig_max_completeness_gap": float(ours.completeness_gap.abs().max())}


def grounding(model, n: int, seed: int, deletion_steps: int) -> dict:
    from forensix.data.datasets import SyntheticImageDataset
    from forensix.eval.bootstrap import grouped_rate_interval
    from forensix.explain.grounding import ground
    from forensix.explain.explanation_metrics import (
        deletion_insertion, energy_in_mask, mask_area_baseline, pointing_game, pointing_game_score, random_map_baseline,
    )

    size = model.config.image_size
    data = SyntheticImageDataset(split="test", size=size, length=n, seed=seed)
    rng = np.random.default_rng(seed)
    analyze_s = ground_s = 0.0
    loc_hits, all_hits, rand_hits, peak_hits, energy, rand_energy, chance_e, chance_p = [], [], [], [], [], [], [], []
    per_image = []  # (location-token hits, location tokens scored) of each image, for the grouped interval
    dele, rand_dele, n_loc = [], [], 0
    score = lambda batch: model.detect(list(batch))  # noqa: E731
    step = max(1, math.ceil(size * size / deletion_steps))
    for i in range(n):
        item = data[i]
        image = item["image"]
        mask = item["mask"] if item.get("mask") is not None else np.zeros(image.shape[:2], np.uint8)
        t = time.perf_counter()
        a = model.analyze(image)
        analyze_s += time.perf_counter() - t
        t = time.perf_counter()
        g = ground(a)
        ground_s += time.perf_counter() - t
        if not len(g.tokens):
            continue
        loc = g.location_tokens
        n_loc += len(loc)
        heat = g.maps[loc].mean(0).numpy() if loc else g.maps.mean(0).numpy()
        rand = random_map_baseline(mask.shape, rng)
        all_hits += [pointing_game(m.numpy(), mask) for m in g.maps]
        hits = [h for h in (pointing_game(g.maps[j].numpy(), mask) for j in loc) if h is not None]
        loc_hits += hits
        per_image.append((sum(hits), len(hits)))
        rand_hits.append(pointing_game(rand, mask))
        peak_hits.append(pointing_game(a.mask_probs, mask))
        if mask.any():
            energy.append(energy_in_mask(heat, mask))
            rand_energy.append(energy_in_mask(rand, mask))
            c = mask_area_baseline(mask)
            chance_e.append(c.energy)
            chance_p.append(c.pointing)
            dele.append(deletion_insertion(image, heat, score, step=step).auc)
            rand_dele.append(deletion_insertion(image, rand, score, step=step).auc)
    mean = lambda v: float(np.nanmean(v)) if len(v) else float("nan")  # noqa: E731
    return {
        "grounding_time_ratio": round((analyze_s + ground_s) / analyze_s, 4),
        "analyze_s": round(analyze_s, 3), "ground_s": round(ground_s, 3),
        "pointing_game_location_tokens": pointing_game_score(loc_hits), "n_location_tokens": n_loc,
        "pointing_game_location_tokens_interval_95": list(grouped_rate_interval(*zip(*per_image), seed=seed)[1:])
        if any(n for _, n in per_image) else None,
        "n_location_tokens_scored": sum(n for _, n in per_image),
        "pointing_game_all_tokens": pointing_game_score(all_hits), "pointing_game_random_map": pointing_game_score(rand_hits),
        "pointing_game_chance_mask_area": mean(chance_p), "pointing_game_localizer_peak": pointing_game_score(peak_hits),
        "energy_in_mask": mean(energy), "energy_in_mask_random_map": mean(rand_energy), "energy_chance_mask_area": mean(chance_e),
        "deletion_auc": mean(dele), "deletion_auc_random_map": mean(rand_dele), "n_images": n,
        "n_forged_images": len(energy), "deletion_steps": deletion_steps,
    }


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="trained model directory (ForensixModel.from_pretrained)")
    p.add_argument("--n", type=int, default=12, help="held-out images for grounding quality")
    p.add_argument("--tokens", type=int, default=32)
    p.add_argument("--steps", type=int, default=16)
    p.add_argument("--deletion-steps", type=int, default=16)
    p.add_argument("--seed", type=int, default=SEED)
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.manual_seed(args.seed)
    model, trained = _load(args.model)
    from forensix.data.datasets import SyntheticImageDataset

    image = SyntheticImageDataset(split="test", size=model.config.image_size, length=1, seed=args.seed + 1)[0]["image"]
    payload = {"trained": trained, "model": args.model or "small (untrained vision side)", "seed": args.seed,
               "load_avg_start": os.getloadavg()[0]}
    payload.update(ig_speed(model, image, args.tokens, args.steps))
    print({k: v for k, v in payload.items() if k.startswith("ig")}, file=sys.stderr, flush=True)
    payload.update(grounding(model, args.n, args.seed, args.deletion_steps))
    payload["load_avg_end"] = os.getloadavg()[0]
    payload["targets"] = {"ig_speedup_vs_captum": ">= 5", "ig_max_rel_diff": "<= 1e-3", "grounding_time_ratio": "<= 1.3"}
    write_result("explain", payload)
    return payload


if __name__ == "__main__":
    print(main())
