"""In-memory batches with batched augmentation.

A `Split` holds uint8 images (on the compute device) and labels. Batches are tensor
indexing; normalisation and augmentation (random crop with zero padding, horizontal
flip) are applied to the whole batch at once, drawing the same distribution as
torchvision's per-sample RandomCrop(padding=4) and RandomHorizontalFlip(0.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F

from .data import DatasetSpec

CROP_PADDING = 4


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Per-sample random crop of the zero-padded batch back to its size."""
    n, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    top = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(x.device)
    left = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(x.device)
    rows = (top[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (left[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    flip = (torch.rand(x.shape[0], generator=generator) < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def augment(x: torch.Tensor, kind: str, generator: torch.Generator) -> torch.Tensor:
    if kind == "crop_flip":
        return random_flip(random_crop(x, CROP_PADDING, generator), generator)
    if kind == "flip":
        return random_flip(x, generator)
    if kind == "none":
        return x
    raise ValueError(f"unknown augmentation '{kind}'")


@dataclass
class Split:
    """One split of a dataset, resident in memory (on the GPU when training there)."""

    images: torch.Tensor  # uint8 (N, 3, H, W)
    labels: torch.Tensor  # int64 (N,)
    spec: DatasetSpec

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def device(self) -> torch.device:
        return self.images.device

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.spec.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.spec.std, device=x.device).view(1, 3, 1, 1)
        x = (x.float().div_(255.0) - mean).div_(std)
        return x.contiguous(memory_format=torch.channels_last) if x.is_cuda else x

    def subset(self, index: torch.Tensor) -> "Split":
        index = index.to(self.images.device)
        return Split(self.images[index], self.labels[index], self.spec)

    def num_batches(self, batch_size: int) -> int:
        return len(batch_bounds(len(self), batch_size))

    def batches(self, batch_size: int, shuffle: bool = True, generator: torch.Generator | None = None,
                augment_data: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield normalised (x, y) batches; the last batch may be smaller (drop_last=False)."""
        n = len(self)
        if shuffle:
            order = torch.randperm(n, generator=generator).to(self.images.device)
        else:
            order = torch.arange(n, device=self.images.device)
        for start, stop in batch_bounds(n, batch_size):
            idx = order[start:stop]
            x = self.images[idx]
            if augment_data:
                x = augment(x, self.spec.augmentation, generator)
            yield self.normalise(x), self.labels[idx]


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """Batch boundaries; a trailing batch of one joins the previous one (BatchNorm in
    train mode cannot normalise a single sample)."""
    bounds = [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


def make_splits_on_device(pool_images: torch.Tensor, pool_labels: torch.Tensor, indices: dict,
                          spec: DatasetSpec, device: torch.device) -> dict[str, Split]:
    """Index the decoded pool once per split and move each split to the device."""
    out = {}
    for name, idx in indices.items():
        idx = torch.as_tensor(idx, dtype=torch.int64)
        out[name] = Split(pool_images[idx].to(device), pool_labels[idx].to(device), spec)
    return out
