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
    """Use the rule's threads on CPU; cudnn autotuning on CUDA."""
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
