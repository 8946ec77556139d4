"""Training throughput: the project's trainer vs the common DataLoader idiom.

Both sides train the same initial model on the same data for the same number of steps
with the same recipe (SGD lr 0.1, momentum 0.9, weight decay 5e-4, cosine annealing per
epoch, batch 256, random crop 32 with 4 px zero padding + horizontal flip, cifar10
normalisation):

  project  unlearnbench.train.train on a batches.Split (uint8 tensor in memory, batched
           augmentation, no workers)
  idiom    a Dataset applying torchvision transforms per sample (PIL, or v2 on tensors),
           a DataLoader with its best worker count (0, 1, 2 measured here unless
           --workers says), the same optimiser and schedule, NCHW model

The models are as built, without the jobs' one-pixel convolution patch
(cpu_rewrites.dense_small_map_convs, measured by benchmarks/small_map_convs.py), so the
project side's samples/s is the machine-speed figure that docs/performance.md compares
machines by, the same code path on every machine and version.

Runs alternate between the sides (order swapped every repeat) and the medians are
compared, because the machine may be shared. Prints samples/s of each and the ratio
per model; the last line holds the ratios.

    python benchmarks/train_throughput.py            # full run
    python benchmarks/train_throughput.py --quick    # a short run
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from _common import (base_parser, cifar10_like_splits, digits_splits, idiom_configs, idiom_loader, log, machine,
                     median, search_idiom, Timing)
from unlearnbench import models
from unlearnbench.batches import Split
from unlearnbench.train import Recipe, cosine, sgd, train


def project_train(model, split: Split, epochs: int, batch_size: int, seed: int) -> float:
    recipe = Recipe(epochs=epochs, batch_size=batch_size)
    return train(model, split, recipe, torch.Generator().manual_seed(seed), progress=False)


def idiom_train(model, split: Split, epochs: int, batch_size: int, workers: int, kind: str, seed: int) -> None:
    """The textbook loop: DataLoader over per-sample transforms, same optimiser/schedule."""
    loader = idiom_loader(split, batch_size, workers, train=True, kind=kind, seed=seed, persistent=True)
    optimizer = sgd(model.parameters(), 0.1, 0.9, 5e-4)
    scheduler = cosine(optimizer, epochs)
    model.train()
    for _ in range(epochs):
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        scheduler.step()


def main() -> None:
    p = base_parser(__doc__.split("\n\n")[0])
    p.add_argument("--train-size", type=int, default=None, help="training images (default 2560, quick 1024)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per timed run (default 2, quick 1)")
    p.add_argument("--batch-size", type=int, default=256)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    n = args.train_size or (1024 if args.quick else 2560)
    epochs = args.epochs or (1 if args.quick else 2)
    repeats = args.repeats or (2 if args.quick else 3)
    if args.data == "digits":
        splits = digits_splits()
        split = Split(torch.cat([splits["retain"].images, splits["forget"].images]),
                      torch.cat([splits["retain"].labels, splits["forget"].labels]), splits["retain"].spec)
    else:
        split = cifar10_like_splits(1.0)["retain"]
        split = Split(split.images[:n].clone(), split.labels[:n].clone(), split.spec)
    samples = epochs * len(split)
    log(f"machine: {machine()}")
    log(f"data: {args.data}, {len(split)} images 3x32x32, augmentation {split.spec.augmentation}, "
        f"batch {args.batch_size}, {epochs} epoch(s) = {samples} samples per timed run, {repeats} repeats per side")
    ratios = {}
    for name in args.models:
        init = models.build(name, split.spec.num_classes, 32, seed=0)
        fresh = lambda: copy.deepcopy(init)  # noqa: E731

        # warm-up of both paths (allocator, oneDNN primitive caches), untimed
        small = Split(split.images[:2 * args.batch_size], split.labels[:2 * args.batch_size], split.spec)
        project_train(fresh(), small, 1, args.batch_size, 1)
        for k in ("pil", "v2"):
            idiom_train(fresh(), small, 1, args.batch_size, 0, k, 1)

        kind, workers = search_idiom(
            idiom_configs(args), lambda k, w: idiom_train(fresh(), split, 1, args.batch_size, w, k, 0),
            f"{name} (1 epoch each)")

        times = {"project": Timing(), "idiom": Timing()}
        for rep in range(repeats):
            order = ("project", "idiom") if rep % 2 == 0 else ("idiom", "project")
            for side in order:
                if side == "project":
                    times[side].run(project_train, fresh(), split, epochs, args.batch_size, 0)
                else:
                    times[side].run(idiom_train, fresh(), split, epochs, args.batch_size, workers, kind, 0)
                dt, cpu = times[side].wall[-1], times[side].cpu[-1]
                log(f"  {name} {side:8s} run {rep + 1}: {dt:7.2f} s  {samples / dt:8.1f} samples/s  "
                    f"(CPU {cpu:6.2f} s, {samples / cpu:7.1f} samples per CPU-s)")
        proj, idiom = samples / median(times["project"].wall), samples / median(times["idiom"].wall)
        ratios[name] = proj / idiom
        cpu_ratio = median(times["idiom"].cpu) / median(times["project"].cpu)
        log(f"{name}: project {proj:.1f} samples/s, idiom ({kind}, {workers} workers) {idiom:.1f} "
            f"samples/s, ratio {ratios[name]:.2f}x (medians of {repeats}); CPU-time ratio {cpu_ratio:.2f}x")
    log("RATIOS train (project / idiom samples/s): "
        + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
