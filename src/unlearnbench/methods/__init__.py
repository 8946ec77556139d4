"""Method registry: one module per method (docs/methods.md), discovered by name.

A method module defines NAME, LABEL (the paper's spelling), READS (the splits it may
read), DEFAULTS, `search_space(trial, epoch_cap) -> dict` and
`unlearn(model, data, hp, generator) -> model`. Adding a method = adding a module.

NAME, LABEL, READS and DEFAULTS must be literals: the registry reads them from the
module's source without importing it, so names, labels and defaults (config checks,
tables, the workflow's parse) need no torch. A module is imported when a method is
fetched with `get` or run; it must then hold what its source said.

An optional literal SCENARIOS names the forgetting-scenario kinds (SCENARIO_KINDS) the
method is defined for; without it, every one. `applies` and `not_applicable_reason`
read it. PAPER_METHODS are the paper's 18 in its order; any other module is a method
beyond the paper (`in_paper`), marked so in tables and figures.
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

# The paper's 18 in docs/methods.md order; modules not listed here sort after, by name.
PAPER_METHODS = ("ft", "ga", "srl", "ngplus", "scrub", "bt", "salun", "ff", "iu", "cfk", "euk",
                 "fcs", "msg", "cfw", "prmq", "ct", "kde", "rni")
PAPER_ORDER = PAPER_METHODS  # the former name
# Forgetting-scenario kinds (docs/protocol.md §2): `random` is the paper's.
SCENARIO_KINDS = ("random", "class", "subclass", "poison", "confusion", "memorised", "typical")
_NOT_METHODS = {"base"}  # and every _module (shared helpers)
_LITERALS = ("NAME", "LABEL", "READS", "DEFAULTS")
_OPTIONAL = {"SCENARIOS": SCENARIO_KINDS}  # optional literals and their value when absent
_REQUIRED = _LITERALS + ("search_space", "unlearn")


@dataclass(frozen=True)
class MethodInfo:
    """What the registry knows of a method without importing its module."""

    name: str
    label: str
    reads: tuple
    defaults: dict
    module: str  # the module's name in this package
    scenarios: tuple = SCENARIO_KINDS  # the scenario kinds it is defined for


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
            if isinstance(target, ast.Name) and (target.id in _LITERALS or target.id in _OPTIONAL):
                try:
                    values[target.id] = ast.literal_eval(node.value)
                except ValueError:
                    raise TypeError(f"{where}: {target.id} must be a literal (the registry reads it without "
                                    "importing the module)") from None
    missing = [a for a in _LITERALS if a not in values]
    if missing:
        raise TypeError(f"{where}: {', '.join(missing)} must be assigned a literal at top level")
    scenarios = tuple(values.get("SCENARIOS", _OPTIONAL["SCENARIOS"]))
    unknown = [s for s in scenarios if s not in SCENARIO_KINDS]
    if unknown or not scenarios:
        raise TypeError(f"{where}: SCENARIOS {scenarios!r} must name some of {', '.join(SCENARIO_KINDS)}")
    return MethodInfo(values["NAME"], values["LABEL"], tuple(values["READS"]), values["DEFAULTS"], path.stem,
                      scenarios)


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
    """Every registered method: the paper's 18 in its order, then the others by name."""
    rank = {n: i for i, n in enumerate(PAPER_METHODS)}
    return sorted(_REGISTRY, key=lambda n: (rank.get(n, len(rank)), n))


def in_paper(name: str) -> bool:
    """Whether `name` is one of the paper's 18 methods (others are marked in tables)."""
    return name in PAPER_METHODS


def _scenario_kind(scenario: str) -> str:
    if scenario not in SCENARIO_KINDS:
        raise ValueError(f"unknown scenario '{scenario}'; valid: {', '.join(SCENARIO_KINDS)}")
    return scenario


def applies(name: str, scenario: str) -> bool:
    """Whether method `name` is defined for the forgetting scenario `scenario`."""
    return _scenario_kind(scenario) in info(name).scenarios


def not_applicable_reason(name: str, scenario: str) -> str | None:
    """Why `name` does not run in `scenario` (None where it applies), for tables' n/a."""
    if applies(name, scenario):
        return None
    known = info(name)
    scenarios = list(known.scenarios)
    listed = scenarios[0] if len(scenarios) == 1 else ", ".join(scenarios[:-1]) + " and " + scenarios[-1]
    kind = "class-wise" if set(scenarios) <= {"class", "subclass"} else "scenario-specific"
    plural = "scenario" if len(scenarios) == 1 else "scenarios"
    return f"{known.label} is a {kind} method: defined for the {listed} {plural}"


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
    scenarios = getattr(module, "SCENARIOS", _OPTIONAL["SCENARIOS"])
    if tuple(scenarios) != known.scenarios:
        raise TypeError(f"method module {module.__name__}: SCENARIOS at import ({scenarios!r}) differs from its "
                        f"literal in the source ({known.scenarios!r})")
    _IMPORTED[name] = module
    return module


# The mark tables and figures put after the label of a method beyond the paper's 18.
MARK = "†"
LEGEND = f"{MARK} not among the paper's 18 methods (docs/methods.md#beyond-the-paper)"


def label(name: str) -> str:
    """The label tables and figures print: the module's LABEL, followed by MARK for a
    method beyond the paper's 18 (the bare LABEL is `info(name).label`); a name the
    registry does not hold (the reference rows) as it is."""
    if name not in _REGISTRY:
        return name
    return _REGISTRY[name].label + ("" if in_paper(name) else MARK)


def legend(names) -> list[str]:
    """The legend lines a table or figure showing `names` needs: LEGEND when any of
    them is a registered method beyond the paper, else none."""
    return [LEGEND] if any(n in _REGISTRY and not in_paper(n) for n in names) else []


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


__all__ = ["names", "info", "in_paper", "legend", "MARK", "LEGEND", "applies", "not_applicable_reason", "PAPER_METHODS", "SCENARIO_KINDS", "get", "label", "hyperparameters", "run", "DataAccessError", "UnlearnData",
           "REFERENCES", "MethodInfo"]
