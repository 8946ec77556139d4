"""SSD, Selective Synaptic Dampening (Foster et al., AAAI 2024; the authors' ssd.py,
ParameterPerturber with the ssd_tuning settings). With the model in eval mode, the
diagonal Fisher importance of every parameter entry, the mean over batches of the squared
batch gradient of CE, on the forget set (I_f) and on the full training data D_r ∪ D_f
(I_D). Entries with I_f > alpha · I_D are multiplied by min(lambda · I_D / I_f, 1); every
other entry is left untouched. No training: one pass over each set, no epochs."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..batches import Split
from ._surgery import grads, trainable

NAME = "ssd"
LABEL = "SSD"
READS = ("retain", "forget")
DEFAULTS = {"alpha": 10.0, "dampening": 1.0, "batch_size": 128}


def search_space(trial, epoch_cap: int) -> dict:
    return {
        "alpha": trial.suggest_float("alpha", 0.1, 100.0, log=True),
        "dampening": trial.suggest_float("dampening", 0.1, 10.0, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [64, 128, 256]),
    }


def importance(model, split: Split, batch_size: int) -> list[torch.Tensor]:
    """Mean over the batches (in order) of the squared batch gradient of CE, one tensor
    per trainable parameter (the authors' calc_importance)."""
    params = trainable(model)
    total = [torch.zeros_like(p) for p in params]
    count = 0
    for x, y in split.batches(batch_size, shuffle=False):
        for acc, g in zip(total, grads(F.cross_entropy(model(x), y), params)):
            acc.add_(g.pow(2))
        count += 1
    return [t / max(count, 1) for t in total]


@torch.no_grad()
def dampen(params: list[torch.Tensor], full: list[torch.Tensor], forget: list[torch.Tensor], alpha: float,
           dampening: float) -> list[torch.Tensor]:
    """Multiply the entries with I_f > alpha · I_D by min(dampening · I_D / I_f, 1) in
    place (the authors' modify_weight, exponent 1, lower_bound 1); return the masks."""
    masks = []
    for p, i_d, i_f in zip(params, full, forget):
        selected = i_f > alpha * i_d
        factor = (dampening * i_d / i_f).clamp(max=1.0)
        p[selected] = p[selected] * factor[selected].to(p.dtype)
        masks.append(selected)
    return masks


def union(retain: Split, forget: Split) -> Split:
    """D_r followed by D_f: the full training data of the authors' full_train_dl."""
    return Split(torch.cat([retain.images, forget.images]), torch.cat([retain.labels, forget.labels]), retain.spec)


def unlearn(model, data, hp, generator):
    batch_size = int(hp["batch_size"])
    model.eval()
    i_f = importance(model, data.forget, batch_size)
    i_d = importance(model, union(data.retain, data.forget), batch_size)
    dampen(trainable(model), i_d, i_f, float(hp["alpha"]), float(hp["dampening"]))
    return model
