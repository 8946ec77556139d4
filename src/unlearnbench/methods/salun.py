"""SalUn, saliency unlearning: (1) the saliency |g| of g = sum over forget batches of
the gradient of -CE, taken in eval mode; the mask keeps the fraction `threshold` of
all parameter entries (ranked together across every tensor) with the largest |g|.
(2) E epochs of SRL training with every gradient multiplied by the mask before the step."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._loops import train_random_labels
from ._spaces import base_space
from ._surgery import grads, trainable

NAME = "salun"
LABEL = "SalUn"
READS = ("retain", "forget")
DEFAULTS = {"epochs": 10, "batch_size": 256, "threshold": 0.5, "lr": 0.01, "momentum": 0.0,
            "weight_decay": 0.0}
SEARCH_MOMENTUM = 0.9  # the base space (docs/methods.md#base-space): momentum fixed 0.9 (the default above is 0)


def search_space(trial, epoch_cap: int) -> dict:
    return {
        **base_space(trial, epoch_cap),
        "momentum": trial.suggest_float("momentum", SEARCH_MOMENTUM, SEARCH_MOMENTUM),
        "threshold": trial.suggest_float("threshold", 0.0, 1.0),
    }


def forget_saliency(model, forget, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """|sum over forget batches of d(-CE)/d theta|, one tensor per trainable parameter,
    with the model in eval mode (its mode is restored afterwards)."""
    params = trainable(model)
    total = [torch.zeros_like(p) for p in params]
    was_training = model.training
    model.eval()
    for x, y in forget.batches(batch_size, shuffle=True, generator=generator):
        for acc, g in zip(total, grads(-F.cross_entropy(model(x), y), params)):
            acc.add_(g)
    model.train(was_training)
    return [g.abs() for g in total]


def saliency_mask(saliency: list[torch.Tensor], threshold: float) -> list[torch.Tensor]:
    """Boolean masks marking the int(threshold x total) entries with the largest
    saliency, ranked over all tensors together (ties: the earlier entry wins)."""
    flat = torch.cat([s.reshape(-1) for s in saliency])
    keep = int(flat.numel() * float(threshold))
    chosen = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    if keep > 0:
        order = torch.argsort(flat, descending=True, stable=True)
        chosen[order[:keep]] = True
    return [m.view_as(s) for m, s in zip(chosen.split([s.numel() for s in saliency]), saliency)]


def unlearn(model, data, hp, generator):
    params = trainable(model)
    masks = saliency_mask(forget_saliency(model, data.forget, int(hp["batch_size"]), generator),
                          hp["threshold"])

    def mask_gradients():
        for p, m in zip(params, masks):
            if p.grad is not None:
                p.grad.mul_(m)

    return train_random_labels(model, data.retain, data.forget, data.num_classes, hp, generator,
                               before_step=mask_gradients)
