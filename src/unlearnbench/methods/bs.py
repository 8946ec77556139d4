"""BS, Boundary Shrink (Chen et al., CVPR 2023; the authors' boundary_unlearning.py).
A frozen copy of O in eval mode labels each forget batch: one FGSM step of size `bound`
(pixel space, ℓ∞, discretised to 1/255) and the copy's prediction on the perturbed
images, the nearest class across the decision boundary (the true label where the step
does not cross it). The model, in train mode, is fine-tuned with CE on the clean forget
images against those labels: E passes over D_f, SGD without schedule or weight decay.
A class-wise method: defined for the class and subclass scenarios."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..train import sgd
from ._adversarial import fgsm
from ._spaces import suggest_batch, suggest_epochs, suggest_lr
from ._surgery import frozen_copy

NAME = "bs"
LABEL = "BS"
READS = ("forget",)
SCENARIOS = ("class", "subclass")
DEFAULTS = {"epochs": 10, "batch_size": 64, "lr": 1e-5, "momentum": 0.9, "bound": 0.1}


def search_space(trial, epoch_cap: int) -> dict:
    return {
        "epochs": suggest_epochs(trial, "epochs", epoch_cap),
        "batch_size": suggest_batch(trial),
        "lr": suggest_lr(trial, "lr"),
        "bound": trial.suggest_float("bound", 1.0 / 255, 0.5, log=True),
    }


def nearest_labels(teacher, x: torch.Tensor, y: torch.Tensor, bound: float, spec) -> torch.Tensor:
    """The teacher's prediction on the FGSM-perturbed batch (the teacher in eval mode)."""
    x_adv = fgsm(teacher, x, y, bound, spec)
    with torch.no_grad():
        return teacher(x_adv).argmax(dim=1)


def unlearn(model, data, hp, generator):
    forget = data.forget
    teacher = frozen_copy(model)
    optimizer = sgd(model.parameters(), hp["lr"], hp["momentum"], 0.0)
    for _ in range(int(hp["epochs"])):
        for x, y in forget.batches(int(hp["batch_size"]), shuffle=True, generator=generator):
            target = nearest_labels(teacher, x, y, hp["bound"], forget.spec)
            model.train()
            loss = F.cross_entropy(model(x), target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return model
