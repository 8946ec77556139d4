"""U-LiRA's files (the attack itself is attacks/ulira.py):

  splits.npz                         the Design arrays (attacks/ulira.py) + dataset name
  banks/{kind}/split{k}.npz          logits (F, N, C) and val_logits (F, V, C) float16,
                                     seconds (F,), info (JSON string)
  shadow/split{k}.safetensors        the F originals of split k, keys "f{f}.{name}"
  scores/{kind}.npz / .json          per-(target model, example) scores / metrics
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from .. import io
from . import ulira

if TYPE_CHECKING:  # torch only in annotations: the bank readers (report jobs) start without it
    import torch

FLOAT16_MAX = float(np.finfo(np.float16).max)


def write_bank(path, logits: np.ndarray, val_logits: np.ndarray, seconds: Sequence[float], info: dict) -> None:
    """Logits as float16, clipped to its finite range (a logit beyond 65504 would be inf)."""
    def f16(x):
        return np.clip(np.asarray(x, dtype=np.float32), -FLOAT16_MAX, FLOAT16_MAX).astype(np.float16)

    with io.atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, logits=f16(logits), val_logits=f16(val_logits),
                     seconds=np.asarray(seconds, dtype=np.float64), info=np.array(json.dumps(info, sort_keys=True)))


def read_bank(path, design: ulira.Design | None = None, split: int | None = None) -> dict:
    arrays = io.load_npz(path)
    missing = [k for k in ("logits", "val_logits", "seconds", "info") if k not in arrays]
    if missing:
        raise io.CorruptFileError(f"{path}: logit bank lacks {', '.join(missing)}")
    arrays["info"] = json.loads(str(arrays["info"]))
    if design is not None:
        f_, n_ = design.n_forget_sets, design.n_pool
        if arrays["logits"].shape[:2] != (f_, n_) or arrays["val_logits"].shape[:2] != (f_, len(design.val)):
            raise io.CorruptFileError(f"{path}: logit bank of shape {arrays['logits'].shape} does not fit the "
                                      f"design ({f_} forget sets x {n_} examples); rerun its shadow job")
    if split is not None and arrays["info"].get("split") != split:
        raise io.CorruptFileError(f"{path}: holds split {arrays['info'].get('split')}, expected {split}")
    return arrays


def save_states(path, nets: Mapping[int, torch.nn.Module], metadata: dict | None = None) -> None:
    from safetensors.torch import save_file

    state = {f"f{f}.{k}": v.detach().to("cpu").contiguous() for f, net in nets.items()
             for k, v in net.state_dict().items()}
    with io.atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={k: str(v) for k, v in (metadata or {}).items()})


def load_state(path, forget_set: int, net: torch.nn.Module) -> torch.nn.Module:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise io.CorruptFileError(f"unreadable checkpoint {path}: {err}") from err
    prefix = f"f{forget_set}."
    mine = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not mine:
        raise io.CorruptFileError(f"{path} holds no model for forget set {forget_set}")
    try:
        net.load_state_dict(mine)
    except RuntimeError as err:
        raise io.CorruptFileError(f"checkpoint {path} (forget set {forget_set}) does not fit the model: {err}") \
            from err
    return net


def read_scores(path) -> dict:
    arrays = io.load_npz(path)
    for key in ("label", "llr", "p"):
        if key not in arrays:
            raise io.CorruptFileError(f"{path}: U-LiRA scores lack {key}")
    return arrays
