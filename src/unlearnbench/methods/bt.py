"""BT, bad teacher: the student (from O) distils, on the retain and forget sets
shuffled together, from the competent teacher (frozen O) on retain samples and from an
incompetent teacher (a randomly initialised resnet18) on forget samples:
loss = KL(target || softmax(student / T)) averaged over all batch x class entries. Adam."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import models
from ..batches import Split
from ..runtime import prepare_model
from ..train import adam
from ._spaces import base_space
from ._surgery import device_of, draw_seed, freeze, frozen_copy

NAME = "bt"
LABEL = "BT"
READS = ("retain", "forget")
DEFAULTS = {"epochs": 10, "batch_size": 256, "lr": 0.01, "weight_decay": 0.0, "temperature": 1.0}
INCOMPETENT_ARCH = "resnet18"


def search_space(trial, epoch_cap: int) -> dict:
    return {**base_space(trial, epoch_cap), "temperature": trial.suggest_float("temperature", 0.0, 5.0)}


@torch.no_grad()
def bt_target(x: torch.Tensor, is_forget: torch.Tensor, competent: torch.nn.Module,
              incompetent: torch.nn.Module, temperature: float) -> torch.Tensor:
    """softmax(incompetent(x) / T) on forget rows, softmax(competent(x) / T) on retain rows.
    Both teachers are in eval mode, so the incompetent one only sees the forget rows."""
    t = float(temperature)
    target = F.softmax(competent(x) / t, dim=1)
    rows = is_forget.bool().nonzero().squeeze(1)
    if rows.numel():
        target[rows] = F.softmax(incompetent(x[rows]) / t, dim=1).to(target.dtype)
    return target


def bt_loss(student_logits: torch.Tensor, target: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(target || softmax(student / T)), mean over every batch x class entry."""
    log_student = F.log_softmax(student_logits / float(temperature), dim=1)
    # reduction="sum" / numel: torch's "mean" does the same today but warns it will change.
    return F.kl_div(log_student, target, reduction="sum") / log_student.numel()


def incompetent_teacher(num_classes: int, image_size: int, generator: torch.Generator, device) -> torch.nn.Module:
    teacher = models.build(INCOMPETENT_ARCH, num_classes, image_size, seed=draw_seed(generator))
    return freeze(prepare_model(teacher, device))


def unlearn(model, data, hp, generator):
    retain, forget = data.retain, data.forget
    device = device_of(model)
    competent = frozen_copy(model)
    incompetent = incompetent_teacher(data.num_classes, retain.spec.image_size, generator, device)
    # The union's "labels" are the origin flags: 1 for a forget sample, 0 for a retain one.
    flags = torch.cat([torch.zeros(len(retain), dtype=torch.int64, device=retain.labels.device),
                       torch.ones(len(forget), dtype=torch.int64, device=retain.labels.device)])
    union = Split(torch.cat([retain.images, forget.images]), flags, retain.spec)
    temperature = float(hp["temperature"])
    optimizer = adam(model.parameters(), hp["lr"], hp["weight_decay"])
    model.train()
    for _ in range(int(hp["epochs"])):
        for x, is_forget in union.batches(int(hp["batch_size"]), shuffle=True, generator=generator):
            target = bt_target(x, is_forget, competent, incompetent, temperature)
            loss = bt_loss(model(x), target, temperature)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return model
