"""IU, influence unlearning with the WoodFisher approximation (eval mode throughout):
v = g_f / (n_f + n_r) - g_r n_f / ((n_f + n_r) n_r), with g_f and g_r the summed
per-sample CE gradients over the forget and retain sets; k ~ H^-1 v from the WoodFisher
rank-one recursion over single retain samples in order (damping N = 1000);
theta = theta + alpha k. No optimiser."""

from __future__ import annotations

from typing import Iterable

import torch
import torch.nn.functional as F

from ._g1_common import add_flat_, eval_mode, flat_grad, trainable
from .common import BATCH_SIZES

NAME = "iu"
LABEL = "IU"
READS = ("retain", "forget")
DEFAULTS = {"batch_size": 256, "alpha": 0.2}
DAMPING = 1000.0
# "About 1,000" samples: the reference loop stops after the sample with index N + 1,
# so it reads N + 2 single retain samples (the first initialises o).
WOODFISHER_SAMPLES = 1002


def search_space(trial, epoch_cap: int) -> dict:
    return {
        "batch_size": trial.suggest_categorical("batch_size", list(BATCH_SIZES)),
        "alpha": trial.suggest_float("alpha", 0.0, 1.0),
    }


def summed_gradient(model, split, batch_size: int) -> torch.Tensor:
    """Sum over batches (in order) of the batch-mean CE gradient times the batch size."""
    params = trainable(model)
    total = torch.zeros(sum(p.numel() for p in params), device=params[0].device, dtype=params[0].dtype)
    for x, y in split.batches(batch_size, shuffle=False):
        total.add_(flat_grad(F.cross_entropy(model(x), y), params), alpha=len(y))
    return total


def influence_direction(g_forget: torch.Tensor, g_retain: torch.Tensor, n_forget: int, n_retain: int) -> torch.Tensor:
    """v = g_f / (n_f + n_r) - g_r n_f / ((n_f + n_r) n_r)."""
    n = n_forget + n_retain
    return g_forget / n - g_retain * (n_forget / (n * n_retain))


def woodfisher(v: torch.Tensor, sample_grads: Iterable[torch.Tensor], damping: float = DAMPING) -> torch.Tensor:
    """The reference's WoodFisher recursion: the first gradient initialises o; for each
    later g, k <- k - (k.g / (N + o.g)) o, then o <- o - (o.g / (N + o.g)) o; k starts at v.
    (Not under no_grad: `sample_grads` may be a generator that needs autograd.)"""
    k = v.clone()
    o = None
    for g in sample_grads:
        if o is None:
            o = g.clone()
            continue
        og = torch.dot(o, g)
        denom = damping + og
        k -= (torch.dot(k, g) / denom) * o
        o -= (og / denom) * o
    return k


def single_sample_gradients(model, split, limit: int):
    """Per-sample CE gradients of the first `limit` samples of `split`, in order."""
    params = trainable(model)
    for i in range(min(limit, len(split))):
        x = split.normalise(split.images[i:i + 1])
        yield flat_grad(F.cross_entropy(model(x), split.labels[i:i + 1]), params)


def unlearn(model, data, hp, generator):
    retain, forget = data.retain, data.forget
    batch_size = int(hp["batch_size"])
    eval_mode(model)
    g_forget = summed_gradient(model, forget, batch_size)
    g_retain = summed_gradient(model, retain, batch_size)
    v = influence_direction(g_forget, g_retain, len(forget), len(retain))
    k = woodfisher(v, single_sample_gradients(model, retain, WOODFISHER_SAMPLES), DAMPING)
    add_flat_(trainable(model), float(hp["alpha"]) * k)
    return model.eval()
