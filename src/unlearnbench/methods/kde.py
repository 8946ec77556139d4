"""KDE (6th in the NeurIPS 2023 challenge). Teacher = frozen original. Reset the stem
conv `conv1` (if the model has one) and the classifier; warm up E epochs distilling the
teacher on the validation set (KL at temperature T); then retain_epochs epochs on the
retain set with soft-CE to the teacher + CE + the same KL, its own SGD cosine-annealed.
Reads the validation set (as SCRUB does, to choose its rewind epoch)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import models
from ..train import cosine, sgd
from ._spaces import base_space, suggest_epochs, suggest_lr, suggest_wd
from ._surgery import frozen_copy, reset_parameters

NAME = "kde"
LABEL = "KDE"
READS = ("retain", "val")
DEFAULTS = {
    "epochs": 3, "batch_size": 64,
    # warm-up optimiser
    "lr": 9e-4, "momentum": 0.9, "weight_decay": 5e-4,
    "temperature": 5.0,
    "retain_epochs": 3, "retain_lr": 1e-3, "retain_momentum": 0.9, "retain_weight_decay": 5e-4,
}


def search_space(trial, epoch_cap: int) -> dict:
    space = base_space(trial, epoch_cap)
    space.update({
        "temperature": trial.suggest_float("temperature", 0.0, 5.0),
        "retain_epochs": suggest_epochs(trial, "retain_epochs", epoch_cap),
        "retain_lr": suggest_lr(trial, "retain_lr"),
        "retain_weight_decay": suggest_wd(trial, "retain_weight_decay"),
    })
    return space


def distill_kl(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(softmax(t/T) || softmax(s/T)), summed over classes, averaged over the batch."""
    return F.kl_div(F.log_softmax(student / temperature, dim=1), F.softmax(teacher / temperature, dim=1),
                    reduction="batchmean")


def soft_ce(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """Batch mean of -sum_c softmax(t/T)_c log_softmax(s/T)_c."""
    target = F.softmax(teacher / temperature, dim=1)
    return -(target * F.log_softmax(student / temperature, dim=1)).sum(dim=1).mean()


def reset_modules(model: nn.Module) -> list[nn.Module]:
    """The modules KDE resets: `conv1` when the model has one, and the classifier."""
    out = []
    stem = getattr(model, "conv1", None)
    if isinstance(stem, nn.Module):
        out.append(stem)
    out.append(models.classifier_linear(model))
    return out


def unlearn(model, data, hp, generator):
    bs, temperature = int(hp["batch_size"]), hp["temperature"]
    teacher = frozen_copy(model)
    for module in reset_modules(model):
        reset_parameters(module, generator)

    optimizer = sgd(model.parameters(), hp["lr"], hp["momentum"], hp["weight_decay"])
    for _ in range(int(hp["epochs"])):  # warm-up on D_v, in order: the reference's val loader does not shuffle
        model.train()
        for x, _y in data.val.batches(bs, shuffle=False):
            with torch.no_grad():
                t = teacher(x)
            loss = distill_kl(model(x), t, temperature)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    retain_epochs = int(hp["retain_epochs"])
    optimizer = sgd(model.parameters(), hp["retain_lr"], hp["retain_momentum"], hp["retain_weight_decay"])
    scheduler = cosine(optimizer, retain_epochs)
    for _ in range(retain_epochs):  # retain phase on D_r
        model.train()
        for x, y in data.retain.batches(bs, shuffle=True, generator=generator):
            with torch.no_grad():
                t = teacher(x)
            s = model(x)
            loss = soft_ce(s, t, temperature) + F.cross_entropy(s, y) + distill_kl(s, t, temperature)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        scheduler.step()
    del teacher
    return model
