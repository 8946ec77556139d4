"""Per-model evaluation (PAPER.md §4): accuracies on four splits, per-sample losses,
val and test population MIA, all from one forward pass per split in large batches."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .attacks.mia import mia_accuracy
from .batches import Split
from .runtime import autocast

EVAL_BATCH = {"cpu": 512, "cuda": 4096}


@dataclass
class Predictions:
    logits: torch.Tensor  # float32 (N, C) on CPU
    losses: np.ndarray  # float64 (N,)
    correct: np.ndarray  # bool (N,)


@torch.no_grad()
def predict(model: nn.Module, data: Split, batch_size: int | None = None, precision: str = "fp32") -> Predictions:
    """Un-augmented forward pass in eval mode over the whole split, in order."""
    batch_size = batch_size or EVAL_BATCH.get(data.device.type, 512)
    was_training = model.training
    model.eval()
    logits = []
    for x, _ in data.batches(batch_size, shuffle=False):
        with autocast(data.device, precision):
            logits.append(model(x).float())
    model.train(was_training)
    logits = torch.cat(logits) if logits else torch.empty(0)
    labels = data.labels
    losses = F.cross_entropy(logits, labels, reduction="none")
    correct = logits.argmax(1) == labels
    return Predictions(logits.cpu(), losses.double().cpu().numpy(), correct.cpu().numpy())


def evaluate(model: nn.Module, splits: dict[str, Split], precision: str = "fp32") -> dict[str, float]:
    """RA, FA, VA, TA and the val/test population MIA of one model."""
    preds = {name: predict(model, splits[name], precision=precision) for name in ("retain", "forget", "val", "test")}
    out = {f"{name}_acc": float(p.correct.mean()) for name, p in preds.items()}
    out["val_mia"] = mia_accuracy(preds["forget"].losses, preds["val"].losses)
    out["test_mia"] = mia_accuracy(preds["forget"].losses, preds["test"].losses)
    return out
