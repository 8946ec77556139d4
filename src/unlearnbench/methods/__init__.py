"""Method registry: one module per method (docs/methods.md), discovered by name.

A method module defines NAME, LABEL (the paper's spelling), READS (the splits it may
read), DEFAULTS, `search_space(trial, epoch_cap) -> dict` and
`unlearn(model, data, hp, generator) -> model`. Adding a method = adding a module.

NAME, LABEL, READS and DEFAULTS must be literals: the registry reads them from the
module's source without importing it, so names, labels and defaults (config checks,
tables, the workflow's parse) need no torch. A module is imported when a method is
fetched with `get` or run; it must then hold what its source said.
"""

from __future__ import annotations

import ast
import importlib
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from .. import REFERENCES

if TYPE_CHECKING:
    import torch

# docs/methods.md order; modules not listed here sort after, by name.
PAPER_ORDER = ("ft", "ga", "srl", "ngplus", "scrub", "bt", "salun", "ff", "iu", "cfk", "euk",
               "fcs", "msg", "cfw", "prmq", "ct", "kde", "rni")
_NOT_METHODS = {"base"}  # and every _module (shared helpers)
_LITERALS = ("NAME", "LABEL", "READS", "DEFAULTS")
_REQUIRED = _LITERALS + ("search_space", "unlearn")


@dataclass(frozen=True)
class MethodInfo:
    """What the registry knows of a method without importing its module."""

    name: str
    label: str
    reads: tuple
    defaults: dict
    module: str  # the module's name in this package


def _bound_names(tree: ast.Module) -> set[str]:
    """Names a module binds at top level (definitions, imports, assignments)."""
    bound = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Assign):
            bound.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            bound.add(node.target.id)
    return bound


def _read_info(path: Path) -> MethodInfo:
    """A method module's NAME, LABEL, READS and DEFAULTS, read from its source."""
    where = f"method module {__name__}.{path.stem} ({path})"
    tree = ast.parse(path.read_text(), filename=str(path))
    missing = [a for a in _REQUIRED if a not in _bound_names(tree)]
    if missing:
        raise TypeError(f"{where} lacks {', '.join(missing)}")
    values = {}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) and node.value is not None else []
        for target in targets:
            if isinstance(target, ast.Name) and target.id in _LITERALS:
                try:
                    values[target.id] = ast.literal_eval(node.value)
                except ValueError:
                    raise TypeError(f"{where}: {target.id} must be a literal (the registry reads it without "
                                    "importing the module)") from None
    missing = [a for a in _LITERALS if a not in values]
    if missing:
        raise TypeError(f"{where}: {', '.join(missing)} must be assigned a literal at top level")
    return MethodInfo(values["NAME"], values["LABEL"], tuple(values["READS"]), values["DEFAULTS"], path.stem)


def _discover() -> dict[str, MethodInfo]:
    found = {}
    for path in sorted(Path(__file__).parent.glob("*.py")):
        if path.stem in _NOT_METHODS or path.stem.startswith("_"):
            continue
        info = _read_info(path)
        if info.name in found:
            raise TypeError(f"method modules {found[info.name].module} and {info.module} share NAME {info.name!r}")
        found[info.name] = info
    return found


_REGISTRY = _discover()


def names() -> list[str]:
    rank = {n: i for i, n in enumerate(PAPER_ORDER)}
    return sorted(_REGISTRY, key=lambda n: (rank.get(n, len(rank)), n))


def info(name: str) -> MethodInfo:
    if name not in _REGISTRY:
        raise KeyError(f"unknown method '{name}'; valid: {', '.join(names())}")
    return _REGISTRY[name]


_IMPORTED: dict[str, ModuleType] = {}


def get(name: str) -> ModuleType:
    """The method's module (imported on first use: this is where torch comes in)."""
    if name in _IMPORTED:
        return _IMPORTED[name]
    known = info(name)
    module = importlib.import_module(f"{__name__}.{known.module}")
    for attr, value in zip(_LITERALS, (known.name, known.label, known.reads, known.defaults)):
        actual = getattr(module, attr, None)
        if (tuple(actual) if attr == "READS" and actual is not None else actual) != value:
            raise TypeError(f"method module {module.__name__}: {attr} at import ({actual!r}) differs from its "
                            f"literal in the source ({value!r})")
    _IMPORTED[name] = module
    return module


def label(name: str) -> str:
    return _REGISTRY[name].label if name in _REGISTRY else name


def hyperparameters(name: str, overrides: dict | None = None) -> dict:
    """The method's defaults updated with `overrides`; an unknown key is an error."""
    defaults = info(name).defaults
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(defaults)
    if unknown:
        raise KeyError(f"method '{name}' has no hyperparameter {', '.join(sorted(unknown))}; "
                       f"valid: {', '.join(sorted(defaults))}")
    return {**defaults, **overrides}


def run(name: str, model: torch.nn.Module, splits: dict, num_classes: int, hp: dict,
        generator: torch.Generator, precision: str = "fp32") -> tuple[torch.nn.Module, float]:
    """Unlearn with method `name`, handing it only the splits it reads, under the job's
    precision (bf16 autocast, as for training); return the model and the wall time of
    the unlearning call alone."""
    from ..runtime import autocast
    from ..train import sync
    from .base import UnlearnData

    method = get(name)
    data = UnlearnData.restricted(name, method.READS, splits, num_classes)
    sync(data.device)
    start = time.perf_counter()
    with autocast(data.device, precision):
        model = method.unlearn(model, data, hyperparameters(name, hp), generator)
    sync(data.device)
    return model, time.perf_counter() - start


def __getattr__(attr: str):
    """DataAccessError and UnlearnData come from .base, which needs torch: load it on use."""
    if attr in ("DataAccessError", "UnlearnData"):
        from . import base

        return getattr(base, attr)
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


__all__ = ["names", "info", "get", "label", "hyperparameters", "run", "DataAccessError", "UnlearnData",
           "REFERENCES", "MethodInfo"]
