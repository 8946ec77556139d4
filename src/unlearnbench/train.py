"""The training recipe shared by original, retrained and shadow models (docs/protocol.md §3).

SGD (lr 0.1, momentum 0.9, weight decay 5e-4), cross-entropy, cosine annealing over
the epochs stepped per epoch, batch 256 (utkface 128), augmentation on.

Speed (benchmarks/train_throughput.py): batches come from the in-memory split with
batched augmentation (batches.py); the SGD update is torch's fused kernel (one pass
over each tensor instead of one per term; the same update up to float rounding); on
CPU the weights are channels_last while training (oneDNN's faster layout; the layout
is restored afterwards). On CUDA the model is channels_last already
(runtime.prepare_model) and bf16 autocast is used when the precision asks.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from .batches import Split
from .runtime import autocast, channels_last


@dataclass(frozen=True)
class Recipe:
    epochs: int
    batch_size: int = 256
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    augment: bool = True

    @classmethod
    def from_config(cls, cfg: dict) -> "Recipe":
        return cls(**{k: cfg[k] for k in cls.__dataclass_fields__ if k in cfg})


def sgd(params, lr: float, momentum: float = 0.9, weight_decay: float = 5e-4) -> torch.optim.SGD:
    """torch.optim.SGD with the fused update where every parameter's device supports it."""
    params, fused = _fusable(params)
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, fused=fused or None)


def adam(params, lr: float, weight_decay: float = 0.0) -> torch.optim.Adam:
    """torch.optim.Adam (default betas and eps) with the fused update where every
    parameter's device supports it: the same update up to float rounding, and on CPU a
    ResNet-18 step takes 14 ms instead of the per-tensor loop's 55 (one thread, machine C
    of docs/performance.md)."""
    params, fused = _fusable(params)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=fused or None)


_FUSED_DEVICES = ("cpu", "cuda")


def _fusable(params) -> tuple[list, bool]:
    """The parameters (or groups) as a list, and whether torch's fused optimiser kernels
    support all of them."""
    params = [{**p, "params": list(p["params"])} if isinstance(p, dict) else p for p in params]
    tensors = [t for p in params for t in (p["params"] if isinstance(p, dict) else [p])]
    return params, bool(tensors) and all(t.device.type in _FUSED_DEVICES and t.is_floating_point() for t in tensors)


def cosine(optimizer: torch.optim.Optimizer, epochs: int) -> torch.optim.lr_scheduler.CosineAnnealingLR:
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(int(epochs), 1))


def train(model: nn.Module, data: Split, recipe: Recipe, generator: torch.Generator,
          precision: str = "fp32", desc: str = "train", progress: bool = True) -> float:
    """Train `model` in place with the recipe; return the wall time in seconds."""
    model.train()
    sync(data.device)
    start = time.perf_counter()
    with channels_last(model, enabled=data.device.type == "cpu"):
        optimizer = sgd(model.parameters(), recipe.lr, recipe.momentum, recipe.weight_decay)
        scheduler = cosine(optimizer, recipe.epochs)
        for _ in tqdm(range(recipe.epochs), desc=desc, unit="epoch", file=sys.stderr, disable=not progress,
                      mininterval=5):
            for x, y in data.batches(recipe.batch_size, shuffle=True, generator=generator,
                                     augment_data=recipe.augment):
                with autocast(data.device, precision):
                    loss = F.cross_entropy(model(x), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            scheduler.step()
    sync(data.device)
    return time.perf_counter() - start


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
