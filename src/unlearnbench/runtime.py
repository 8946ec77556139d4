"""Device choice, threads, seeding and precision: the few global knobs of a job."""

from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch


def select_device(choice: str = "auto") -> torch.device:
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("config asks for device: cuda, but no CUDA device is available")
    return torch.device(choice)


def setup(threads: int | None = None, device: torch.device | None = None) -> None:
    """Use the rule's threads on CPU; cudnn autotuning on CUDA (fixed input shapes:
    the autotuner's choice is reused for every batch)."""
    if threads:
        torch.set_num_threads(int(threads))
        os.environ["OMP_NUM_THREADS"] = str(threads)
    if device is not None and device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def seed_everything(seed: int) -> torch.Generator:
    """Seed every global RNG and return a CPU generator for data order and augmentation."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def autocast(device: torch.device, precision: str = "fp32"):
    """bf16 autocast on CUDA when asked; a no-op otherwise."""
    if precision == "bf16" and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def prepare_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    model = model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    return model


def is_channels_last(model: torch.nn.Module) -> bool:
    """Whether the model's 4-d weights are stored channels_last."""
    weights = [p for p in model.parameters() if p.dim() == 4]
    return bool(weights) and all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)


@contextlib.contextmanager
def channels_last(model: torch.nn.Module, enabled: bool = True):
    """Run a block with the model's weights channels_last, then restore the layout.

    The parameters stay the same objects (an optimiser built on them keeps working);
    only their storage layout changes, so values are unchanged."""
    convert = enabled and not is_channels_last(model) and any(p.dim() == 4 for p in model.parameters())
    if convert:
        model.to(memory_format=torch.channels_last)
    try:
        yield model
    finally:
        if convert:
            model.to(memory_format=torch.contiguous_format)


def _has_hooks(model: torch.nn.Module) -> bool:
    return any(m._forward_hooks or m._forward_pre_hooks or getattr(m, "parametrizations", None)
               for m in model.modules())


_UNTRACEABLE: set[type] = set()


@torch.no_grad()
def fold_batchnorm(model: torch.nn.Module) -> torch.nn.Module | None:
    """A traced (torch.fx) inference copy of an eval-mode `model` in which every
    BatchNorm2d that follows a Conv2d is folded into it: the same function in eval mode,
    one layer fewer to run. The folded convolutions are new modules, stored
    channels_last; every other module is shared with `model`, which is left unchanged.
    None when the model cannot be traced or carries hooks that a traced copy would drop."""
    if model.training:
        raise ValueError("fold_batchnorm needs a model in eval mode")
    if (type(model) in _UNTRACEABLE or _has_hooks(model)
            or not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())):
        return None
    from torch import fx
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    try:
        traced = fx.symbolic_trace(model)  # leaf modules are shared, containers are new
    except Exception:  # data-dependent control flow (timm's TinyViT...): run the model as is
        _UNTRACEABLE.add(type(model))
        return None
    modules = dict(traced.named_modules())
    calls: dict[str, int] = {}
    for node in traced.graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    for node in list(traced.graph.nodes):
        bn = modules.get(node.target) if node.op == "call_module" else None
        if type(bn) is not torch.nn.BatchNorm2d or not node.args or not isinstance(node.args[0], fx.Node):
            continue
        conv_node = node.args[0]
        conv = modules.get(conv_node.target) if conv_node.op == "call_module" else None
        if (type(conv) is not torch.nn.Conv2d or len(conv_node.users) > 1 or not bn.track_running_stats
                or bn.running_mean is None or calls[conv_node.target] > 1 or calls[node.target] > 1):
            continue
        fused = fuse_conv_bn_eval(conv, bn)  # a new conv, weights folded
        fused.weight.data = fused.weight.data.contiguous(memory_format=torch.channels_last)
        parent, _, name = conv_node.target.rpartition(".")
        setattr(traced.get_submodule(parent) if parent else traced, name, fused)
        modules[conv_node.target] = fused
        node.replace_all_uses_with(conv_node)
        traced.graph.erase_node(node)
    traced.graph.lint()
    traced.recompile()
    return traced.eval()


@contextlib.contextmanager
def inference_model(model: torch.nn.Module, device: torch.device):
    """The model to run for evaluation, in eval mode; the caller's model is left as it was.

    CPU: a traced copy with BatchNorm folded into channels_last convolutions (oneDNN's
    fast layout), when the model traces; otherwise the model itself. CUDA: the model
    itself (channels_last already, prepare_model). Measured in benchmarks/eval_throughput.py."""
    was_training = model.training
    model.eval()
    try:
        folded = fold_batchnorm(model) if device.type == "cpu" else None
        yield model if folded is None else folded
    finally:
        model.train(was_training)
