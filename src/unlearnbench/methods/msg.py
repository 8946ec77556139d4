"""MSG, masked small gradients (2nd in the NeurIPS 2023 challenge). A gradient probe
(+CE over a random retain subset as large as the forget set, then -CE over the forget
set, accumulated) ranks every Conv2d weight entry; the round(init_rate x numel) entries
with the smallest |g| in each conv are re-initialised (Kaiming-normal, fan_out, relu).
Fine-tuning on the retain set then scales conv weight gradients by 1.0 on re-initialised
entries and 0.1 on kept ones, with a per-epoch linear warm-up / linear decay of the lr."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..train import sgd
from ._loops import run_epoch
from ._spaces import base_space
from ._surgery import init_like

NAME = "msg"
LABEL = "MSG"
READS = ("retain", "forget")
DEFAULTS = {"epochs": 5, "batch_size": 64, "lr": 1e-3, "momentum": 0.9, "weight_decay": 5e-4, "init_rate": 0.3}
PROBE_BATCH_SIZE = 64
KEPT_SCALE = 0.1


def search_space(trial, epoch_cap: int) -> dict:
    space = base_space(trial, epoch_cap)
    space["init_rate"] = trial.suggest_float("init_rate", 0.0, 1.0)
    return space


def lr_at(lr: float, k: int, epochs: int) -> float:
    """lr of epoch k (0-based): linear warm-up over A = floor((E+1)/2) epochs, then decay."""
    warmup = (epochs + 1) // 2
    if k + 1 <= warmup:
        return lr * (k + 1) / warmup
    return lr * (epochs - k) / (epochs + 1 - warmup)


def gradient_probe(model: nn.Module, retain, forget, batch_size: int, generator: torch.Generator) -> dict:
    """g = sum of grad CE over a random retain subset of |D_f| samples (batch 64) minus the
    sum of grad CE over D_f, accumulated without zeroing; returns {parameter name: g}."""
    model.train()
    model.zero_grad(set_to_none=True)
    index = torch.randperm(len(retain), generator=generator)[: len(forget)]
    for x, y in retain.subset(index).batches(PROBE_BATCH_SIZE, shuffle=True, generator=generator):
        F.cross_entropy(model(x), y).backward()
    for x, y in forget.batches(batch_size, shuffle=True, generator=generator):
        (-F.cross_entropy(model(x), y)).backward()
    grads = {name: (p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p))
             for name, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    return grads


@torch.no_grad()
def reinit_small_gradients(model: nn.Module, grads: dict, init_rate: float,
                           generator: torch.Generator) -> dict[str, torch.Tensor]:
    """In every Conv2d, re-initialise the round(init_rate x numel) weight entries with the
    smallest |g|; return {conv module name: bool mask of re-initialised entries}."""
    masks = {}
    for name, module in model.named_modules():
        if not isinstance(module, nn.Conv2d):
            continue
        weight = module.weight
        g = grads[f"{name}.weight" if name else "weight"]
        count = round(init_rate * weight.numel())
        order = torch.sort(g.abs().flatten(), stable=True).indices  # ties broken by position
        mask = torch.zeros(weight.numel(), dtype=torch.bool, device=weight.device)
        mask[order[:count]] = True
        mask = mask.view_as(weight)
        fresh = init_like(weight, nn.init.kaiming_normal_, generator, mode="fan_out", nonlinearity="relu")
        weight[mask] = fresh[mask]
        masks[name] = mask
    return masks


def register_gradient_scaling(model: nn.Module, masks: dict[str, torch.Tensor]) -> list:
    """Scale each conv weight's gradient by 1 on re-initialised entries, 0.1 elsewhere;
    returns the hook handles (remove them to restore the plain model)."""
    modules = dict(model.named_modules())
    handles = []
    for name, mask in masks.items():
        weight = modules[name].weight
        scale = torch.where(mask, 1.0, KEPT_SCALE).to(weight.dtype)
        handles.append(weight.register_hook(lambda grad, scale=scale: grad * scale))
    return handles


def unlearn(model, data, hp, generator):
    epochs, bs = int(hp["epochs"]), int(hp["batch_size"])
    grads = gradient_probe(model, data.retain, data.forget, bs, generator)
    masks = reinit_small_gradients(model, grads, hp["init_rate"], generator)
    del grads
    handles = register_gradient_scaling(model, masks)
    try:
        optimizer = sgd(model.parameters(), hp["lr"], hp["momentum"], hp["weight_decay"])
        model.train()
        for k in range(epochs):
            for group in optimizer.param_groups:
                group["lr"] = lr_at(hp["lr"], k, epochs)
            run_epoch(model, data.retain, bs, optimizer, generator)
    finally:
        for handle in handles:
            handle.remove()
    return model
