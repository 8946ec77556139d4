"""Tuned vs default hyperparameters on the search objective (docs/protocol.md §5), per method.

For one (dataset, model, search seed) whose original and retrained models the workflow
has trained (under --results), and for each method, it runs the study of the `search`
rule (`jobs.search.search_job`, journal and CSV under --out, so a rerun resumes), with the
method defaults evaluated as row -1, and reports the norm of the 4 objectives of
  default : the method defaults (unlearning seed = the model seed, as `unlearn` does);
  sampler : the best of the study's N trials alone (the paper's selection, and the
            workflow's unless search.include_defaults; with search.start_from_defaults
            in --config, trial 0 is the defaults moved into the search space:
            epochs capped at E_max, out-of-range values at the range's end);
  chosen  : what best.json would hold (sampler's trials and defaults compete);
and, with --check-seeds, the same comparison on other model seeds (their own original
and retrained models): the chosen setting vs the defaults where they differ, which is
what applying one setting to every seed does. Prints a Markdown table, the mean
seconds per trial, and how many methods the sampler alone matches or beats the
defaults on; writes the table as CSV under --out.

  python benchmarks/search_vs_defaults.py --model smallcnn --check-seeds 1 2  # config.yaml's budget
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd

from unlearnbench import config as ub_config
from unlearnbench import io, methods, search
from unlearnbench.jobs.context import Context
from unlearnbench.jobs.search import search_job
from unlearnbench.jobs.unlearn import unlearn_copy


def norm_of(ctx, net, method, hp, seed, retrained) -> float:
    unlearned, _ = unlearn_copy(ctx, net, method, hp, seed)
    return math.hypot(*search.objectives(ctx.evaluate(unlearned), retrained))


def at_most(a: pd.Series, b: pd.Series) -> int:
    """How many a <= b, equal up to float rounding (a norm read back from a CSV and the
    same norm computed again differ in the last bit)."""
    return int((a <= b + 1e-12 * b.abs()).sum())


def best_or_none(frames, method):
    """search.select_best, or None when no trial completed (e.g. FF on resnet18 diverges)."""
    try:
        return search.select_best(frames, method)
    except ValueError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default="results")
    parser.add_argument("--out", default="results/benchmarks/search_vs_defaults")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--model", default="smallcnn")
    parser.add_argument("--seed", type=int, default=0, help="search seed")
    parser.add_argument("--check-seeds", type=int, nargs="*", default=[])
    parser.add_argument("--trials", type=int, default=None,
                        help="trials per study (default: --config's search.trials for --model)")
    parser.add_argument("--methods", nargs="*", default=None)
    parser.add_argument("--config", default="config.yaml", help="for the epoch cap (training epochs)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default=None, help="default: the config's (give the run's, e.g. fp32)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    cfg = ub_config.load(args.config)
    cap = ub_config.epoch_cap(cfg, args.dataset)
    trials_per_study = args.trials or ub_config.search_trials(cfg, args.model)
    root = Path(args.results) / args.dataset
    base = root / args.model

    def paths(seed):
        return (base / "original" / f"seed{seed}.safetensors", base / "metrics" / "retrained" / f"seed{seed}.json")

    # the input size and precision the workflow's jobs use (the models were trained at that size)
    ctx = Context(args.dataset, root / "splits.npz", device=args.device, threads=args.threads,
                  precision=args.precision or cfg["precision"],
                  image_size=ub_config.recipe(cfg, args.dataset).get("image_size"))
    start = cfg["search"]["start_from_defaults"]  # as the workflow's studies do
    checks = {s: (ctx.model(args.model, paths(s)[0]), io.read_json(paths(s)[1])) for s in args.check_seeds}
    rows = []
    for method in args.methods or [m for m in methods.names() if methods.applies(m, "random")]:
        out_csv = Path(args.out) / args.dataset / args.model / method / f"seed{args.seed}.csv"
        original, retrained = paths(args.seed)
        settings = ub_config.search_settings(cfg, args.dataset, args.model, method)._replace(
            trials=trials_per_study, include_defaults=True, start_from_defaults=start)
        frame = search_job(ctx, args.model, method, args.seed, settings, original, retrained, out_csv, progress=False)
        default = frame[frame["number"] == search.DEFAULTS_NUMBER].iloc[0]
        trials = frame[frame["number"] >= 0]
        sampler = best_or_none({args.seed: trials}, method)
        chosen = best_or_none({args.seed: frame}, method)
        done = trials[trials["state"] == "COMPLETE"]
        row = {"method": method, "label": methods.label(method), "default": float(default["norm"]),
               "sampler": sampler["norm"] if sampler else math.nan, "chosen": chosen["norm"] if chosen else math.nan,
               "chosen_from": "nothing completed" if chosen is None else
               "defaults" if chosen["trial"] == search.DEFAULTS_NUMBER else f"trial {chosen['trial']}",
               "trial_seconds": float(done["seconds"].mean()), "default_seconds": float(default["seconds"]),
               "failed": int((trials["state"] != "COMPLETE").sum()), "params": chosen["params"] if chosen else {}}
        for seed, (net, ref) in checks.items():
            d = norm_of(ctx, net, method, {}, seed, ref)
            c = d if chosen is None or chosen["trial"] == search.DEFAULTS_NUMBER else \
                norm_of(ctx, net, method, chosen["params"], seed, ref)
            row[f"default_seed{seed}"], row[f"chosen_seed{seed}"] = d, c
        rows.append(row)
        print({k: v for k, v in row.items() if k != "params"}, flush=True)
    table = pd.DataFrame(rows)
    with io.atomic_path(Path(args.out) / f"summary_{args.dataset}_{args.model}.csv") as tmp:
        table.to_csv(tmp, index=False)
    shown = table.drop(columns=["method", "params", "default_seconds"], errors="ignore")
    print(f"\n{args.dataset} / {args.model}: search seed {args.seed}, {trials_per_study} trials + the defaults, "
          f"epoch cap {cap}, trial 0 = the defaults moved into the space: {start}, precision {ctx.precision}, "
          f"{args.threads} thread(s) on {args.device}; norms of the 4 objectives (lower is better)\n")
    print(shown.to_markdown(index=False, floatfmt=".4f"))
    n = len(table)
    failed = table.loc[table["chosen_from"] == "nothing completed", "label"].tolist()
    if failed:
        print(f"\nneither the defaults nor any trial completed (diverged) for: {', '.join(failed)}; counted as losses")
    print(f"\nsampler's best <= default: {at_most(table['sampler'], table['default'])}/{n} methods; "
          f"chosen <= default: {at_most(table['chosen'], table['default'])}/{n}; chosen = a trial: "
          f"{int((table['chosen_from'] != 'defaults').sum())}/{n}")
    for seed in args.check_seeds:
        d, c = table[f"default_seed{seed}"], table[f"chosen_seed{seed}"]
        print(f"model seed {seed} (not searched): chosen <= default {at_most(c, d)}/{n}, "
              f"strictly better {int((c < d - 1e-12 * d.abs()).sum())}, "
              f"strictly worse {int((c > d + 1e-12 * d.abs()).sum())}; "
              f"mean norm default {d.mean():.4f}, chosen {c.mean():.4f}")
    print(f"mean {table['trial_seconds'].mean():.2f} s per complete trial, "
          f"{table['default_seconds'].mean():.2f} s per defaults evaluation")


if __name__ == "__main__":
    main()
