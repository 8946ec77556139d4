"""Helpers shared by CF-k, EU-k, FCS, MSG, CFW, PRMQ, KDE and RNI (private: the registry
skips modules whose name starts with '_').

All random draws use the caller's CPU generator and are then copied to the parameter's
device, so a run is reproducible for a fixed seed on any device.
"""

from __future__ import annotations

import copy
import math
from contextlib import contextmanager
from typing import Callable, Iterator

import torch
from torch import nn

BATCH_SIZES = (64, 128, 256)


# ---------------------------------------------------------------- search-space pieces

def suggest_lr(trial, name: str) -> float:
    return trial.suggest_float(name, 1e-5, 1e-1, log=True)


def suggest_wd(trial, name: str) -> float:
    return trial.suggest_float(name, 1e-5, 1e-1, log=True)


def suggest_batch(trial, name: str = "batch_size") -> int:
    return trial.suggest_categorical(name, list(BATCH_SIZES))


def suggest_epochs(trial, name: str, epoch_cap: int) -> int:
    return trial.suggest_int(name, 1, max(1, int(epoch_cap)))


# ---------------------------------------------------------------- seeded initialisation

@torch.no_grad()
def init_like(tensor: torch.Tensor, fn: Callable, generator: torch.Generator, **kwargs) -> torch.Tensor:
    """Draw `fn(cpu_tensor, generator=generator, **kwargs)` on the CPU with the tensor's
    shape and return it on the tensor's device and dtype (the tensor is not modified)."""
    cpu = torch.empty(tensor.shape, dtype=torch.float32)
    fn(cpu, generator=generator, **kwargs)
    return cpu.to(device=tensor.device, dtype=tensor.dtype)


@torch.no_grad()
def init_(tensor: torch.Tensor, fn: Callable, generator: torch.Generator, **kwargs) -> torch.Tensor:
    """In-place seeded initialisation of `tensor` with a torch.nn.init function."""
    tensor.copy_(init_like(tensor, fn, generator, **kwargs))
    return tensor


def randn_like(tensor: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(tensor.shape, generator=generator).to(device=tensor.device, dtype=tensor.dtype)


@torch.no_grad()
def reset_parameters(module: nn.Module, generator: torch.Generator) -> None:
    """`module.reset_parameters()` drawn from `generator`: PyTorch's default initialisation
    of Linear and Conv layers (Kaiming-uniform a=sqrt(5), bias U(+-1/sqrt(fan_in)));
    other layers (norms) have a deterministic reset and use their own."""
    if isinstance(module, (nn.Linear, nn.modules.conv._ConvNd)):
        init_(module.weight, nn.init.kaiming_uniform_, generator, a=math.sqrt(5))
        if module.bias is not None:
            fan_in, _ = nn.init._calculate_fan_in_and_fan_out(module.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init_(module.bias, nn.init.uniform_, generator, a=-bound, b=bound)
    elif hasattr(module, "reset_parameters"):
        module.reset_parameters()
    else:
        raise TypeError(f"cannot reset {type(module).__name__}")


# ---------------------------------------------------------------- freezing

@contextmanager
def trainable_only(model: nn.Module, params: list[nn.Parameter]) -> Iterator[None]:
    """Set requires_grad on exactly `params` for the duration; restore the flags after."""
    saved = [(p, p.requires_grad) for p in model.parameters()]
    keep = {id(p) for p in params}
    for p in model.parameters():
        p.requires_grad_(id(p) in keep)
    try:
        yield
    finally:
        for p, flag in saved:
            p.requires_grad_(flag)


def frozen_copy(model: nn.Module) -> nn.Module:
    """A frozen copy of the model in eval mode (teachers)."""
    teacher = copy.deepcopy(model)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def cycle(make: Callable[[], Iterator]) -> Iterator:
    """Endless iteration over fresh iterators from `make()` (a new shuffle each pass)."""
    while True:
        empty = True
        for item in make():
            empty = False
            yield item
        if empty:
            return
