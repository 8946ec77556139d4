"""Search-space pieces every method's `search_space` is built from (docs/methods.md):
lr and weight decay log-uniform [1e-5, 1e-1], batch size in {64, 128, 256}, epochs int
[1, E_max]."""

from __future__ import annotations

BATCH_SIZES = (64, 128, 256)


def suggest_lr(trial, name: str) -> float:
    return trial.suggest_float(name, 1e-5, 1e-1, log=True)


def suggest_wd(trial, name: str) -> float:
    return trial.suggest_float(name, 1e-5, 1e-1, log=True)


def suggest_batch(trial, name: str = "batch_size") -> int:
    return trial.suggest_categorical(name, list(BATCH_SIZES))


def suggest_epochs(trial, name: str, epoch_cap: int) -> int:
    return trial.suggest_int(name, 1, max(1, int(epoch_cap)))


def base_space(trial, epoch_cap: int) -> dict:
    """The base space (docs/methods.md#base-space): lr, weight decay log-uniform [1e-5, 1e-1], batch size in
    {64, 128, 256}, epochs int [1, E_max]; momentum stays 0.9."""
    return {
        "lr": suggest_lr(trial, "lr"),
        "weight_decay": suggest_wd(trial, "weight_decay"),
        "batch_size": suggest_batch(trial, "batch_size"),
        "epochs": suggest_epochs(trial, "epochs", epoch_cap),
    }
