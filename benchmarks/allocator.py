"""glibc malloc with the jobs' tunables (unlearnbench/allocator.py) against glibc's
defaults, side by side.

Each side runs in its own process (glibc reads GLIBC_TUNABLES when a process starts),
one thread, fp32, on the same synthetic 16x16 images (the default's digits size): FF's
Fisher pass over 1,100 images in batches of 64 and one training epoch with the project's
trainer, both on ResNet-18 (the default's heaviest job and its references). Runs
alternate between the sides and the medians are compared; the last line holds the
ratios (tuned / default; below 1 = faster). The numbers each side computes are the same.

    python benchmarks/allocator.py            # 3 repeats
    python benchmarks/allocator.py --quick    # 1 repeat
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from _common import base_parser, log, machine, median
from unlearnbench import allocator

CHILD = r"""
import json, time, resource, torch
torch.set_num_threads(1)
from _common import synthetic_images
from unlearnbench import data, models, runtime
from unlearnbench.batches import Split
from unlearnbench.methods import ff
from unlearnbench.train import Recipe, train

images, labels = synthetic_images(1100, size=16)
split = Split(images, labels, data.get_spec("cifar10", 16))
net = runtime.prepare_model(models.build("resnet18", 10, 16, seed=0), torch.device("cpu"), (3, 16, 16))
out = {}
start, usage = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
fisher = ff.fisher_diagonal(net, split, 64, 10)
out["ff_fisher"] = time.perf_counter() - start
start = time.perf_counter()
train(net, split, Recipe(epochs=1, batch_size=128), torch.Generator().manual_seed(0), progress=False)
out["train_epoch"] = time.perf_counter() - start
out["system_seconds"] = resource.getrusage(resource.RUSAGE_SELF).ru_stime - usage.ru_stime
out["checksum"] = float(sum(f.double().sum() for f in fisher))
print(json.dumps(out))
"""


def run_side(tuned: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k != allocator.VARIABLE}
    if tuned:
        env[allocator.VARIABLE] = allocator.tunables(None)
    here = os.path.dirname(os.path.abspath(__file__))
    env["PYTHONPATH"] = os.pathsep.join([here, env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    args = base_parser(__doc__.split("\n\n")[0]).parse_args()
    repeats = args.repeats or (1 if args.quick else 3)
    log(f"machine: {machine()}")
    runs = {"default": [], "tuned": []}
    for _ in range(repeats):
        for side in runs:
            runs[side].append(run_side(side == "tuned"))
            log(side, json.dumps(runs[side][-1]))
    if len({r["checksum"] for side in runs.values() for r in side}) != 1:
        raise SystemExit("the two sides computed different Fisher diagonals")
    medians = {side: {k: median([r[k] for r in rs]) for k in ("ff_fisher", "train_epoch", "system_seconds")}
               for side, rs in runs.items()}
    for side, m in medians.items():
        log(f"{side}: FF Fisher pass {m['ff_fisher']:.2f} s, training epoch {m['train_epoch']:.2f} s, "
            f"system time {m['system_seconds']:.2f} s")
    log("ratios (tuned / default): " + ", ".join(
        f"{k} {medians['tuned'][k] / medians['default'][k]:.2f}" for k in ("ff_fisher", "train_epoch")))


if __name__ == "__main__":
    main()
