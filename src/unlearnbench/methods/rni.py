"""RNI (7th in the NeurIPS 2023 challenge). Reset the classifier. In each of the first
E - fine_epochs epochs train only 9 randomly chosen parameter tensors whose names hold
no "bn" plus every tensor whose name holds "bn"; from epoch `reset_epoch` on, first add
origin_noise * N(0, 1) to int(noise_ratio x 9) of that epoch's chosen tensors that were
never perturbed before. Each epoch is one CE pass over the retain set with a fresh SGD;
the last fine_epochs epochs train every tensor with the "fine" SGD."""

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
    "fine_lr": 2e-4, "fine_momentum": 0.9, "fine_weight_decay": 5e-4,
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


def run(model, data, hp, generator, record: list | None = None):
    """RNI; `record`, when given, receives per epoch a dict with the chosen and the
    perturbed tensor names (tests)."""
    epochs, fine_epochs = int(hp["epochs"]), int(hp["fine_epochs"])
    n_noise = int(hp["noise_ratio"] * LAYER_SELECT)
    reset_parameters(models.classifier_linear(model), generator)

    params = dict(model.named_parameters())
    bn_names = [n for n in params if "bn" in n]
    other_names = [n for n in params if "bn" not in n]
    perturbed: set[str] = set()
    for epoch in range(epochs):
        model.train()
        if epoch < epochs - fine_epochs:
            chosen = _choose(other_names, LAYER_SELECT, generator)
            noised = []
            if epoch >= int(hp["reset_epoch"]):
                fresh = [n for n in chosen if n not in perturbed]
                noised = _choose(fresh, n_noise, generator)
                with torch.no_grad():
                    for name in noised:
                        params[name].add_(randn_like(params[name], generator), alpha=hp["origin_noise"])
                perturbed.update(noised)
            train_names = chosen + bn_names
            optimizer = sgd([params[n] for n in train_names], hp["lr"], hp["momentum"], hp["weight_decay"])
        else:
            chosen, noised, train_names = [], [], list(params)
            optimizer = sgd(list(params.values()), hp["fine_lr"], hp["fine_momentum"], hp["fine_weight_decay"])
        if record is not None:
            record.append({"chosen": chosen, "noised": noised, "trained": train_names})
        with trainable_only(model, [params[n] for n in train_names]):
            run_epoch(model, data.retain, int(hp["batch_size"]), optimizer, generator)
    return model


def unlearn(model, data, hp, generator):
    return run(model, data, hp, generator)
