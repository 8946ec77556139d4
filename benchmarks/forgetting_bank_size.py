"""How many models per example and side the challenge's ε score and KLOM need.

Synthetic per-example statistics: under retraining x ~ N(mu_e, 1), under an unlearner
N(mu_e + d, 1), d in units of the per-example spread (d = 0: an exact unlearner; the
scores' values there are their noise floor at n models). For each n, the forget score
and KLOM's median over `--examples` examples, mean ± std over `--reps` draws.

    python benchmarks/forgetting_bank_size.py --n 3 4 8 16 32 --examples 300 --reps 3
"""

from __future__ import annotations

import argparse

import numpy as np

from unlearnbench.attacks import epsilon, klom


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[3, 4, 8, 16, 32])
    parser.add_argument("--shifts", type=float, nargs="+", default=[0.0, 0.5, 1.0, 2.0, 8.0])
    parser.add_argument("--examples", type=int, default=300)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print("n  shift  forget_score(mean±std)  KLOM_p50(mean±std)")
    for n in args.n:
        for d in args.shifts:
            fs, kl = [], []
            for _ in range(args.reps):
                mu = rng.normal(0, 3, args.examples)
                retrained = mu + rng.normal(size=(n, args.examples))
                unlearned = mu + d + rng.normal(size=(n, args.examples))
                fs.append(epsilon.forget_score(unlearned, retrained)[0])
                kl.append(np.median(klom.klom(unlearned, retrained)))
            print(f"{n:<3d} {d:<5g}  {np.mean(fs):.3f} ± {np.std(fs):.3f}            "
                  f"{np.mean(kl):.2f} ± {np.std(kl):.2f}", flush=True)


if __name__ == "__main__":
    main()
