"""CFW (3rd in the NeurIPS 2023 challenge). A "confuser" adds N(0, sigma^2) noise to the
weights of the model's top-level children whose name contains "conv" (resnet18 and the
small CNN: conv1; TinyViT: none). Confuse with sigma_start, train E epochs on the retain
set with CE scaled by the batch's mean "balanced" class weight, SGD cosine-annealed per
epoch, and confuse again with sigma_final after the second-to-last epoch."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..train import cosine, sgd
from ._loops import run_epoch
from ._spaces import base_space
from ._surgery import randn_like

NAME = "cfw"
LABEL = "CFW"
READS = ("retain",)
DEFAULTS = {"epochs": 4, "batch_size": 64, "lr": 7e-4, "momentum": 0.9, "weight_decay": 5e-4,
            "sigma_start": 0.6, "sigma_final": 0.005}


def search_space(trial, epoch_cap: int) -> dict:
    space = base_space(trial, epoch_cap)
    space["sigma_start"] = trial.suggest_float("sigma_start", 0.0, 1.0)
    space["sigma_final"] = trial.suggest_float("sigma_final", 0.0, 1.0)
    return space


@torch.no_grad()
def confuse(model: nn.Module, sigma: float, generator: torch.Generator) -> list[str]:
    """Add sigma * N(0, 1) to the weight of every top-level child named like "*conv*";
    return the names of the children it changed."""
    touched = []
    for name, module in model.named_children():
        weight = getattr(module, "weight", None)
        if "conv" in name and isinstance(weight, torch.Tensor):
            weight.add_(randn_like(weight, generator), alpha=sigma)
            touched.append(name)
    return touched


def balanced_class_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """scikit-learn's "balanced" weights n / (n_classes_present x count_c); 0 for a class
    absent from `labels` (it never indexes the table)."""
    counts = torch.bincount(labels.long().cpu(), minlength=num_classes).double()
    present = counts > 0
    weights = torch.zeros(num_classes, dtype=torch.float64)
    weights[present] = labels.numel() / (present.sum() * counts[present])
    return weights.float()


def weighted_ce(logits: torch.Tensor, labels: torch.Tensor, class_weights: torch.Tensor) -> torch.Tensor:
    """Batch-mean CE times the mean class weight of the batch's labels."""
    return F.cross_entropy(logits, labels) * class_weights[labels].mean()


def unlearn(model, data, hp, generator):
    retain = data.retain
    epochs = int(hp["epochs"])
    weights = balanced_class_weights(retain.labels, data.num_classes).to(retain.device)
    confuse(model, hp["sigma_start"], generator)
    optimizer = sgd(model.parameters(), hp["lr"], hp["momentum"], hp["weight_decay"])
    scheduler = cosine(optimizer, epochs)
    model.train()
    for epoch in range(epochs):
        run_epoch(model, retain, int(hp["batch_size"]), optimizer, generator,
                  loss_fn=lambda logits, y: weighted_ce(logits, y, weights))
        if epoch == epochs - 2:
            confuse(model, hp["sigma_final"], generator)
        scheduler.step()
    return model
