"""Does refitting the clue head on predicted masks, with pixel evidence, name the right clues?

The clue head of a model trained before :mod:`forensix.train.clue_fit` learned on true masks (stage 2) and
names a clue at probability 0.5. This benchmark takes a trained model's frozen vision side and compares, on
the same 192 held-out images (seed 1234, as ``release.py``):

- ``saved``: its own clue head at its own thresholds;
- ``refit``: the head refitted on the model's predicted masks of ``--n-fit`` training images (:func:`fit_clue_head`),
  without pixel evidence (``config.clue.evidence = False``);
- ``refit_evidence``: the same with the pixel contrasts of :mod:`forensix.models.clue_evidence`;

each refit over ``--fit-seeds`` (different training images), at 0.5 and at per-clue thresholds chosen on 192
validation images (:func:`calibrate_clues`). Micro clue F1 with paired bootstrap intervals against ``saved``.

Run: ``.venv/bin/python -m benchmarks.clues [--model forensix-small] [--n-fit 1536]``; writes
``benchmarks/results/clues.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import pandas as pd

from benchmarks._common import write_result
from benchmarks.release import SEED
from forensix.config import ClueConfig
from forensix.data.describe import CLUES, clue_vector
from forensix.eval.bootstrap import clue_rows, paired_differences
from forensix.eval.clue_calibration import calibrate_clues, clue_probabilities
from forensix.eval.model_quality import held_out_samples
from forensix.models import ForensixModel
from forensix.models.persistence import warm_start
from forensix.train.clue_fit import fit_clue_head

VAL_SEED = 99


def _rows(probs: np.ndarray, thresholds, samples) -> pd.DataFrame:
    truth = np.stack([clue_vector(s.record) for s in samples])
    frame = clue_rows((probs >= np.asarray(thresholds)).astype(np.float32), truth)
    frame.insert(0, "is_fake", [int(s.record.is_fake) for s in samples])
    return frame


def _refit(source: str, base: ForensixModel, evidence: bool, train, seed: int) -> ForensixModel:
    config = dataclasses.replace(base.config, clue=ClueConfig(evidence=evidence, hidden=base.config.clue.hidden),
                                 clue_thresholds=())
    model = ForensixModel(config)
    warm_start(model, source)
    if base.lora_enabled:
        model.enable_lora()
        warm_start(model, source)
    fit_clue_head(model, train, seed=seed)
    return model.eval()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="forensix-small")
    parser.add_argument("--n-fit", type=int, default=1536)
    parser.add_argument("--n", type=int, default=192)
    parser.add_argument("--fit-seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args(argv)
    start = time.time()
    base = ForensixModel.from_pretrained(args.model).eval()
    size = base.config.image_size
    val, test = held_out_samples(args.n, size, VAL_SEED, "val"), held_out_samples(args.n, size, SEED, "test")
    saved_probs = clue_probabilities(base, [s.image for s in test])
    saved_cut = [base.config.clue_thresholds[i] if base.config.clue_thresholds else base.config.clue_threshold for i in range(len(CLUES))]
    saved = _rows(saved_probs, saved_cut, test)
    variants: dict[str, dict] = {}
    for evidence, name in ((False, "refit"), (True, "refit_evidence")):
        for seed in args.fit_seeds:
            train = held_out_samples(args.n_fit, size, 7 + seed, "train")
            model = _refit(args.model, base, evidence, train, seed)
            calibration = calibrate_clues(model, val)
            probs = clue_probabilities(model, [s.image for s in test])
            for cut_name, cut in (("at_0.5", [0.5] * len(CLUES)), ("calibrated", calibration.thresholds)):
                diff = paired_differences(_rows(probs, cut, test), saved).loc["clue_f1"]
                variants[f"{name}/seed{seed}/{cut_name}"] = {
                    "clue_f1": float(diff["value"]), "minus_saved": float(diff["difference"]),
                    "low": float(diff["low"]), "high": float(diff["high"]),
                    **({"thresholds": dict(zip(CLUES, cut)), "val_f1": calibration.f1_after} if cut_name == "calibrated" else {}),
                }
    result = {
        "model": args.model, "n_fit": args.n_fit, "n_test": args.n, "test_seed": SEED, "val_seed": VAL_SEED,
        "fit_seeds": args.fit_seeds, "saved_clue_f1": float(paired_differences(saved, saved).loc["clue_f1", "value"]),
        "variants": variants, "seconds": round(time.time() - start, 1),
    }
    write_result("clues", result)
    return result


if __name__ == "__main__":
    main()
