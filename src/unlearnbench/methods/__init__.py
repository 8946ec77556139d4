"""Method registry: one module per method (METHODS.md), discovered by name.

A method module defines NAME, LABEL (the paper's spelling), READS (the splits it may
read), DEFAULTS, `search_space(trial, epoch_cap) -> dict` and
`unlearn(model, data, hp, generator) -> model`. Adding a method = adding a module.
"""

from __future__ import annotations

import importlib
import pkgutil
import time
from types import ModuleType

import torch

from .. import REFERENCES
from ..runtime import autocast
from ..train import sync
from .base import DataAccessError, UnlearnData

# METHODS.md order; modules not listed here sort after, by name.
PAPER_ORDER = ("ft", "ga", "srl", "ngplus", "scrub", "bt", "salun", "ff", "iu", "cfk", "euk",
               "fcs", "msg", "cfw", "prmq", "ct", "kde", "rni")
_NOT_METHODS = {"base", "common"}
_REQUIRED = ("NAME", "LABEL", "READS", "DEFAULTS", "search_space", "unlearn")


def _discover() -> dict[str, ModuleType]:
    found = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name in _NOT_METHODS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        missing = [a for a in _REQUIRED if not hasattr(module, a)]
        if missing:
            raise TypeError(f"method module {module.__name__} lacks {', '.join(missing)}")
        found[module.NAME] = module
    return found


_REGISTRY = _discover()


def names() -> list[str]:
    rank = {n: i for i, n in enumerate(PAPER_ORDER)}
    return sorted(_REGISTRY, key=lambda n: (rank.get(n, len(rank)), n))


def get(name: str) -> ModuleType:
    if name not in _REGISTRY:
        raise KeyError(f"unknown method '{name}'; valid: {', '.join(names())}")
    return _REGISTRY[name]


def label(name: str) -> str:
    return _REGISTRY[name].LABEL if name in _REGISTRY else name


def hyperparameters(name: str, overrides: dict | None = None) -> dict:
    """The method's defaults updated with `overrides`; an unknown key is an error."""
    method = get(name)
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(method.DEFAULTS)
    if unknown:
        raise KeyError(f"method '{name}' has no hyperparameter {', '.join(sorted(unknown))}; "
                       f"valid: {', '.join(sorted(method.DEFAULTS))}")
    return {**method.DEFAULTS, **overrides}


def run(name: str, model: torch.nn.Module, splits: dict, num_classes: int, hp: dict,
        generator: torch.Generator, precision: str = "fp32") -> tuple[torch.nn.Module, float]:
    """Unlearn with method `name`, handing it only the splits it reads, under the job's
    precision (bf16 autocast, as for training); return the model and the wall time of
    the unlearning call alone."""
    method = get(name)
    data = UnlearnData.restricted(name, method.READS, splits, num_classes)
    sync(data.device)
    start = time.perf_counter()
    with autocast(data.device, precision):
        model = method.unlearn(model, data, hyperparameters(name, hp), generator)
    sync(data.device)
    return model, time.perf_counter() - start


__all__ = ["names", "get", "label", "hyperparameters", "run", "DataAccessError", "UnlearnData", "REFERENCES"]
