"""Helpers shared by SRL, NG+, SCRUB, BT, SalUn, FF and IU (not a method module)."""

from __future__ import annotations

from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..batches import Split
from .common import sgd


def device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def trainable(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def draw_seed(generator: torch.Generator) -> int:
    """An integer seed drawn from the method's generator (for a seeded model build)."""
    return int(torch.randint(0, 2**31 - 1, (1,), generator=generator))


def eval_mode(model: nn.Module) -> nn.Module:
    """Eval mode for passes that backpropagate (BatchNorm statistics frozen, no dropout or
    stochastic depth). timm's TinyViT `Attention` caches its bias table in eval mode with
    the autograd graph of the first forward: a second backward through it fails and the
    cache goes stale once the parameter changes. Those modules (no dropout inside) are
    put in train mode, which only makes them recompute the table from the live parameter."""
    model.eval()
    for module in model.modules():
        if hasattr(module, "attention_bias_cache"):
            module.train()
    return model


def clear_bias_caches(model: nn.Module) -> nn.Module:
    """Drop TinyViT's cached attention-bias tables (stale once the weights change; a
    cached tensor that carries a graph also cannot be deep-copied)."""
    for module in model.modules():
        if hasattr(module, "attention_bias_cache"):
            module.attention_bias_cache = {}
    return model


def grads(loss: torch.Tensor, params: list[torch.Tensor], retain_graph: bool = False) -> list[torch.Tensor]:
    """d loss / d params without touching `.grad`; an unused parameter gets zeros."""
    out = torch.autograd.grad(loss, params, retain_graph=retain_graph, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, out)]


def flat_grad(loss: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([g.reshape(-1) for g in grads(loss, params)])


@torch.no_grad()
def add_flat_(params: list[torch.Tensor], vector: torch.Tensor) -> None:
    """params += vector, the vector laid out as torch.cat of the flattened params."""
    offset = 0
    for p in params:
        n = p.numel()
        p.add_(vector[offset:offset + n].view_as(p))
        offset += n


def kl_t(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(softmax(t/T) || softmax(s/T)) * T^2, summed over classes, averaged over the batch."""
    t = float(temperature)
    return F.kl_div(F.log_softmax(student_logits / t, dim=1), F.softmax(teacher_logits / t, dim=1),
                    reduction="batchmean") * t * t


def cycled_batches(split: Split, batch_size: int, generator: torch.Generator) -> Iterator:
    """Endless shuffled batches: a fresh shuffled pass each time the split runs out."""
    if len(split) == 0:
        raise ValueError("cannot cycle over an empty split")
    while True:
        yield from split.batches(batch_size, shuffle=True, generator=generator)


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
