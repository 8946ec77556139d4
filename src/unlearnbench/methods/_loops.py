"""Training loops, losses and learning-rate schedules the method modules share."""

from __future__ import annotations

from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..batches import Split
from ..train import cosine, sgd


def run_epoch(model: nn.Module, data: Split, batch_size: int, optimizer: torch.optim.Optimizer,
              generator: torch.Generator, loss_fn: Callable = F.cross_entropy, shuffle: bool = True,
              augment_data: bool = False) -> None:
    """One pass over `data`, one optimiser step per batch."""
    for x, y in data.batches(batch_size, shuffle=shuffle, generator=generator, augment_data=augment_data):
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def fine_tune(model: nn.Module, data: Split, hp: dict, generator: torch.Generator,
              schedule: str | None = "cosine", loss_fn: Callable = F.cross_entropy) -> nn.Module:
    """E epochs of SGD on `data` in train mode, optionally cosine-annealed per epoch."""
    optimizer = sgd(model.parameters(), hp["lr"], hp.get("momentum", 0.9), hp["weight_decay"])
    scheduler = cosine(optimizer, hp["epochs"]) if schedule == "cosine" else None
    model.train()
    for _ in range(int(hp["epochs"])):
        run_epoch(model, data, int(hp["batch_size"]), optimizer, generator, loss_fn)
        if scheduler is not None:
            scheduler.step()
    return model


def cycle(make: Callable[[], Iterator]) -> Iterator:
    """Endless iteration over fresh iterators from `make()` (a new shuffle each pass)."""
    while True:
        empty = True
        for item in make():
            empty = False
            yield item
        if empty:
            return


def random_labels(n: int, num_classes: int, generator: torch.Generator, device) -> torch.Tensor:
    """n labels drawn uniformly from [0, C) on the CPU generator (the true label may come up)."""
    return torch.randint(0, int(num_classes), (n,), generator=generator).to(device)


class RelabelledUnion:
    """D_r together with D_f whose labels are redrawn uniformly in [0, C) at every epoch
    (SRL, and SalUn's training phase). The images are concatenated once."""

    def __init__(self, retain: Split, forget: Split, num_classes: int):
        self.images = torch.cat([retain.images, forget.images])
        self.retain_labels = retain.labels
        self.n_forget = len(forget)
        self.num_classes = int(num_classes)
        self.spec = retain.spec

    def epoch_split(self, generator: torch.Generator) -> Split:
        fresh = random_labels(self.n_forget, self.num_classes, generator, self.retain_labels.device)
        return Split(self.images, torch.cat([self.retain_labels, fresh]), self.spec)


def train_random_labels(model: nn.Module, retain: Split, forget: Split, num_classes: int, hp: dict,
                        generator: torch.Generator,
                        before_step: Callable[[], None] | None = None) -> nn.Module:
    """SRL training: E epochs of CE in train mode on D_r plus freshly relabelled D_f,
    shuffled together, SGD without scheduler. `before_step` runs between backward and
    the optimiser step (SalUn masks the gradients there)."""
    union = RelabelledUnion(retain, forget, num_classes)
    optimizer = sgd(model.parameters(), hp["lr"], hp["momentum"], hp["weight_decay"])
    model.train()
    for _ in range(int(hp["epochs"])):
        split = union.epoch_split(generator)
        for x, y in split.batches(int(hp["batch_size"]), shuffle=True, generator=generator):
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if before_step is not None:
                before_step()
            optimizer.step()
    return model


def kl_t(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(softmax(t/T) || softmax(s/T)) * T^2, summed over classes, averaged over the batch."""
    t = float(temperature)
    return F.kl_div(F.log_softmax(student_logits / t, dim=1), F.softmax(teacher_logits / t, dim=1),
                    reduction="batchmean") * t * t


# ---------------------------------------------------------------- the milestone schedule


def milestone_factor(epoch: int, epochs: int, gamma: float) -> float:
    """gamma^n, n = how many of the milestones int(0.5E), int(0.8E), int(0.9E) are < `epoch`,
    the reference's adjust_learning_rate. Coinciding milestones each count. SCRUB passes
    the 1-based epoch (a milestone 0 applies from the first epoch), CF-k and EU-k the
    0-based one, as the reference's scrubv2 and fk_finetune do (docs/reference.md, M1, M2)."""
    milestones = (int(0.5 * epochs), int(0.8 * epochs), int(0.9 * epochs))
    return gamma ** sum(epoch > m for m in milestones)


def step_decay(optimizer: torch.optim.Optimizer, epochs: int, gamma: float) -> torch.optim.lr_scheduler.LambdaLR:
    """lr x milestone_factor of the 0-based epoch e (LambdaLR's count) for CF-k and EU-k:
    the reference's fk_finetune passes the 0-based epoch (E = 3 runs at 1, 1, gamma)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: milestone_factor(e, epochs, gamma))
