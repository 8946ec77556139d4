"""GA, gradient ascent: E epochs minimising -CE on the forget set, no scheduler."""

import torch.nn.functional as F

from ._loops import fine_tune
from ._spaces import base_space

NAME = "ga"
LABEL = "GA"
READS = ("forget",)
DEFAULTS = {"epochs": 10, "batch_size": 256, "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4}


def search_space(trial, epoch_cap: int) -> dict:
    return base_space(trial, epoch_cap)


def negative_ce(logits, labels):
    return -F.cross_entropy(logits, labels)


def unlearn(model, data, hp, generator):
    return fine_tune(model, data.forget, hp, generator, schedule=None, loss_fn=negative_ce)
