"""Building blocks the method modules share: optimisers, schedules, search spaces, loops."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..batches import Split
from ..train import cosine, sgd

__all__ = ["sgd", "cosine", "base_space", "run_epoch", "fine_tune", "BATCH_SIZES", "step_decay"]

BATCH_SIZES = (64, 128, 256)


def base_space(trial, epoch_cap: int) -> dict:
    """METHODS.md "base space": lr, weight decay log-uniform [1e-5, 1e-1], batch size in
    {64, 128, 256}, epochs int [1, E_max]; momentum stays 0.9."""
    return {
        "lr": trial.suggest_float("lr", 1e-5, 1e-1, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-5, 1e-1, log=True),
        "batch_size": trial.suggest_categorical("batch_size", list(BATCH_SIZES)),
        "epochs": trial.suggest_int("epochs", 1, max(1, int(epoch_cap))),
    }


def run_epoch(model: nn.Module, data: Split, batch_size: int, optimizer: torch.optim.Optimizer,
              generator: torch.Generator, loss_fn: Callable = F.cross_entropy, shuffle: bool = True,
              augment_data: bool = False) -> None:
    """One pass over `data`, one optimiser step per batch."""
    for x, y in data.batches(batch_size, shuffle=shuffle, generator=generator, augment_data=augment_data):
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def fine_tune(model: nn.Module, data: Split, hp: dict, generator: torch.Generator,
              schedule: str | None = "cosine", loss_fn: Callable = F.cross_entropy) -> nn.Module:
    """E epochs of SGD on `data` in train mode, optionally cosine-annealed per epoch."""
    optimizer = sgd(model.parameters(), hp["lr"], hp.get("momentum", 0.9), hp["weight_decay"])
    scheduler = cosine(optimizer, hp["epochs"]) if schedule == "cosine" else None
    model.train()
    for _ in range(int(hp["epochs"])):
        run_epoch(model, data, int(hp["batch_size"]), optimizer, generator, loss_fn)
        if scheduler is not None:
            scheduler.step()
    return model


def step_decay(optimizer: torch.optim.Optimizer, epochs: int, gamma: float) -> torch.optim.lr_scheduler.LambdaLR:
    """lr x gamma^n in 0-based epoch e, n = how many of int(0.5E), int(0.8E), int(0.9E)
    are <= e (SCRUB, CF-k). Coinciding milestones each count and a milestone of 0
    applies from the start, as in the reference's adjust_learning_rate."""
    milestones = [int(0.5 * epochs), int(0.8 * epochs), int(0.9 * epochs)]
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda e: gamma ** sum(m <= e for m in milestones))
