"""Synthetic results/metrics.csv for tests and illustrations (never for conclusions).

The numbers look like a real run (retrained accuracies near the paper's, an original
that remembers its forget set, methods that deviate by method-specific amounts that
vary between settings and seeds, run times as fractions of retraining) but are drawn
from a random generator: every figure made from them must say so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from unlearnbench.scores import FLAG_COLUMNS, KEYS, METRIC_COLUMNS

# method: (typical RetDev, MIA bias, unlearning seconds / retraining seconds)
PROFILE = {
    "ft": (0.035, 0.010, 0.10), "ga": (0.15, -0.020, 0.003), "srl": (0.12, -0.030, 0.10),
    "ngplus": (0.04, 0.006, 0.20), "scrub": (0.05, 0.010, 0.30), "bt": (0.09, -0.015, 0.05),
    "salun": (0.04, 0.008, 0.10), "ff": (0.20, 0.020, 0.45), "iu": (0.25, 0.025, 0.05),
    "cfk": (0.06, 0.012, 0.04), "euk": (0.08, 0.010, 0.06), "fcs": (0.035, 0.008, 0.08),
    "msg": (0.022, 0.004, 0.06), "cfw": (0.05, 0.012, 0.02), "prmq": (0.04, 0.010, 0.05),
    "ct": (0.025, 0.004, 0.03), "kde": (0.06, 0.015, 0.10), "rni": (0.30, -0.040, 0.01),
}
DEFAULT_PROFILE = (0.08, 0.01, 0.05)


def synthetic_metrics(settings=(("cifar10", "resnet18"), ("cifar10", "tinyvit11m"), ("mnist", "resnet18")),
                      seeds=(0, 1, 2, 3, 4), methods=None, rng_seed: int = 0, diverged=()) -> pd.DataFrame:
    """One row per (dataset, model, method, seed) with the columns of results/metrics.csv,
    'original' and 'retrained' included. `diverged`: (dataset, model, method) triples whose
    models diverged completely on every seed (accuracy 0, no MIA)."""
    diverged = set(map(tuple, diverged))
    if methods is None:
        from unlearnbench import methods as registry  # noqa: PLC0415

        methods = registry.names()
    rng = np.random.default_rng(rng_seed)
    rows = []
    for dataset, model in settings:
        forget_base = rng.uniform(0.86, 0.97)
        retrain_seconds = rng.uniform(300, 2000)
        factor = {m: rng.lognormal(0.0, 0.45) for m in methods}
        for seed in seeds:
            ra_r = min(1.0, rng.normal(0.996, 0.002))
            fa_r = forget_base + rng.normal(0, 0.006)
            ta_r = fa_r + rng.normal(0, 0.004)
            sec_r = retrain_seconds * rng.lognormal(0, 0.08)

            def row(method, ra, fa, ta, mia_val, mia_test, seconds):
                return {"dataset": dataset, "model": model, "method": method, "seed": seed,
                        "retain_acc": float(np.clip(ra, 0, 1)), "forget_acc": float(np.clip(fa, 0, 1)),
                        "val_acc": float(np.clip(ta + rng.normal(0, 0.003), 0, 1)),
                        "test_acc": float(np.clip(ta, 0, 1)), "val_mia": float(mia_val),
                        "test_mia": float(mia_test), "seconds": float(seconds), "diverged": False,
                        "nonfinite_fraction": 0.0, "hp_source": "recipe" if method in ("original", "retrained")
                        else "search", "device": "cpu", "precision": "fp32"}

            rows.append(row("retrained", ra_r, fa_r, ta_r, 0.5 + rng.normal(0, 0.01), 0.5 + rng.normal(0, 0.01),
                            sec_r))
            rows.append(row("original", 1.0 - abs(rng.normal(0, 0.001)), 1.0 - abs(rng.normal(0, 0.002)),
                            ta_r + rng.normal(0.004, 0.003), 0.53 + rng.normal(0, 0.01),
                            0.53 + rng.normal(0, 0.01), sec_r * rng.lognormal(0.05, 0.05)))
            for method in methods:
                dev, bias, fraction = PROFILE.get(method, DEFAULT_PROFILE)
                u = dev * factor[method] * rng.lognormal(0, 0.5, size=3) / 3
                sign = rng.choice([-1.0, 1.0], p=[0.7, 0.3])
                rows.append(row(method, ra_r * (1 - u[0]), fa_r * (1 + sign * u[1]), ta_r * (1 - u[2]),
                                0.5 + bias + rng.normal(0, 0.012), 0.5 + bias + rng.normal(0, 0.012),
                                sec_r * fraction * rng.lognormal(0, 0.2)))
                if (dataset, model, method) in diverged:
                    rows[-1].update({k: 0.0 for k in ("retain_acc", "forget_acc", "val_acc", "test_acc")})
                    rows[-1].update(val_mia=np.nan, test_mia=np.nan, diverged=True, nonfinite_fraction=1.0)
    frame = pd.DataFrame(rows, columns=KEYS + METRIC_COLUMNS + FLAG_COLUMNS)
    return frame.sort_values(KEYS, kind="stable").reset_index(drop=True)
