"""U-LiRA's attack job: score the shadow models of one kind from their logit banks. Apart
from jobs/ulira.py (which trains and unlearns) so that it starts without torch."""

from __future__ import annotations

import json
from typing import Sequence

import numpy as np

from .. import io
from ..attacks import ulira
from ..attacks.ulira_files import read_bank


def attack_job(design_path, bank_paths: Sequence, kind: str, out_scores, out_json, statistic: str = "logit",
               min_samples: int = 32, targets: Sequence[int] | None = None, holdout: bool = True,
               model: str = "") -> dict:
    """Score the models of one kind (a method, original or retrained) from its banks
    (one per split, in split order); write the per-example scores and the metrics."""
    design = ulira.Design.load(design_path)
    arrays = io.load_npz(design_path)
    if len(bank_paths) != design.n_splits:
        raise ValueError(f"{len(bank_paths)} banks for {design.n_splits} splits")
    values = np.empty(design.forget_mask.shape, dtype=np.float64)
    acc, seconds = [], []
    for k, path in enumerate(bank_paths):
        bank = read_bank(path, design, k)
        values[k] = ulira.statistic(bank["logits"], design.labels, statistic)
        acc.extend(bank["info"].get("accuracy", []))
        seconds.extend(bank["seconds"].tolist())
    if statistic == "correctness" and not holdout:  # the reference's procedure, exactly
        scores = ulira.score_reference(values, design, targets)
    else:
        scores = ulira.score(values, design, min_samples, targets, holdout)
    ulira.save_npz_compressed(out_scores, **scores.arrays(), kind=np.array(kind))
    metrics = {"dataset": str(arrays.get("dataset", "")), "model": model, "kind": kind, "statistic": statistic,
               "min_samples": int(min_samples), "holdout": bool(holdout), "splits": design.n_splits,
               "forget_sets": design.n_forget_sets, "target_splits": scores.targets.tolist(),
               **ulira.summarise(scores),
               **{key: float(np.mean([a[key] for a in acc])) for key in ("retain_acc", "forget_acc", "out_acc")
                  if acc},
               "seconds": float(np.mean(seconds))}
    io.write_json(out_json, metrics)
    print(json.dumps(metrics, indent=1))
    return metrics
