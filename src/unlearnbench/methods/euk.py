"""EU-k, exact unlearning of the last k blocks: as CF-k, but the last k blocks and the
classifier are first re-initialised (conv: Kaiming-uniform fan_out/relu, zero bias;
BatchNorm: weight 1, bias 0; linear: Xavier-uniform, zero bias), the proximal term pulls
towards the re-initialised weights, and the retain data is augmented."""

from __future__ import annotations

import torch
from torch import nn

from ._surgery import init_
from .cfk import finetune_last_k, last_k_modules
from .cfk import search_space as _cfk_space

NAME = "euk"
LABEL = "EU-k"
READS = ("retain",)
DEFAULTS = {"epochs": 10, "batch_size": 256, "lr": 0.01, "k": 1, "decay_rate": 0.1, "wd_prox": 0.1}


def search_space(trial, epoch_cap: int) -> dict:
    return _cfk_space(trial, epoch_cap)


@torch.no_grad()
def reinitialise(modules: list[nn.Module], generator: torch.Generator) -> None:
    """Re-initialise every Conv2d, BatchNorm and Linear inside `modules` (docs/methods.md#euk).
    BatchNorm running statistics and any other layer (e.g. LayerNorm) are left as they are."""
    for module in modules:
        for m in module.modules():
            if isinstance(m, nn.Conv2d):
                init_(m.weight, nn.init.kaiming_uniform_, generator, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                if m.weight is not None:
                    m.weight.fill_(1.0)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.Linear):
                init_(m.weight, nn.init.xavier_uniform_, generator)
                if m.bias is not None:
                    m.bias.zero_()


def unlearn(model, data, hp, generator):
    reinitialise(last_k_modules(model, hp["k"]), generator)
    return finetune_last_k(model, data.retain, hp, generator, augment=True)
