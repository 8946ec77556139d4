"""FT, fine-tuning: E epochs of CE on the retain set, cosine annealing over E."""

from ._loops import fine_tune
from ._spaces import base_space

NAME = "ft"
LABEL = "FT"
READS = ("retain",)
DEFAULTS = {"epochs": 5, "batch_size": 256, "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4}


def search_space(trial, epoch_cap: int) -> dict:
    return base_space(trial, epoch_cap)


def unlearn(model, data, hp, generator):
    return fine_tune(model, data.retain, hp, generator, schedule="cosine")
