"""Atomic file writes, safetensors checkpoints and JSON.

Every artifact is written to a temporary name beside its destination and renamed into
place, so a failure or a kill never leaves a half-written file under the real name.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

# torch and safetensors are imported by the checkpoint functions alone: selection,
# table and figure jobs use this module without paying torch's start-up.
if TYPE_CHECKING:
    import torch


class CorruptFileError(RuntimeError):
    """An artifact exists but cannot be read."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` on success. A kill
    (SIGKILL) leaves its temporary file behind; the next successful write of `path`,
    by the job that owns it (one writer per output), removes such leftovers."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}."
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; outputs are plain files
        os.replace(tmp, path)
        for stale in path.parent.glob(f"{glob.escape(prefix)}*.tmp"):
            stale.unlink(missing_ok=True)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CorruptFileError(f"{path}: not valid JSON ({err})") from err


def save_state(path, model: torch.nn.Module, metadata: dict | None = None) -> None:
    """Save a model's state dict as safetensors (contiguous CPU copies)."""
    from safetensors.torch import save_file

    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    meta = {k: str(v) for k, v in (metadata or {}).items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=meta)


def load_state(path, model: torch.nn.Module) -> torch.nn.Module:
    """Load a safetensors checkpoint into `model`; any read problem names the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise CorruptFileError(f"unreadable checkpoint {path}: {err}") from err
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise CorruptFileError(f"checkpoint {path} does not fit the model: {err}") from err
    return model


def sha256(path) -> str:
    """Hex digest of a file, read in 1 MiB blocks (records which checkpoint a study used)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_npz(path, **arrays: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def load_npz(path) -> dict[str, np.ndarray]:
    try:
        with np.load(path) as npz:
            return {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise
    except Exception as err:  # zipfile/pickle/value errors all mean the same to a user
        raise CorruptFileError(f"unreadable array file {path}: {err}") from err
