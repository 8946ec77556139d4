"""UNSIR, unlearning by error-maximising noise (Tarun et al., "Fast Yet Effective Machine
Unlearning"; the authors' notebook, vikram2000b/Fast-Machine-Unlearning). (1) Noise: for
each forget class, a batch of `batch_size` noise images (N(0, 1) in the normalised input
space) trained with Adam to maximise the CE of O (eval mode) on that class, minus
noise_l2 times the mean squared norm of an image. (2) Impair: E_i epochs, Adam, train
mode, on the noise (each class's batch repeated `noise_batches` times, labelled with its
class) shuffled with up to `retain_per_class` retain images of each class outside the
forget classes (the first ones, in split order). (3) Repair: E_r epochs, Adam, on those
retain images alone. A class-wise method: defined for the class and subclass scenarios."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..batches import batch_bounds, to_device
from ..train import adam
from ._spaces import suggest_batch, suggest_epochs, suggest_lr
from ._surgery import randn_like

NAME = "unsir"
LABEL = "UNSIR"
READS = ("retain", "forget")
SCENARIOS = ("class", "subclass")
DEFAULTS = {
    "batch_size": 256, "noise_lr": 0.1, "noise_epochs": 5, "noise_steps": 8, "noise_l2": 0.1,
    "noise_batches": 20, "retain_per_class": 1000,
    "impair_epochs": 1, "impair_lr": 0.02, "repair_epochs": 1, "repair_lr": 0.01,
}


def search_space(trial, epoch_cap: int) -> dict:
    return {
        "batch_size": suggest_batch(trial),
        "impair_epochs": suggest_epochs(trial, "impair_epochs", epoch_cap),
        "impair_lr": suggest_lr(trial, "impair_lr"),
        "repair_epochs": suggest_epochs(trial, "repair_epochs", epoch_cap),
        "repair_lr": suggest_lr(trial, "repair_lr"),
        "noise_lr": trial.suggest_float("noise_lr", 1e-3, 1.0, log=True),
    }


def noise_objective(logits: torch.Tensor, noise: torch.Tensor, label: int, l2: float) -> torch.Tensor:
    """−CE(logits, label) + l2 · mean over images of the squared norm (to be minimised)."""
    target = torch.full((len(noise),), int(label), dtype=torch.long, device=noise.device)
    return -F.cross_entropy(logits, target) + float(l2) * noise.pow(2).flatten(1).sum(1).mean()


def error_maximising_noise(model, label: int, shape, hp, generator) -> torch.Tensor:
    """One class's noise batch, optimised with the model in eval mode (its mode restored)."""
    device = next(model.parameters()).device
    noise = randn_like(torch.empty(shape, device=device), generator).requires_grad_(True)
    optimizer = torch.optim.Adam([noise], lr=float(hp["noise_lr"]))
    was_training = model.training
    model.eval()
    for _ in range(int(hp["noise_epochs"]) * int(hp["noise_steps"])):
        loss = noise_objective(model(noise), noise, label, hp["noise_l2"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.train(was_training)
    return noise.detach()


def retain_samples(retain, forget_classes: list[int], per_class: int) -> torch.Tensor:
    """Indices of the first `per_class` retain images of each class outside the forget classes."""
    labels = retain.labels.cpu()
    keep = []
    for c in sorted(set(labels.tolist()) - set(forget_classes)):
        keep.append((labels == c).nonzero().squeeze(1)[: int(per_class)])
    if not keep:
        raise ValueError("UNSIR needs retain images of a class outside the forget classes "
                         f"{forget_classes} (it is a class-wise method)")
    return torch.cat(keep).sort().values


def train_epochs(model, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float, batch_size: int, generator):
    """`epochs` shuffled passes of CE over (x, y), Adam, the model in train mode."""
    optimizer = adam(model.parameters(), lr)
    model.train()
    for _ in range(int(epochs)):
        order = to_device(torch.randperm(len(y), generator=generator), y.device)
        for start, stop in batch_bounds(len(y), batch_size):
            idx = order[start:stop]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()


def unlearn(model, data, hp, generator):
    retain, forget = data.retain, data.forget
    batch_size = int(hp["batch_size"])
    classes = sorted(set(forget.labels.tolist()))
    index = retain_samples(retain, classes, hp["retain_per_class"]).to(retain.device)
    retain_x, retain_y = retain.normalise(retain.images[index]), retain.labels[index]
    shape = (batch_size, *retain_x.shape[1:])
    noise_x, noise_y = [], []
    for c in classes:
        noise = error_maximising_noise(model, c, shape, hp, generator)
        noise_x += [noise] * int(hp["noise_batches"])
        noise_y += [torch.full((batch_size,), c, dtype=torch.long, device=noise.device)] * int(hp["noise_batches"])
    impair_x = torch.cat(noise_x + [retain_x.contiguous()])
    impair_y = torch.cat(noise_y + [retain_y])
    train_epochs(model, impair_x, impair_y, hp["impair_epochs"], hp["impair_lr"], batch_size, generator)
    del impair_x
    train_epochs(model, retain_x, retain_y, hp["repair_epochs"], hp["repair_lr"], batch_size, generator)
    return model
