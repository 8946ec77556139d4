"""PRMQ, prune-reinitialise-match-quantise (4th in the NeurIPS 2023 challenge). Global
L1-unstructured pruning of `prune_amount` of all Conv2d and Linear weights and biases
together, made permanent; pruned weight entries are redrawn from U(+-1/sqrt(fan_in)),
pruned biases stay 0. Then int(retain batches x E) + 1 SGD steps (E a float) on the
retain set with class-weighted CE (w_c = count_c^-0.1) plus the MSE between the
student's and the frozen original's prediction entropies; finally a float16 round trip."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
import torch.nn.utils.prune as prune
from torch import nn

from ..batches import batch_bounds
from ..train import sgd
from ._spaces import suggest_batch, suggest_lr, suggest_wd
from ._surgery import frozen_copy, init_like

NAME = "prmq"
LABEL = "PRMQ"
READS = ("retain",)
DEFAULTS = {"epochs": 3.2, "batch_size": 64, "lr": 5e-4, "momentum": 0.9, "weight_decay": 5e-4,
            "prune_amount": 0.99}


def search_space(trial, epoch_cap: int) -> dict:
    return {
        "lr": suggest_lr(trial, "lr"),
        "weight_decay": suggest_wd(trial, "weight_decay"),
        "batch_size": suggest_batch(trial),
        "epochs": trial.suggest_float("epochs", 1.0, float(max(1, int(epoch_cap)))),
        "prune_amount": trial.suggest_float("prune_amount", 0.0, 1.0),
    }


def prunable(model: nn.Module) -> list[tuple[nn.Module, str]]:
    pairs = []
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            pairs.append((module, "weight"))
            if module.bias is not None:
                pairs.append((module, "bias"))
    return pairs


def prune_and_reinit(model: nn.Module, amount: float, generator: torch.Generator) -> list[tuple[nn.Module, str, torch.Tensor]]:
    """Prune globally (L1), make it permanent, redraw pruned weight entries from
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)); pruned biases stay 0. Returns (module, name,
    pruned-entries mask) for every pruned tensor."""
    pairs = prunable(model)
    prune.global_unstructured(pairs, pruning_method=prune.L1Unstructured, amount=float(amount))
    pruned = []
    for module, name in pairs:
        mask = getattr(module, f"{name}_mask") == 0
        prune.remove(module, name)
        pruned.append((module, name, mask))
    with torch.no_grad():
        for module, name, mask in pruned:
            if name != "weight":
                continue
            weight = module.weight
            fan_in = weight[0].numel()  # in_channels / groups x kernel (conv), in_features (linear)
            bound = 1.0 / math.sqrt(fan_in)
            fresh = init_like(weight, nn.init.uniform_, generator, a=-bound, b=bound)
            weight[mask] = fresh[mask]
    return pruned


def class_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """w_c = count_c^-0.1 (0 for a class absent from the retain set; it is never a target)."""
    counts = torch.bincount(labels.long().cpu(), minlength=num_classes).float()
    weights = torch.zeros(num_classes)
    weights[counts > 0] = counts[counts > 0].pow(-0.1)
    return weights


def entropy(logits: torch.Tensor) -> torch.Tensor:
    log_p = F.log_softmax(logits, dim=1)
    return -(log_p.exp() * log_p).sum(dim=1)


def num_steps(num_batches: int, epochs: float) -> int:
    return int(num_batches * epochs) + 1


def unlearn(model, data, hp, generator):
    retain = data.retain
    bs = int(hp["batch_size"])
    teacher = frozen_copy(model)
    prune_and_reinit(model, hp["prune_amount"], generator)
    weights = class_weights(retain.labels, data.num_classes).to(retain.device)
    optimizer = sgd(model.parameters(), hp["lr"], hp["momentum"], hp["weight_decay"])
    total = num_steps(len(batch_bounds(len(retain), bs)), float(hp["epochs"]))
    steps = 0
    model.train()
    while steps < total:
        for x, y in retain.batches(bs, shuffle=True, generator=generator):
            with torch.no_grad():
                target_entropy = entropy(teacher(x))
            logits = model(x)
            loss = F.cross_entropy(logits, y, weight=weights) + F.mse_loss(entropy(logits), target_entropy)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
            if steps >= total:
                break
    del teacher
    return model.to(torch.float16).to(torch.float32)
