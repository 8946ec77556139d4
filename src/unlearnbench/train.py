"""The training recipe shared by original, retrained and shadow models (PAPER.md §3).

SGD (lr 0.1, momentum 0.9, weight decay 5e-4), cross-entropy, cosine annealing over
the epochs stepped per epoch, batch 256 (utkface 128), augmentation on.
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
from .runtime import autocast


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
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def cosine(optimizer: torch.optim.Optimizer, epochs: int) -> torch.optim.lr_scheduler.CosineAnnealingLR:
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(int(epochs), 1))


def train(model: nn.Module, data: Split, recipe: Recipe, generator: torch.Generator,
          precision: str = "fp32", desc: str = "train", progress: bool = True) -> float:
    """Train `model` in place with the recipe; return the wall time in seconds."""
    optimizer = sgd(model.parameters(), recipe.lr, recipe.momentum, recipe.weight_decay)
    scheduler = cosine(optimizer, recipe.epochs)
    model.train()
    sync(data.device)
    start = time.perf_counter()
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
