"""Training with one-pixel convolutions as linear layers (cpu_rewrites.dense_small_map_convs)
against the convolutions themselves, side by side.

Both sides train copies of the same ResNet-18 on the same synthetic images with the
project's trainer (unlearnbench.train.train: SGD, channels_last weights, batched
augmentation), one thread, fp32; the only difference is whether the convolutions whose
output is one pixel on a map smaller than their kernel were patched. Runs alternate
between the sides and the medians are compared. Prints samples/s per side and input
size; the last line holds the ratios (patched / plain).

    python benchmarks/small_map_convs.py            # 8, 16 and 32 pixels, 3 repeats
    python benchmarks/small_map_convs.py --quick    # 16 pixels, 2 repeats
"""

from __future__ import annotations

import copy

import torch

from _common import Timing, base_parser, log, machine, median, synthetic_images
from unlearnbench import cpu_rewrites, data, models
from unlearnbench.batches import Split
from unlearnbench.train import Recipe, train


def main() -> None:
    p = base_parser(__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=None, help="input sizes (default 8 16 32; quick 16)")
    p.add_argument("--train-size", type=int, default=1024)
    p.add_argument("--batch-size", type=int, default=128)
    args = p.parse_args()
    torch.set_num_threads(1)
    sizes = args.sizes or ([16] if args.quick else [8, 16, 32])
    repeats = args.repeats or (2 if args.quick else 3)
    log(f"machine: {machine()}")
    ratios = {}
    for size in sizes:
        images, labels = synthetic_images(args.train_size, size=size)
        split = Split(images, labels, data.get_spec("cifar10", size))
        plain = models.build("resnet18", 10, size, seed=0)
        patched = copy.deepcopy(plain)
        names = cpu_rewrites.dense_small_map_convs(patched, (3, size, size))
        recipe = Recipe(epochs=1, batch_size=args.batch_size)
        sides = {"plain": plain, "patched": patched}
        for net in sides.values():  # warm-up (allocator, oneDNN primitive caches), untimed
            train(copy.deepcopy(net), Split(images[:256], labels[:256], split.spec), recipe,
                  torch.Generator().manual_seed(1), progress=False)
        times = {side: Timing() for side in sides}
        for rep in range(repeats):
            for side in (("plain", "patched") if rep % 2 == 0 else ("patched", "plain")):
                times[side].run(train, copy.deepcopy(sides[side]), split, recipe, torch.Generator().manual_seed(0),
                                progress=False)
        rate = {side: len(split) / median(t.wall) for side, t in times.items()}
        ratios[size] = rate["patched"] / rate["plain"]
        log(f"resnet18 {size}x{size}, batch {args.batch_size}: {len(names)} convolutions patched; plain "
            f"{rate['plain']:.0f} samples/s, patched {rate['patched']:.0f} samples/s, ratio {ratios[size]:.2f}x "
            f"(medians of {repeats})")
    log("RATIOS train (patched / plain samples/s): " + ", ".join(f"{k}x{k} {v:.2f}x" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
