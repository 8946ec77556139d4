"""RNI (7th in the NeurIPS 2023 challenge). Reset the classifier. In each of the first
E - fine_epochs epochs train only 9 randomly chosen parameter tensors whose names hold
no "bn" plus every tensor whose name holds "bn"; from epoch `reset_epoch` on, first draw
int(noise_ratio x 9) of that epoch's chosen tensors and add origin_noise * N(0, 1) to
those of them that no earlier epoch trained (as the reference's noise_optimize_group:
the draw comes first, the filter after). Each epoch is one CE pass over the retain set
with a fresh SGD; the last fine_epochs epochs train every tensor with the "fine" SGD,
whose lr is one number or a list indexed by the fine epoch (the reference's default is
the list in DEFAULTS; a search samples one number). docs/reference.md, RNI rows."""

from __future__ import annotations

import torch

from .. import models
from ..train import sgd
from ._loops import run_epoch
from ._spaces import base_space, suggest_epochs, suggest_lr, suggest_wd
from ._surgery import randn_like, reset_parameters, trainable_only

NAME = "rni"
LABEL = "RNI"
READS = ("retain",)
DEFAULTS = {
    "epochs": 9, "batch_size": 64, "lr": 2e-4, "momentum": 0.9, "weight_decay": 5e-4,
    "fine_epochs": 4, "reset_epoch": 1, "noise_ratio": 0.7, "origin_noise": 0.04,
    "fine_lr": [2e-4, 2e-4, 2e-4, 1e-3, 1e-3, 1e-4], "fine_momentum": 0.9, "fine_weight_decay": 5e-4,
}
LAYER_SELECT = 9


def search_space(trial, epoch_cap: int) -> dict:
    space = base_space(trial, epoch_cap)
    space.update({
        "fine_epochs": suggest_epochs(trial, "fine_epochs", epoch_cap),
        "reset_epoch": suggest_epochs(trial, "reset_epoch", epoch_cap),
        "fine_lr": suggest_lr(trial, "fine_lr"),
        "fine_weight_decay": suggest_wd(trial, "fine_weight_decay"),
        "noise_ratio": trial.suggest_float("noise_ratio", 0.0, 1.0),
        "origin_noise": trial.suggest_float("origin_noise", 0.0, 1.0),
    })
    return space


def _choose(items: list, count: int, generator: torch.Generator) -> list:
    """`count` distinct items drawn uniformly (kept in their original order)."""
    picked = torch.randperm(len(items), generator=generator)[: min(count, len(items))]
    return [items[i] for i in sorted(picked.tolist())]


def fine_lr_at(fine_lr, fine_epoch: int) -> float:
    """The fine-tuning lr of 0-based fine epoch `fine_epoch`: `fine_lr` itself, or its
    entry `fine_epoch` when it is a per-epoch list (the reference's default)."""
    if isinstance(fine_lr, (list, tuple)):
        return float(fine_lr[fine_epoch])
    return float(fine_lr)


def run(model, data, hp, generator, record: list | None = None):
    """RNI; `record`, when given, receives per epoch a dict with the chosen, the drawn,
    the perturbed and the trained tensor names (tests)."""
    epochs, fine_epochs = int(hp["epochs"]), int(hp["fine_epochs"])
    n_noise = int(hp["noise_ratio"] * LAYER_SELECT)
    first_fine = epochs - fine_epochs  # the reference indexes a list of fine lrs by ep - first_fine
    if isinstance(hp["fine_lr"], (list, tuple)) and min(epochs, fine_epochs) > 0 and len(hp["fine_lr"]) < fine_epochs:
        raise ValueError(f"RNI: fine_lr lists {len(hp['fine_lr'])} learning rates for {fine_epochs} fine epochs")
    reset_parameters(models.classifier_linear(model), generator)

    params = dict(model.named_parameters())
    bn_names = [n for n in params if "bn" in n]
    other_names = [n for n in params if "bn" not in n]
    trained_before: set[str] = set()  # the reference's already_select
    for epoch in range(epochs):
        model.train()
        if epoch < first_fine:
            chosen = _choose(other_names, LAYER_SELECT, generator)
            drawn, noised = [], []
            if epoch >= int(hp["reset_epoch"]):
                drawn = _choose(chosen, n_noise, generator)
                noised = [n for n in drawn if n not in trained_before]
                with torch.no_grad():
                    for name in noised:
                        params[name].add_(randn_like(params[name], generator), alpha=hp["origin_noise"])
            train_names = chosen + bn_names
            optimizer = sgd([params[n] for n in train_names], hp["lr"], hp["momentum"], hp["weight_decay"])
        else:
            chosen, drawn, noised, train_names = [], [], [], list(params)
            optimizer = sgd(list(params.values()), fine_lr_at(hp["fine_lr"], epoch - first_fine),
                            hp["fine_momentum"], hp["fine_weight_decay"])
        trained_before.update(train_names)
        if record is not None:
            record.append({"chosen": chosen, "drawn": drawn, "noised": noised, "trained": train_names,
                           "lr": optimizer.param_groups[0]["lr"]})
        with trainable_only(model, [params[n] for n in train_names]):
            run_epoch(model, data.retain, int(hp["batch_size"]), optimizer, generator)
    return model


def unlearn(model, data, hp, generator):
    return run(model, data, hp, generator)
