"""SRL, successive random labels: every epoch each forget sample gets a fresh uniform
label in [0, C) (the true label is not excluded); CE on the relabelled forget set
together with the retain set, shuffled; SGD, no scheduler."""

from ._loops import train_random_labels
from ._spaces import base_space

NAME = "srl"
LABEL = "SRL"
READS = ("retain", "forget")
DEFAULTS = {"epochs": 5, "batch_size": 256, "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4}


def search_space(trial, epoch_cap: int) -> dict:
    return base_space(trial, epoch_cap)


def unlearn(model, data, hp, generator):
    return train_random_labels(model, data.retain, data.forget, data.num_classes, hp, generator)
