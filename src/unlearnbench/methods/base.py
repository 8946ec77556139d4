"""What every method sees: a view of the data limited to the splits it may read."""

from __future__ import annotations

from dataclasses import dataclass

from ..batches import Split

SPLITS = ("retain", "forget", "val")


class DataAccessError(PermissionError):
    """A method asked for a split it is not listed with (docs/methods.md)."""


@dataclass
class UnlearnData:
    """The splits handed to one method. Any split outside `reads` is not even held here:
    asking for it raises DataAccessError, so a method cannot peek by accident."""

    method: str
    reads: tuple[str, ...]
    num_classes: int
    _splits: dict[str, Split]

    @classmethod
    def restricted(cls, method: str, reads, splits: dict[str, Split], num_classes: int) -> "UnlearnData":
        unknown = set(reads) - set(SPLITS)
        if unknown:
            raise ValueError(f"method '{method}' lists unknown splits {sorted(unknown)}; valid: {SPLITS}")
        return cls(method, tuple(reads), num_classes, {k: splits[k] for k in reads})

    def _get(self, name: str) -> Split:
        if name not in self.reads:
            raise DataAccessError(f"method '{self.method}' may not read the {name} set (it reads {', '.join(self.reads)})")
        return self._splits[name]

    @property
    def retain(self) -> Split:
        return self._get("retain")

    @property
    def forget(self) -> Split:
        return self._get("forget")

    @property
    def val(self) -> Split:
        return self._get("val")

    @property
    def device(self):
        return next(iter(self._splits.values())).device
