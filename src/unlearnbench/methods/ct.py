"""CT, convolution transpose: swap the two spatial axes of every Conv2d weight, then
fine-tune on the retain set with cosine annealing over E."""

import torch
from torch import nn

from ._loops import fine_tune
from ._spaces import base_space

NAME = "ct"
LABEL = "CT"
READS = ("retain",)
DEFAULTS = {"epochs": 3, "batch_size": 64, "lr": 1e-3, "momentum": 0.9, "weight_decay": 5e-4}


def search_space(trial, epoch_cap: int) -> dict:
    return base_space(trial, epoch_cap)


@torch.no_grad()
def transpose_convolutions(model: nn.Module) -> nn.Module:
    """W[out, in, kh, kw] -> W[out, in, kw, kh]; a 1x1 kernel is its own transpose.
    Non-square kernels keep their transposed shape only when the layer allows it, so
    they are left alone (no registry model has one)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            kh, kw = module.weight.shape[-2:]
            if kh == kw and kh > 1:
                module.weight.copy_(module.weight.transpose(-1, -2).clone())
    return model


def unlearn(model, data, hp, generator):
    transpose_convolutions(model)
    return fine_tune(model, data.retain, hp, generator, schedule="cosine")
