"""Parameter surgery the method modules share: which parameters train, seeded
re-initialisation, frozen teacher copies, gradients as flat vectors.

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


def device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def trainable(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def draw_seed(generator: torch.Generator) -> int:
    """An integer seed drawn from the method's generator (for a seeded model build)."""
    return int(torch.randint(0, 2**31 - 1, (1,), generator=generator))


# ---------------------------------------------------------------- gradients as vectors

def grads(loss: torch.Tensor, params: list[torch.Tensor], retain_graph: bool = False) -> list[torch.Tensor]:
    """d loss / d params without touching `.grad`; an unused parameter gets zeros."""
    out = torch.autograd.grad(loss, params, retain_graph=retain_graph, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, out)]


def flat_grad(loss: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([g.reshape(-1) for g in grads(loss, params)])


@torch.no_grad()
def add_flat_(params: list[torch.Tensor], vector: torch.Tensor) -> None:
    """params += vector, the vector laid out as torch.cat of the flattened params."""
    offset = 0
    for p in params:
        n = p.numel()
        p.add_(vector[offset:offset + n].view_as(p))
        offset += n


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


def freeze(model: nn.Module) -> nn.Module:
    """The model itself in eval mode with every parameter frozen (teachers)."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def frozen_copy(model: nn.Module) -> nn.Module:
    """A frozen copy of the model in eval mode (the teacher of SCRUB, BT, KDE and PRMQ)."""
    return freeze(copy.deepcopy(model))
