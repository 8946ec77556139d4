"""Shared by the benchmarks: cifar10-like data, the common DataLoader idiom, timing.

"The idiom" is what most PyTorch image-classification code does (torchvision's CIFAR10
dataset class, the reference implementations of most unlearning papers): a Dataset
holding HWC uint8 arrays that builds a PIL image per sample and applies torchvision
transforms to it, batched by a DataLoader with worker processes. The `v2` variant
applies torchvision.transforms.v2 to uint8 CHW tensors instead of PIL images.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from unlearnbench import data as ub_data
from unlearnbench.batches import Split

CIFAR10_SIZES = {"retain": 38250, "forget": 4250, "val": 7500, "test": 10000}  # docs/protocol.md §2


def machine() -> str:
    import platform

    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"python {platform.python_version()}, load average at start {load:.1f}")


def synthetic_images(n: int, seed: int = 0, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """cifar10-like data: n uint8 (3, size, size) images with smooth structure and 10
    labels (per-class colour templates plus noise), so the models can learn something."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (n,), generator=g)
    templates = torch.rand(10, 3, 4, 4, generator=g)
    low = templates[labels] + 0.35 * torch.rand(n, 3, 4, 4, generator=g)
    x = torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)
    x = x + 0.1 * torch.rand(n, 3, size, size, generator=g)
    x = (x / x.amax(dim=(1, 2, 3), keepdim=True) * 255).round().clamp(0, 255).to(torch.uint8)
    return x.contiguous(), labels


def cifar10_like_splits(scale: float, seed: int = 0) -> dict[str, Split]:
    """Splits with cifar10's proportions (docs/protocol.md §2) times `scale`, cifar10's spec
    (crop + flip augmentation, cifar10 normalisation)."""
    spec = ub_data.get_spec("cifar10")
    sizes = {k: max(16, round(v * scale)) for k, v in CIFAR10_SIZES.items()}
    images, labels = synthetic_images(sum(sizes.values()), seed)
    out, start = {}, 0
    for name, n in sizes.items():
        out[name] = Split(images[start:start + n].clone(), labels[start:start + n].clone(), spec)
        start += n
    return out


def digits_splits() -> dict[str, Split]:
    """The embedded default's real splits (scikit-learn digits upsampled to 32x32),
    with cifar10's augmentation so crop + flip is exercised."""
    import dataclasses

    pool = ub_data.load_pool("digits")
    idx = ub_data.make_splits(pool.n_train, len(pool.labels))
    spec = dataclasses.replace(ub_data.get_spec("digits"), augmentation="crop_flip")
    return {k: Split(pool.images[torch.from_numpy(v)], pool.labels[torch.from_numpy(v)], spec) for k, v in idx.items()}


class IdiomDataset(Dataset):
    """Per-sample transforms, like torchvision.datasets.CIFAR10: HWC uint8 array ->
    PIL image -> transform (pil), or CHW uint8 tensor -> transform (v2)."""

    def __init__(self, split: Split, transform, kind: str = "pil"):
        self.kind = kind
        self.labels = split.labels.tolist()
        if kind == "pil":
            self.data = split.images.permute(0, 2, 3, 1).contiguous().numpy()  # N, H, W, C
        else:
            self.data = split.images.contiguous()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        if self.kind == "pil":
            from PIL import Image

            img = Image.fromarray(self.data[i])
        else:
            img = self.data[i]
        return self.transform(img), self.labels[i]


def idiom_transform(spec, train: bool, kind: str = "pil"):
    """RandomCrop(32, padding=4) + RandomHorizontalFlip() (train) + ToTensor + Normalize."""
    size = spec.image_size
    if kind == "pil":
        from torchvision import transforms as T

        aug = [T.RandomCrop(size, padding=4), T.RandomHorizontalFlip()] if train else []
        return T.Compose(aug + [T.ToTensor(), T.Normalize(spec.mean, spec.std)])
    from torchvision.transforms import v2

    aug = [v2.RandomCrop(size, padding=4), v2.RandomHorizontalFlip()] if train else []
    return v2.Compose(aug + [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(spec.mean), list(spec.std))])


def idiom_loader(split: Split, batch_size: int, workers: int, train: bool, kind: str = "pil",
                 seed: int = 0, persistent: bool = False) -> DataLoader:
    ds = IdiomDataset(split, idiom_transform(split.spec, train, kind), kind)
    return DataLoader(ds, batch_size=batch_size, shuffle=train, num_workers=workers,
                      persistent_workers=persistent and workers > 0,
                      generator=torch.Generator().manual_seed(seed))


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (DataLoader workers)."""
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class Timing:
    """Wall and CPU seconds of repeated runs of one side."""

    def __init__(self):
        self.wall, self.cpu = [], []

    def run(self, fn, *args, **kwargs):
        import gc

        c0, t0 = cpu_seconds(), time.perf_counter()
        out = fn(*args, **kwargs)
        gc.collect()  # shut down any DataLoader workers now, so their CPU time is counted
        self.wall.append(time.perf_counter() - t0)
        self.cpu.append(cpu_seconds() - c0)
        return out


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    t = Timing()
    out = t.run(fn, *args, **kwargs)
    return t.wall[0], out


def median(values) -> float:
    return float(statistics.median(values))


def base_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="a short run (smaller data, fewer repeats)")
    p.add_argument("--models", nargs="+", default=["resnet18", "smallcnn"])
    p.add_argument("--data", choices=["synthetic", "digits"], default="synthetic",
                   help="synthetic cifar10-like images (default) or the embedded digits splits")
    p.add_argument("--workers", default="auto",
                   help="DataLoader workers for the idiom: an integer, or 'auto' (default) to measure 0, 1, 2 "
                        "and use the best")
    p.add_argument("--transforms", choices=["auto", "pil", "v2"], default="auto",
                   help="the idiom's per-sample transforms: PIL (torchvision.transforms), tensor v2, or 'auto' "
                        "(default) to measure both and use the faster")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats per side (alternating)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads in the main process")
    return p


def log(*args) -> None:
    print(*args, flush=True)
    sys.stdout.flush()


def idiom_configs(args) -> list[tuple[str, int]]:
    """The (transforms, workers) settings of the idiom to measure (more than one: search)."""
    kinds = ["pil", "v2"] if args.transforms == "auto" else [args.transforms]
    workers = [0, 1, 2] if args.workers == "auto" else [int(args.workers)]
    return [(k, w) for k in kinds for w in workers]


def search_idiom(configs, run, label: str, rounds: int = 2) -> tuple[str, int]:
    """Time `run(kind, workers)` for each setting, alternating the order; return the
    fastest setting by median seconds (no search when there is one setting)."""
    if len(configs) == 1:
        return configs[0]
    seconds = {c: [] for c in configs}
    for r in range(rounds):
        for c in (configs if r % 2 == 0 else list(reversed(configs))):
            dt, _ = timed(run, *c)
            seconds[c].append(dt)
    best = min(configs, key=lambda c: median(seconds[c]))
    log(f"{label}: idiom settings, median s over {rounds} runs: "
        + ", ".join(f"{k}/{w} workers {median(v):.2f}" for (k, w), v in seconds.items())
        + f" -> {best[0]} transforms, {best[1]} workers")
    return best
