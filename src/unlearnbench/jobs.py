"""Job-level functions: what one Snakemake job does, callable from scripts and tests.

Each takes plain paths and values (no Snakemake object) and writes its outputs
atomically, so a killed job leaves nothing under a real output name.
"""

from __future__ import annotations

import copy

import torch

from . import data, evaluate, io, methods, models, runtime
from .batches import Split, make_splits_on_device
from .train import Recipe, train


def write_splits(dataset: str, out, data_dir="data", download=False, val_fraction=0.15, forget_fraction=0.1):
    pool = data.load_pool(dataset, data_dir, download)
    splits = data.make_splits(pool.n_train, len(pool.labels), val_fraction, forget_fraction)
    print({k: len(v) for k, v in splits.items()})
    io.save_npz(out, **splits)


def write_init(dataset: str, model: str, seed: int, out) -> None:
    spec = data.get_spec(dataset)
    net = models.build(model, spec.num_classes, spec.image_size, seed=seed)
    io.save_state(out, net, {"dataset": dataset, "model": model, "seed": seed})


class Context:
    """Everything a model job needs: the dataset's splits on the device, the spec, the
    device and the precision. Built once per job."""

    def __init__(self, dataset: str, splits_path, data_dir="data", download=False, device="auto",
                 precision="fp32", threads=None):
        self.dataset = dataset
        self.spec = data.get_spec(dataset)
        self.device = runtime.select_device(device)
        self.precision = runtime.resolve_precision(precision, self.device)
        runtime.setup(threads, self.device)
        indices = data.read_splits(splits_path)
        pool = data.load_pool(dataset, data_dir, download)
        if max(int(v.max()) for v in indices.values() if len(v)) >= len(pool.labels):
            raise io.CorruptFileError(f"{splits_path} indexes past the {len(pool.labels)} examples of {dataset}")
        self.splits: dict[str, Split] = make_splits_on_device(
            pool.images, pool.labels, {k: indices[k] for k in data.SPLIT_NAMES}, self.spec, self.device)

    def model(self, name: str, checkpoint) -> torch.nn.Module:
        net = models.build(name, self.spec.num_classes, self.spec.image_size)
        io.load_state(checkpoint, net)
        return runtime.prepare_model(net, self.device)

    def training_split(self, kind: str) -> Split:
        """original: retain + forget; retrained: retain only."""
        if kind == "retrained":
            return self.splits["retain"]
        r, f = self.splits["retain"], self.splits["forget"]
        return Split(torch.cat([r.images, f.images]), torch.cat([r.labels, f.labels]), self.spec)

    def evaluate(self, net) -> dict:
        return evaluate.evaluate(net, self.splits, self.precision)


def train_reference(ctx: Context, model: str, kind: str, seed: int, recipe: dict, init, out_model, out_info,
                    out_metrics) -> dict:
    """Train the original or retrained model of one seed from its saved initialisation."""
    net = ctx.model(model, init)
    generator = runtime.seed_everything(seed)
    seconds = train(net, ctx.training_split(kind), Recipe.from_config(recipe), generator, ctx.precision,
                    desc=f"{kind} {model} seed {seed}")
    check_finite_weights(net, f"the {kind} {model} of seed {seed}")
    io.save_state(out_model, net, {"dataset": ctx.dataset, "model": model, "kind": kind, "seed": seed})
    metrics = {**ctx.evaluate(net), "seconds": seconds}
    io.write_json(out_info, {"seconds": seconds, "epochs": recipe["epochs"], "recipe": recipe,
                             "device": str(ctx.device), "precision": ctx.precision,
                             "train_size": len(ctx.training_split(kind))})
    io.write_json(out_metrics, metrics)
    print(metrics)
    return metrics


def check_finite_weights(net: torch.nn.Module, what: str) -> None:
    """A reference model with NaN or infinite weights is unusable downstream (IU, FF and
    every method that reads its gradients): fail its job, naming the tensors."""
    bad = [name for name, p in net.named_parameters() if not torch.isfinite(p).all()]
    if bad:
        raise FloatingPointError(
            f"training {what} left non-finite weights in {', '.join(bad)}. Known cause: on CPU, "
            "bf16 autocast corrupts the weight gradient of a stride-2 3x3 convolution on a 1x1 "
            "channels_last map (resnet18 on 16x16 inputs); use precision fp32 there.")


def unlearn_and_evaluate(ctx: Context, model: str, method: str, seed: int, hp: dict, original,
                         out_metrics, out_model=None) -> dict:
    """Unlearn the original of one seed with `method` and `hp`, evaluate, write metrics."""
    net = ctx.model(model, original)
    generator = runtime.seed_everything(seed)
    net, seconds = methods.run(method, net, ctx.splits, ctx.spec.num_classes, hp, generator,
                                ctx.precision)
    metrics = {**ctx.evaluate(net), "seconds": seconds, "hyperparameters": methods.hyperparameters(method, hp)}
    if out_model:
        io.save_state(out_model, net, {"dataset": ctx.dataset, "model": model, "method": method, "seed": seed})
    io.write_json(out_metrics, metrics)
    print(metrics)
    return metrics


def unlearn_copy(ctx: Context, original: torch.nn.Module, method: str, hp: dict, seed: int):
    """Unlearn a copy of an in-memory original (search trials, shadow models)."""
    generator = runtime.seed_everything(seed)
    return methods.run(method, copy.deepcopy(original), ctx.splits, ctx.spec.num_classes, hp, generator,
                       ctx.precision)


