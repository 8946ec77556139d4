"""Evaluation throughput: the project's evaluate vs a per-metric DataLoader idiom.

Both sides compute every metric of docs/protocol.md §4 for one model: top-1 accuracy on retain,
forget, val and test, per-sample cross-entropy losses on forget, val and test, and the
val and test population MIA (unlearnbench.attacks.mia, the same function on both sides).

  project  unlearnbench.evaluate.evaluate: one forward pass per split over the in-memory
           uint8 split in large batches, accuracy and losses from the same logits
           (inference_mode; on CPU BatchNorm folded into channels_last convolutions)
  idiom    a Dataset with per-sample torchvision transforms (ToTensor + Normalize) and a
           DataLoader (batch --idiom-batch, its best worker count), one pass per metric
           and split, as docs/performance.md#the-idiom defines it: an accuracy pass on each of the 4
           splits, then each MIA's two loss passes (val MIA: forget and val; test MIA:
           forget and test), 8 passes under torch.no_grad()

Runs alternate between the sides (order swapped every repeat); medians are compared.
The last line holds the ratios. The idiom runs in fp32; the project side runs in
--precision (fp32 by default, like for like; `auto` is what config.yaml runs: bf16
autocast where the CPU computes bf16 natively).

    python benchmarks/eval_throughput.py            # cifar10 proportions at 1/10 scale
    python benchmarks/eval_throughput.py --quick    # 1/25 scale, fewer repeats
    python benchmarks/eval_throughput.py --precision auto   # the project as config.yaml runs it
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from _common import (base_parser, cifar10_like_splits, digits_splits, idiom_configs, idiom_loader, log, machine,
                     median, search_idiom, Timing)
from unlearnbench import models, runtime
from unlearnbench.attacks.mia import mia_accuracy
from unlearnbench.evaluate import evaluate

NAMES = ("retain", "forget", "val", "test")


@torch.no_grad()
def accuracy(model, loader) -> float:
    correct = total = 0
    for x, y in loader:
        correct += (model(x).argmax(1) == y).sum().item()
        total += len(y)
    return correct / total


@torch.no_grad()
def losses(model, loader):
    return torch.cat([F.cross_entropy(model(x), y, reduction="none") for x, y in loader]).double().numpy()


def idiom_evaluate(model, splits, batch_size: int, workers: int, kind: str) -> dict:
    loaders = {name: idiom_loader(splits[name], batch_size, workers, train=False, kind=kind) for name in NAMES}
    model.eval()
    out = {f"{name}_acc": accuracy(model, loaders[name]) for name in NAMES}
    for population in ("val", "test"):  # each MIA makes its own passes over its two splits
        out[f"{population}_mia"] = mia_accuracy(losses(model, loaders["forget"]), losses(model, loaders[population]))
    return out


def trained(name: str, splits, steps: int):
    """A briefly trained model (so the metrics are not those of a constant classifier)."""
    from unlearnbench.train import Recipe, train

    model = models.build(name, splits["retain"].spec.num_classes, 32, seed=0)
    retain = splits["retain"]
    part = retain.subset(torch.arange(min(len(retain), steps * 128)))
    train(model, part, Recipe(epochs=1, batch_size=128), torch.Generator().manual_seed(0), progress=False)
    return model.eval()


def main() -> None:
    p = base_parser(__doc__.split("\n\n")[0])
    p.add_argument("--scale", type=float, default=None,
                   help="fraction of cifar10's split sizes (38250/4250/7500/10000); default 0.1, quick 0.04")
    p.add_argument("--idiom-batch", type=int, default=256, help="the idiom's evaluation batch size")
    p.add_argument("--precision", choices=["fp32", "bf16", "auto"], default="fp32",
                   help="the project side's precision (the idiom: fp32)")
    args = p.parse_args()
    precision = runtime.resolve_precision(args.precision, torch.device("cpu"))
    torch.set_num_threads(args.threads)
    scale = args.scale or (0.04 if args.quick else 0.1)
    repeats = args.repeats or (3 if args.quick else 5)
    splits = digits_splits() if args.data == "digits" else cifar10_like_splits(scale)
    total = sum(len(splits[k]) for k in NAMES)
    log(f"machine: {machine()}")
    log(f"data: {args.data}, splits " + ", ".join(f"{k} {len(splits[k])}" for k in NAMES)
        + f" ({total} images 3x32x32); idiom batch {args.idiom_batch}; "
        f"{repeats} repeats per side; project precision {precision} ({args.precision}), idiom fp32")
    ratios = {}
    for name in args.models:
        model = trained(name, splits, steps=4 if args.quick else 8)
        # warm-up, untimed; the two sides must agree on every metric
        ours = evaluate(model, splits, precision)
        diff = 0.0
        for k in ("pil", "v2"):
            theirs = idiom_evaluate(model, splits, args.idiom_batch, 0, k)
            diff = max(diff, max(abs(ours[m] - theirs[m]) for m in theirs))
        log(f"{name}: metrics {({k: round(float(v), 4) for k, v in ours.items()})}; max |project - idiom| = {diff:.2g}")

        kind, workers = search_idiom(
            idiom_configs(args), lambda k, w: idiom_evaluate(model, splits, args.idiom_batch, w, k), name)

        times = {"project": Timing(), "idiom": Timing()}
        for rep in range(repeats):
            order = ("project", "idiom") if rep % 2 == 0 else ("idiom", "project")
            for side in order:
                if side == "project":
                    times[side].run(evaluate, model, splits, precision)
                else:
                    times[side].run(idiom_evaluate, model, splits, args.idiom_batch, workers, kind)
                dt, cpu = times[side].wall[-1], times[side].cpu[-1]
                log(f"  {name} {side:8s} run {rep + 1}: {dt:6.2f} s  {total / dt:8.1f} images/s  (CPU {cpu:6.2f} s)")
        proj, idiom = median(times["project"].wall), median(times["idiom"].wall)
        ratios[name] = idiom / proj
        cpu_ratio = median(times["idiom"].cpu) / median(times["project"].cpu)
        log(f"{name}: project {proj:.2f} s ({total / proj:.0f} images/s), idiom ({kind}, {workers} workers) "
            f"{idiom:.2f} s ({total / idiom:.0f} images/s), ratio {ratios[name]:.2f}x (medians of {repeats}); "
            f"CPU-time ratio {cpu_ratio:.2f}x")
    log(f"RATIOS eval (project in {precision} / idiom in fp32 images/s, all metrics of one model): "
        + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
