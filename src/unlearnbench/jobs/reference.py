"""The reference stage: the splits, the seeded initialisations, and the original
(retain + forget) and retrained (retain only) models of each seed."""

from __future__ import annotations

import numpy as np
import torch

from .. import data, io, models, runtime
from ..train import Recipe, train
from .context import Context


def write_splits(dataset: str, out, data_dir="data", download=False, val_fraction=0.15, forget_fraction=0.1,
                 verify_checksums=True):
    pool = data.load_pool(dataset, data_dir, download, verify_checksums=verify_checksums)
    splits = data.make_splits(pool.n_train, len(pool.labels), val_fraction, forget_fraction)
    print({k: len(v) for k, v in splits.items()})
    # the sizes it was drawn for, checked wherever it is read (data.check_splits)
    io.save_npz(out, **splits, n_train=np.int64(pool.n_train), n_pool=np.int64(len(pool.labels)))


def write_init(dataset: str, model: str, seed: int, out, num_classes: int | None = None) -> None:
    """`num_classes`: a scenario's, where it changes the dataset's (sub-class: super-classes)."""
    spec = data.get_spec(dataset)
    net = models.build(model, num_classes or spec.num_classes, spec.image_size, seed=seed)
    io.save_state(out, net, {"dataset": dataset, "model": model, "seed": seed})


def train_reference(ctx: Context, model: str, kind: str, seed: int, recipe: dict, init, out_model, out_info,
                    out_metrics) -> dict:
    """Train the original or retrained model of one seed from its saved initialisation."""
    net = ctx.model(model, init)
    generator = runtime.seed_everything(seed)
    seconds = train(net, ctx.training_split(kind), Recipe.from_config(recipe), generator, ctx.precision,
                    desc=f"{kind} {model} seed {seed}")
    check_finite_weights(net, f"the {kind} {model} of seed {seed}")
    io.save_state(out_model, net, {"dataset": ctx.dataset, "model": model, "kind": kind, "seed": seed})
    metrics = {**ctx.evaluate(net), "seconds": seconds, "hp_source": "recipe", **ctx.conditions()}
    io.write_json(out_info, {"seconds": seconds, "epochs": recipe["epochs"], "recipe": recipe,
                             "device": str(ctx.device), "precision": ctx.precision,
                             "train_size": len(ctx.training_split(kind))})
    io.write_json(out_metrics, metrics)
    print(metrics)
    return metrics


def train_references(ctx: Context, model: str, seed: int, recipe: dict, kinds, out_init, out_models, out_infos,
                     out_metrics) -> dict[str, dict]:
    """One job's references: write the seed's initialisation, then train each kind
    (original, retrained) from it in turn; the i-th paths are the i-th kind's."""
    if not len(kinds) == len(out_models) == len(out_infos) == len(out_metrics):
        raise ValueError(f"{len(kinds)} reference kinds need as many model, info and metrics paths")
    write_init(ctx.dataset, model, seed, out_init, ctx.spec.num_classes)
    return {kind: train_reference(ctx, model, kind, seed, recipe, out_init, out_models[i], out_infos[i],
                                  out_metrics[i]) for i, kind in enumerate(kinds)}


def check_finite_weights(net: torch.nn.Module, what: str) -> None:
    """A reference model with NaN or infinite weights is unusable downstream (IU, FF and
    every method that reads its gradients): fail its job, naming the tensors."""
    bad = [name for name, p in net.named_parameters() if not torch.isfinite(p).all()]
    if bad:
        raise FloatingPointError(
            f"training {what} left non-finite weights in {', '.join(bad)}. Known cause: on CPU, "
            "bf16 autocast corrupts the weight gradient of a stride-2 3x3 convolution on a 1x1 "
            "channels_last map (resnet18 on 16x16 inputs); use precision fp32 there.")
