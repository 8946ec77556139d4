"""Per-model evaluation (docs/protocol.md §4): accuracies on four splits, per-sample losses,
and the per-model attacks of attacks/registry.py (the val and test population MIA first),
all from one forward pass per split in large batches.

Speed (benchmarks/eval_throughput.py): one un-augmented pass per split gives logits,
from which accuracy and per-sample losses both follow; batches are slices of the
split's uint8 tensor normalised on the fly; the forward pass runs under
inference_mode on `cpu_rewrites.inference_model` (CPU: BatchNorm folded into
channels_last convolutions, convolutions on maps smaller than their kernel as matrix
products); batches are large, scaled down for large images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .attacks.registry import MODEL_ATTACKS, resolve
from .batches import Split
from .cpu_rewrites import inference_model
from .runtime import autocast

# Evaluation batch size for 32x32 images; larger images get proportionally fewer per
# batch (the same number of pixels), never fewer than the floor.
EVAL_BATCH = {"cpu": 512, "cuda": 4096}  # CPU: 512 measured fastest (L2/L3-sized activations)
EVAL_BATCH_FLOOR = {"cpu": 32, "cuda": 256}


DIVERGED_LOSS = 1e4


@dataclass
class Predictions:
    logits: torch.Tensor  # float32 (N, C) on CPU
    losses: np.ndarray  # float64 (N,)
    correct: np.ndarray  # bool (N,)
    finite: np.ndarray  # bool (N,): every logit of the row is finite


def eval_batch_size(data: Split) -> int:
    kind = data.device.type if data.device.type in EVAL_BATCH else "cpu"
    pixels = int(data.images.shape[-1]) * int(data.images.shape[-2]) if data.images.dim() == 4 else 32 * 32
    return max(EVAL_BATCH_FLOOR[kind], EVAL_BATCH[kind] * 32 * 32 // max(pixels, 1))


def _predict(net: nn.Module, data: Split, batch_size: int | None, precision: str) -> Predictions:
    batch_size = batch_size or eval_batch_size(data)
    logits = []
    with torch.inference_mode():
        for x, _ in data.batches(batch_size, shuffle=False):
            with autocast(data.device, precision):
                logits.append(net(x).float())
    # outside inference mode: the results are ordinary tensors (usable with autograd)
    logits = torch.cat(logits) if logits else torch.empty(0, device=data.device)
    labels = data.labels
    # A diverged model (non-finite logits, e.g. FF's noise on a small model) is scored,
    # not fatal: its rows count as wrong and get a huge (finite) loss; `evaluate` reports
    # no MIA over such rows.
    finite = torch.isfinite(logits).all(1)
    losses = torch.where(finite, F.cross_entropy(logits, labels, reduction="none"), DIVERGED_LOSS)
    losses = torch.nan_to_num(losses, nan=DIVERGED_LOSS, posinf=DIVERGED_LOSS)
    correct = (logits.argmax(1) == labels) & finite
    return Predictions(logits.cpu(), losses.double().cpu().numpy(), correct.cpu().numpy(), finite.cpu().numpy())


def predict(model: nn.Module, data: Split, batch_size: int | None = None, precision: str = "fp32") -> Predictions:
    """Un-augmented forward pass in eval mode over the whole split, in order; the model's
    train/eval mode is restored afterwards."""
    with inference_model(model, data.device, tuple(data.images.shape[1:])) as net:
        return _predict(net, data, batch_size, precision)


def evaluate(model: nn.Module, splits: dict[str, Split], precision: str = "fp32") -> dict:
    """RA, FA, VA, TA, the columns of every per-model attack (attacks/registry.py
    MODEL_ATTACKS: the val/test population MIA first) of one model, and its divergence flags.

    A model with non-finite outputs (docs/protocol.md §4) keeps its accuracies (those rows
    count as wrong) but has no loss on them: an MIA over a set holding such rows would
    compare one constant with another and read as "indiscernible", so it is NaN instead.
    `nonfinite_fraction` is the fraction of evaluated rows (all four splits) whose logits
    are not finite; `diverged` is true when any is (1.0: completely diverged)."""
    names = ("retain", "forget", "val", "test")
    shapes = {tuple(splits[name].images.shape[1:]) for name in names}
    shape = shapes.pop() if len(shapes) == 1 else None  # one image size: specialise to it
    with inference_model(model, splits[names[0]].device, shape) as net:  # prepared once for the four splits
        preds = {name: _predict(net, splits[name], None, precision) for name in names}
    out = {f"{name}_acc": float(p.correct.mean()) for name, p in preds.items()}
    nonfinite = {name: int((~p.finite).sum()) for name, p in preds.items()}
    for attack in MODEL_ATTACKS:
        values = resolve(attack.compute)(preds)
        if set(values) != set(attack.columns):
            raise ValueError(f"attack {attack.name} returned {sorted(values)}, not its columns {list(attack.columns)}")
        out.update({c: float(values[c]) for c in attack.columns})
    rows = sum(len(p.logits) for p in preds.values())
    out["nonfinite_fraction"] = sum(nonfinite.values()) / rows if rows else 0.0
    out["diverged"] = out["nonfinite_fraction"] > 0
    return out
