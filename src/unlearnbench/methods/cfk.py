"""CF-k, catastrophic forgetting of the last k blocks: freeze everything but the last k
blocks and the classifier, then fine-tune on the retain set in eval mode with plain SGD
(no momentum, no weight decay), CE plus a proximal pull (wd_prox / 2) ||θ - θ_start||²
towards the starting weights of the trainable tensors, lr multiplied by `decay_rate` once
per milestone int(0.5E), int(0.8E), int(0.9E) that the 0-based epoch exceeds (as the
reference; E = 3 runs at lr, lr, lr x decay_rate)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import models
from ..batches import Split
from ._loops import step_decay
from ._spaces import suggest_batch, suggest_epochs, suggest_lr
from ._surgery import trainable_only

NAME = "cfk"
LABEL = "CF-k"
READS = ("retain",)
DEFAULTS = {"epochs": 10, "batch_size": 256, "lr": 0.01, "k": 1, "decay_rate": 0.1, "wd_prox": 0.1}


def search_space(trial, epoch_cap: int) -> dict:
    return {
        "epochs": suggest_epochs(trial, "epochs", epoch_cap),
        "batch_size": suggest_batch(trial),
        "lr": suggest_lr(trial, "lr"),
        "wd_prox": trial.suggest_float("wd_prox", 1e-5, 1e-1, log=True),
        "decay_rate": trial.suggest_float("decay_rate", 0.0, 1.0),
        "k": trial.suggest_int("k", 1, 10),
    }


def last_k_modules(model: nn.Module, k: int) -> list[nn.Module]:
    """The last k blocks (all of them when k exceeds the block count) and the classifier."""
    blocks = models.blocks(model)
    k = int(k)
    chosen = blocks[-k:] if k > 0 else []
    return chosen + [models.classifier(model)]


def parameters_of(modules: list[nn.Module]) -> list[nn.Parameter]:
    seen, params = set(), []
    for module in modules:
        for p in module.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                params.append(p)
    return params


def proximal(params: list[torch.Tensor], anchors: list[torch.Tensor], wd_prox: float) -> torch.Tensor:
    """(wd_prox / 2) * sum ||p - anchor||²."""
    total = sum((p - a).pow(2).sum() for p, a in zip(params, anchors))
    return total * (wd_prox / 2.0)


def finetune_last_k(model: nn.Module, retain: Split, hp: dict, generator: torch.Generator,
                    augment: bool = False) -> nn.Module:
    """The CF-k / EU-k training stage: only the last k blocks and the classifier train,
    pulled towards their weights at the start of this stage."""
    params = parameters_of(last_k_modules(model, hp["k"]))
    anchors = [p.detach().clone() for p in params]
    epochs = int(hp["epochs"])
    optimizer = torch.optim.SGD(params, lr=hp["lr"], momentum=0.0, weight_decay=0.0)
    scheduler = step_decay(optimizer, epochs, hp["decay_rate"])
    with trainable_only(model, params):
        for _ in range(epochs):
            for x, y in retain.batches(int(hp["batch_size"]), shuffle=True, generator=generator,
                                       augment_data=augment):
                # Eval mode (BatchNorm statistics frozen). Calling eval() every step also
                # drops timm TinyViT's eval-mode cache of attention biases, which would
                # otherwise hold a stale tensor (and a freed graph) after each update.
                model.eval()
                loss = F.cross_entropy(model(x), y) + proximal(params, anchors, hp["wd_prox"])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            scheduler.step()
    model.eval()
    return model


def unlearn(model, data, hp, generator):
    return finetune_last_k(model, data.retain, hp, generator, augment=False)
