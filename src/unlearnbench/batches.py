"""In-memory batches with batched augmentation.

A `Split` holds uint8 images (on the compute device) and labels. Batches are tensor
indexing; normalisation and augmentation (random crop with zero padding, horizontal
flip) are applied to the whole batch at once, drawing the same distribution as
torchvision's per-sample RandomCrop(padding=4) and RandomHorizontalFlip(0.5)
(tests/test_augmentation.py checks it).

Speed notes (benchmarks/train_throughput.py measures them): the crop is one gather of
each sample's window from a strided view of the padded batch (no per-pixel index
tensors), the flip touches only the flipped samples, and normalisation is one
conversion plus in-place arithmetic that gives the same bits as torchvision's
ToTensor() + Normalize(). The random offsets and flips are drawn on the CPU generator
(reproducible on every device) and moved to the data's device.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator

import torch
import torch.nn.functional as F

from .data import DatasetSpec

CROP_PADDING = 4


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Move a small CPU tensor (random draws) to `device`; on CUDA through pinned memory
    without blocking, so the host keeps queueing work while the GPU runs."""
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def _draw(high: int, n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return to_device(torch.randint(0, high, (n,), generator=generator), device)


def crop_at(x: torch.Tensor, padding: int, top: torch.Tensor, left: torch.Tensor) -> torch.Tensor:
    """Crop sample i of the zero-padded batch at (top[i], left[i]) back to the input size.

    The padded batch is viewed (no copy) as every (top, left) window of every sample,
    shape (n, 2p+1, 2p+1, c, h, w); indexing picks one window per sample.
    """
    n, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    sn, sc, sh, sw = padded.stride()
    k = 2 * padding + 1
    windows = padded.as_strided((n, k, k, c, h, w), (sn, sh, sw, sc, sh, sw))
    return windows[torch.arange(n, device=x.device), top.to(x.device), left.to(x.device)]


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator | None) -> torch.Tensor:
    """Per-sample random crop of the zero-padded batch back to its size; each of the
    (2p+1)^2 offsets is equally likely, like torchvision's RandomCrop(size, padding=p)."""
    n = x.shape[0]
    top = _draw(2 * padding + 1, n, generator, x.device)
    left = _draw(2 * padding + 1, n, generator, x.device)
    return crop_at(x, padding, top, left)


def flip_where(x: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Horizontally flip the samples where `flip` is true (a new tensor; `x` is untouched)."""
    flip = to_device(flip, x.device)
    if x.device.type != "cpu":  # no nonzero(): it would wait for the device
        return torch.where(flip[:, None, None, None], x.flip(-1), x)
    index = flip.nonzero().squeeze(1)
    out = x.clone()
    if len(index):
        out.index_copy_(0, index, x.index_select(0, index).flip(-1))
    return out


def random_flip(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Flip each sample with probability 0.5, like torchvision's RandomHorizontalFlip()."""
    flip = torch.rand(x.shape[0], generator=generator) < 0.5
    return flip_where(x, flip)


def augment(x: torch.Tensor, kind: str, generator: torch.Generator | None) -> torch.Tensor:
    """Batched training augmentation of uint8 images: a new tensor ("none": `x` itself,
    nothing drawn). Draw order on `generator`: crop tops, crop lefts, then flips (n
    values each)."""
    if kind == "crop_flip":
        return random_flip(random_crop(x, CROP_PADDING, generator), generator)
    if kind == "flip":
        return random_flip(x, generator)
    if kind == "none":
        return x
    raise ValueError(f"unknown augmentation '{kind}'")


@lru_cache(maxsize=64)
def _mean_std(mean: tuple, std: tuple, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalisation constants, built once per device (no host-to-device copy per batch)."""
    as_t = lambda v: torch.tensor(v, dtype=torch.float32, device=device).view(1, -1, 1, 1)  # noqa: E731
    return as_t(mean), as_t(std)


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
        """uint8 images -> float (x / 255 - mean) / std, bit-identical to torchvision's
        ToTensor() + Normalize(mean, std); channels_last on CUDA."""
        mean, std = _mean_std(tuple(self.spec.mean), tuple(self.spec.std), x.device)
        layout = torch.channels_last if x.is_cuda and x.dim() == 4 else torch.preserve_format
        out = x.to(dtype=torch.float32, memory_format=layout, copy=True)  # never the caller's tensor
        return out.div_(255.0).sub_(mean).div_(std)

    def subset(self, index: torch.Tensor) -> "Split":
        index = index.to(self.images.device)
        return Split(self.images[index], self.labels[index], self.spec)

    def num_batches(self, batch_size: int) -> int:
        return len(batch_bounds(len(self), batch_size))

    def batches(self, batch_size: int, shuffle: bool = True, generator: torch.Generator | None = None,
                augment_data: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield normalised (x, y) batches; the last batch may be smaller (drop_last=False).

        With shuffle, the order is one randperm(n) draw on `generator`, then (when
        augmenting) each batch's augmentation draws, batch after batch."""
        n = len(self)
        order = to_device(torch.randperm(n, generator=generator), self.device) if shuffle else None
        for start, stop in batch_bounds(n, batch_size):
            if order is None:  # in order: slices, no gather (augment and normalise copy x)
                x, y = self.images[start:stop], self.labels[start:stop].clone()
            else:
                idx = order[start:stop]
                x, y = self.images[idx], self.labels[idx]
            if augment_data:
                x = augment(x, self.spec.augmentation, generator)
            yield self.normalise(x), y


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
