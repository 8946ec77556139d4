"""Cost model: seconds per model per stage for the embedded default, and the paper grid.

Part 1 measures, on this machine, what one model costs in each stage of the default
config (digits, config.yaml's training epochs and batch size): job start-up (importing the library), data
loading, training the original, every method's unlearning with its defaults (and its
RTE = training seconds / unlearning seconds, the ratio this script prints), evaluation.

Part 2 counts the paper grid's work (docs/protocol.md §2, §3, §5, §6, §7) in training
sample-passes (one forward + backward of one image) and converts it to GPU hours at
ASSUMED GPU throughputs (--gpu-rate for 32x32 inputs, --gpu-flops for 224x224 inputs).
Nothing here was measured on a GPU.

    python benchmarks/cost_model.py                     # both parts
    python benchmarks/cost_model.py --quick             # smallcnn only, fewer methods
    python benchmarks/cost_model.py --grid-only --gpu-rate 20000
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from _common import log, machine


def default_recipe() -> dict:
    """config.yaml's training overrides for digits (epochs, batch size...); {} if unreadable."""
    import yaml

    try:
        cfg = yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml").read_text())
        return dict(cfg["training"]["digits"])
    except (OSError, KeyError, TypeError, ValueError):
        return {}


def from_config(get, fallback):
    """get(config.yaml as validated), or `fallback` when it cannot be read or lacks the key."""
    from unlearnbench import config as ub_config

    try:
        return get(ub_config.load(Path(__file__).resolve().parents[1] / "config.yaml"))
    except (ub_config.ConfigError, KeyError):
        return fallback


def default_trials(model: str) -> int:
    """config.yaml's search trials per study of `model` (2 if unreadable)."""
    from unlearnbench import config as ub_config

    return from_config(lambda config: ub_config.search_trials(config, model), 2)


def default_seeds() -> int:
    """How many seeds config.yaml runs (3 if unreadable)."""
    return from_config(lambda config: len(config["seeds"]), 3)


def startup_seconds(repeats: int = 5) -> tuple[float, float]:
    """Median wall time of `python -c 'import unlearnbench.jobs.unlearn, unlearnbench.methods'`,
    and of a bare `python -c pass` for reference."""
    def run(code: str) -> float:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - t

    lib = [run("import unlearnbench.jobs.unlearn, unlearnbench.methods") for _ in range(repeats)]
    bare = [run("pass") for _ in range(repeats)]
    return statistics.median(lib), statistics.median(bare)


def part1(args) -> dict:
    from unlearnbench import data, evaluate, methods, models, runtime
    from unlearnbench.batches import Split, make_splits_on_device
    from unlearnbench.train import Recipe, train

    lib, bare = startup_seconds()
    log(f"job start-up: import unlearnbench.jobs.unlearn + methods {lib:.2f} s (bare python {bare:.2f} s)")
    t = time.perf_counter()
    spec = data.get_spec("digits", args.image_size or default_recipe().get("image_size"))
    pool = data.load_pool("digits", image_size=spec.image_size)
    idx = data.make_splits(pool.n_train, len(pool.labels))
    splits = make_splits_on_device(pool.images, pool.labels, idx, spec, torch.device("cpu"))
    t_data = time.perf_counter() - t
    log(f"data: digits at {spec.image_size}x{spec.image_size} decoded and split in {t_data:.2f} s: "
        + ", ".join(f"{k} {len(v)}" for k, v in splits.items()))
    train_split = Split(torch.cat([splits["retain"].images, splits["forget"].images]),
                        torch.cat([splits["retain"].labels, splits["forget"].labels]), spec)
    # the default workflow's random forget sets: a class-wise method (UNSIR, BS) runs no job there
    names = ([m for m in methods.names() if methods.applies(m, "random")] if args.methods == ["all"]
             else args.methods)
    out = {"startup": lib, "data": t_data}
    for name in args.models:
        net = models.build(name, spec.num_classes, spec.image_size, seed=0)
        recipe = Recipe.from_config({**default_recipe(), "epochs": args.epochs})
        seconds = train(net, train_split, recipe, runtime.seed_everything(0), args.precision,
                        progress=False)
        t = time.perf_counter()
        metrics = evaluate.evaluate(net, splits, args.precision)
        t_eval = time.perf_counter() - t
        log(f"{name}: train original ({len(train_split)} images x {args.epochs} epochs) {seconds:.1f} s "
            f"({len(train_split) * args.epochs / seconds:.0f} samples/s); evaluation {t_eval:.2f} s; "
            f"test acc {metrics['test_acc']:.3f}")
        unlearn = {}
        for method in names:
            model, s = methods.run(method, copy.deepcopy(net), splits, spec.num_classes, {},
                                   runtime.seed_everything(0), args.precision)
            unlearn[method] = s
            log(f"  {name} unlearn {method:7s} {s:7.2f} s   RTE {seconds / max(s, 1e-9):7.1f}")
        vals = sorted(unlearn.values())
        log(f"{name}: unlearning with defaults over {len(vals)} methods: median {statistics.median(vals):.1f} s, "
            f"mean {statistics.mean(vals):.1f} s, max {max(vals):.1f} s, sum {sum(vals):.0f} s")
        out[name] = {"train": seconds, "eval": t_eval, "unlearn": unlearn}
    # The default workflow (config.yaml) per model: per seed, original + retrained, every
    # method that applies unlearned and evaluated; a search of `trials` trials per method
    # (approximated by the default-hyperparameter run + an evaluation each); every job
    # pays the start-up. U-LiRA and the report are not in this sum.
    n_train, n_retain = len(train_split), len(splits["retain"])
    seeds = default_seeds()
    for name in args.models:
        m = out[name]
        u = sum(m["unlearn"].values())
        train_s = seeds * (m["train"] * (1 + n_retain / n_train) + 2 * m["eval"])
        unlearn_s = seeds * (u + len(m["unlearn"]) * m["eval"])
        trials = args.trials or default_trials(name)
        search_s = trials * (u + len(m["unlearn"]) * m["eval"])
        jobs = seeds * 2 + seeds * len(m["unlearn"]) + len(m["unlearn"])
        log(f"{name}: default workflow estimate: training {train_s:.0f} s, unlearning + evaluation "
            f"{unlearn_s:.0f} s, search ({trials} trials/method) {search_s:.0f} s, "
            f"{jobs} jobs x {lib:.1f} s start-up = {jobs * lib:.0f} s; "
            f"sum {train_s + unlearn_s + search_s + jobs * lib:.0f} s of one process")
    return out


# --------------------------------------------------------------------------- paper grid

DATASETS = {  # retain, forget, val, test, training epochs, image side (docs/protocol.md §1-3)
    "cifar10": (38250, 4250, 7500, 10000, 182, 32),
    "cifar100": (38250, 4250, 7500, 10000, 182, 32),
    "mnist": (45900, 5100, 9000, 10000, 50, 32),
    "fashion_mnist": (45900, 5100, 9000, 10000, 50, 32),
    "utkface": (14508, 1613, 2846, 4741, 50, 224),
}
FORWARD_FRACTION = 1 / 3  # an inference pass costs about a third of a training pass (forward + backward)


def forward_macs(name: str, side: int) -> int:
    """Multiply-accumulates of one forward pass (conv and linear layers), counted with hooks."""
    from unlearnbench import models

    model = models.build(name, 10, side, seed=0).eval()
    total = [0]

    def hook(mod, inp, out):
        if isinstance(mod, torch.nn.Conv2d):
            total[0] += out.numel() * (mod.in_channels // mod.groups) * mod.kernel_size[0] * mod.kernel_size[1]
        elif isinstance(mod, torch.nn.Linear):
            total[0] += out.numel() * mod.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        model(torch.zeros(1, 3, side, side))
    for h in handles:
        h.remove()
    return total[0]


def grid(args) -> None:
    """GPU hours of the paper grid (docs/protocol.md §7) under stated assumptions.

    Seconds per training sample-pass (forward + backward of one image) of a model at an
    image size = max(1 / rate32, 6 x forward MACs / achieved FLOP/s): small 32x32 inputs
    are bound by per-step overheads (ASSUMED rate32 for every model), 224x224 inputs by
    arithmetic (ASSUMED achieved FLOP/s). A search trial or final run is ASSUMED to take
    (E_max + 1) / 2 epochs over the retain set (the mean of a uniform epochs
    hyperparameter) plus one evaluation of the four splits."""
    seeds, n_methods, search_seeds, trials = 10, 18, 3, 100
    per_sample = {}
    for model in ("resnet18", "tinyvit11m"):
        for side in (32, 224):
            macs = forward_macs(model, side)
            per_sample[model, side] = max(1.0 / args.gpu_rate, 6.0 * macs / args.gpu_flops)
            log(f"{model} at {side}x{side}: {macs / 1e6:.0f} M MACs forward -> {1 / per_sample[model, side]:.0f} "
                f"training samples/s assumed")
    hours: dict[tuple[str, str], float] = {}

    def add(stage: str, where: str, seconds: float) -> None:
        hours[stage, where] = hours.get((stage, where), 0.0) + seconds / 3600

    for model in ("resnet18", "tinyvit11m"):
        for name, (r, f, v, t, epochs, side) in DATASETS.items():
            c = per_sample[model, side]
            emax = math.ceil(0.2 * epochs)
            eval_pass = (r + f + v + t) * FORWARD_FRACTION
            trial = (emax + 1) / 2 * r + eval_pass
            add("train O+R (10 seeds)", f"{model}/{name}", c * seeds * (epochs * (r + f) + epochs * r + 2 * eval_pass))
            add("search (3 seeds x 100 trials)", f"{model}/{name}", c * n_methods * search_seeds * trials * trial)
            add("final unlearn + eval (10 seeds)", f"{model}/{name}", c * n_methods * seeds * trial)
    # U-LiRA: cifar10, resnet18; 64 splits x 10 forget sets; 91 epochs; 6 methods (docs/protocol.md §6)
    c, inn, ret, pool = per_sample["resnet18", 32], 23750, 21375, 47500
    ul_trial = (math.ceil(0.2 * 91) + 1) / 2 * ret + pool * FORWARD_FRACTION
    add("ulira models + logits", "resnet18/cifar10",
        c * (64 * 91 * inn + 640 * 91 * ret + 6 * 640 * ul_trial + (64 + 640) * pool * FORWARD_FRACTION))
    add("ulira search (6 x 32 x 200)", "resnet18/cifar10", c * 6 * 32 * 200 * ul_trial)
    total = sum(hours.values())
    log(f"\npaper grid, GPU hours (assumed {args.gpu_rate:.0f} training samples/s at 32x32, "
        f"{args.gpu_flops / 1e12:.0f} TFLOP/s achieved at 224x224; not measured on a GPU)")
    for stage in dict.fromkeys(s for s, _ in hours):
        log(f"  {stage:34s} {sum(h for (s, _), h in hours.items() if s == stage):8.0f} GPU h")
    for where in dict.fromkeys(w for _, w in hours):
        log(f"  {where:34s} {sum(h for (_, w), h in hours.items() if w == where):8.0f} GPU h")
    log(f"  {'total':34s} {total:8.0f} GPU h")
    ref = 182 * 38250 / 1677
    log(f"  for scale: docs/protocol.md §8 reports a cifar10/resnet18 retraining by the reference code in 1,677 s "
        f"({ref:.0f} samples/s, unknown hardware); at that rate for 32x32 work the grid takes about "
        f"{total * args.gpu_rate / ref:.0f} GPU h if every stage slowed alike")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smallcnn only, 4 methods, 5 epochs")
    p.add_argument("--models", nargs="+", default=None)
    p.add_argument("--methods", nargs="+", default=None, help="method names or 'all' (default)")
    p.add_argument("--epochs", type=int, default=None,
                   help="training epochs (default: config.yaml's training.digits.epochs)")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--image-size", type=int, default=None, help="digits input size (default: config.yaml's)")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="as the config key")
    p.add_argument("--grid-only", action="store_true")
    p.add_argument("--trials", type=int, default=None,
                   help="search trials per method (default: config.yaml's search.trials of the model)")
    p.add_argument("--gpu-rate", type=float, default=20000.0,
                   help="ASSUMED training samples/s of one GPU on 32x32 inputs (overhead-bound)")
    p.add_argument("--gpu-flops", type=float, default=40e12,
                   help="ASSUMED achieved FLOP/s of one GPU on 224x224 inputs (arithmetic-bound)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    args.models = args.models or (["smallcnn"] if args.quick else ["smallcnn", "resnet18"])
    args.methods = args.methods or (["ft", "ga", "msg", "ct"] if args.quick else ["all"])
    args.epochs = args.epochs or (5 if args.quick else default_recipe().get("epochs", 20))
    log(f"machine: {machine()}")
    if not args.grid_only:
        part1(args)
    grid(args)


if __name__ == "__main__":
    main()
