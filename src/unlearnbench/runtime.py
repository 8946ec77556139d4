"""Device choice, threads, seeding and precision: the few global knobs of a job."""

from __future__ import annotations

import contextlib
import os
import random
import re
from pathlib import Path

import numpy as np
import torch

from .cpu_rewrites import dense_small_map_convs, one_image_pass


def select_device(choice: str = "auto") -> torch.device:
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("config asks for device: cuda, but no CUDA device is available")
    return torch.device(choice)


def setup(threads: int | None = None, device: torch.device | None = None) -> None:
    """Use the rule's threads on CPU; cudnn autotuning on CUDA (fixed input shapes:
    the autotuner's choice is reused for every batch).

    torch is imported already, so OMP_NUM_THREADS no longer reaches it (set_num_threads
    does); the variable is for what loads later in the job and reads it at load time:
    scikit-learn's and scipy's BLAS (the MIA's logistic regression) and subprocesses."""
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(int(threads))
    if device is not None and device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def seed_everything(seed: int) -> torch.Generator:
    """Seed every global RNG and return a CPU generator for data order and augmentation."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def native_bf16(device: torch.device) -> bool:
    """Whether the device computes bf16 natively: CUDA with bf16 support, or an x86 CPU
    with AVX512-BF16 or AMX (read from /proc/cpuinfo; other CPUs count as no)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))


def resolve_precision(choice: str, device: torch.device, model: torch.nn.Module | None = None,
                      input_shape: tuple[int, ...] | None = None) -> str:
    """The config's precision for this device: `auto` is bf16 where it is native
    (fast), else fp32; fp32 and bf16 are taken as they are. Given the job's model and
    its input shape (C, H, W), `auto` is fp32 on a CPU where bf16 would meet the oneDNN
    defect of `bf16_cpu_hazards`."""
    if choice == "auto":
        if not native_bf16(device):
            return "fp32"
        if device.type == "cpu" and model is not None and input_shape is not None \
                and bf16_cpu_hazards(model, input_shape):
            return "fp32"
        return "bf16"
    if choice not in ("fp32", "bf16"):
        raise ValueError(f"unknown precision '{choice}'; valid: auto, fp32, bf16")
    return choice


@torch.no_grad()
def bf16_cpu_hazards(model: torch.nn.Module, input_shape: tuple[int, ...]) -> list[str]:
    """The convolutions of `model` with a stride above 1 whose input map is 1x1 for
    inputs of `input_shape` (C, H, W). On CPU (oneDNN, torch 2.14.1) bf16 autocast
    corrupts the weight gradient of such a convolution: the taps that only see padding
    get garbage (up to 1e31, or NaN) instead of 0, in either memory layout. ResNet-18
    meets it on inputs of 16x16 or smaller (layer4's first block), unless
    dense_small_map_convs made that convolution a matrix product. Found with one
    1-image forward pass in eval mode; the model's mode is restored."""
    found: list[str] = []

    def check(name):
        def hook(module, args):
            dense = getattr(module, "_small_map_plan", (None,))[0] == tuple(args[0].shape[-2:])
            if module.stride != (1, 1) and tuple(args[0].shape[-2:]) == (1, 1) and not dense:
                found.append(name)
        return hook

    hooks = [m.register_forward_pre_hook(check(name)) for name, m in model.named_modules()
             if isinstance(m, torch.nn.Conv2d)]
    one_image_pass(model, input_shape, hooks)
    return found


def autocast(device: torch.device, precision: str = "fp32"):
    """bf16 autocast (CUDA or CPU) when the precision asks; a no-op for fp32.

    Weights, optimiser state and losses stay fp32; convolutions and matrix products run
    in bf16. On a CPU with native bf16 (AVX512-BF16 or AMX) this trains ResNet-18
    about 1.45x faster (benchmarks/cost_model.py --precision bf16); without it, bf16
    is emulated and slower."""
    if precision == "bf16" and device.type in ("cuda", "cpu"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def prepare_model(model: torch.nn.Module, device: torch.device,
                  input_shape: tuple[int, ...] | None = None) -> torch.nn.Module:
    """The model on the device: channels_last on CUDA; on CPU, given the job's input
    shape (C, H, W), its convolutions with a one-pixel output on a map smaller than their
    kernel run as linear layers (dense_small_map_convs), in training and evaluation alike."""
    model = model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    elif input_shape is not None:
        dense_small_map_convs(model, tuple(input_shape))
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
