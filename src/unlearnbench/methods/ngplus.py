"""NG+, negative gradient plus: one epoch = one pass over the retain set, each retain
batch paired with the next batch of the forget set, whose one shuffled pass per epoch
is replayed in the same order when it runs out (itertools.cycle, as the reference);
loss = alpha CE(retain) - (1 - alpha) CE(forget). Eval mode throughout, so BatchNorm
statistics stay frozen. SGD, no scheduler. The reference's proximal term has
lambda = 0 and is left out."""

from itertools import cycle

import torch.nn.functional as F

from ..train import sgd
from ._spaces import base_space

NAME = "ngplus"
LABEL = "NG+"
READS = ("retain", "forget")
DEFAULTS = {"epochs": 10, "batch_size": 256, "alpha": 0.95, "lr": 0.01, "momentum": 0.9, "weight_decay": 0.0}


def search_space(trial, epoch_cap: int) -> dict:
    return {**base_space(trial, epoch_cap), "alpha": trial.suggest_float("alpha", 0.0, 1.0)}


def unlearn(model, data, hp, generator):
    alpha = float(hp["alpha"])
    batch_size = int(hp["batch_size"])
    if len(data.forget) == 0:
        raise ValueError("NG+ needs a non-empty forget set")
    optimizer = sgd(model.parameters(), hp["lr"], hp["momentum"], hp["weight_decay"])
    model.eval()
    for _ in range(int(hp["epochs"])):
        # A fresh shuffled forget pass with every epoch; within the epoch, cycle() replays
        # its batches in the same order whenever it runs out before the retain pass ends.
        forget_batches = cycle(data.forget.batches(batch_size, shuffle=True, generator=generator))
        for x_r, y_r in data.retain.batches(batch_size, shuffle=True, generator=generator):
            x_f, y_f = next(forget_batches)
            loss = alpha * F.cross_entropy(model(x_r), y_r) - (1.0 - alpha) * F.cross_entropy(model(x_f), y_f)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return model.eval()
