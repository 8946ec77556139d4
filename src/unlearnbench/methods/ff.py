"""FF, Fisher forgetting: no gradient training. A diagonal Fisher estimate F from the
retain set (eval mode, in order): for each batch and each class y, the squared gradient
of the batch-mean CE against the constant label y, weighted by the batch mean of p_y;
F is divided by the number of batches. Each parameter then gets Gaussian noise:
theta = theta0 + sqrt(var) N(0, 1) with var derived from F (`fisher_variance`).

Every run computes F afresh: its cost is part of the method's run time (RTE), so no
F is kept between runs, even in one process (a search's trials and the final runs of
search.one_job share a process)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._spaces import suggest_batch
from ._surgery import grads, trainable

NAME = "ff"
LABEL = "FF"
READS = ("retain",)
DEFAULTS = {"batch_size": 64, "alpha": 0.2}
EPS = 1e-8
VAR_CAP = 1e3
CLASSIFIER_VAR_CAP = 1e2
BOOST = 10.0


def search_space(trial, epoch_cap: int) -> dict:
    return {
        "batch_size": suggest_batch(trial),
        "alpha": trial.suggest_float("alpha", 0.0, 1.0),
    }


def fisher_diagonal(model, split, batch_size: int, num_classes: int) -> list[torch.Tensor]:
    """F per trainable parameter: sum over batches and classes y of mean_batch(p_y) x
    grad(mean CE(outputs, y))^2, divided by the number of batches. Eval mode, in order."""
    params = trainable(model)
    fisher = [torch.zeros_like(p) for p in params]
    was_training = model.training
    model.eval()
    n_batches = 0
    for x, _ in split.batches(batch_size, shuffle=False):
        logits = model(x)
        prob = F.softmax(logits.detach().float(), dim=1)
        for y in range(num_classes):
            target = torch.full((len(x),), y, dtype=torch.int64, device=x.device)
            loss = F.cross_entropy(logits, target)
            weight = prob[:, y].mean()
            for f, g in zip(fisher, grads(loss, params, retain_graph=y < num_classes - 1)):
                f.add_(weight * g.pow(2))
        n_batches += 1
    model.train(was_training)
    return [f / max(n_batches, 1) for f in fisher]


def fisher_variance(fisher: torch.Tensor, alpha: float, num_classes: int) -> torch.Tensor:
    """The noise variance of one parameter tensor from its Fisher diagonal:
    min(1 / (F + 1e-8), 1e3) (1e2 when the first dimension is C), times alpha, averaged
    over dimension 1 when ndim > 1, times 10 when the first dimension is C or ndim == 1."""
    is_classifier = fisher.ndim >= 1 and fisher.shape[0] == num_classes
    var = (1.0 / (fisher + EPS)).clamp(max=VAR_CAP)
    if is_classifier:
        var = var.clamp(max=CLASSIFIER_VAR_CAP)
    var = alpha * var
    if var.ndim > 1:
        var = var.mean(dim=1, keepdim=True).expand_as(fisher).clone()
    if is_classifier or var.ndim == 1:
        var = var * BOOST
    return var


@torch.no_grad()
def perturb(model, fisher: list[torch.Tensor], alpha: float, num_classes: int, generator: torch.Generator):
    """theta = theta0 + sqrt(var) x N(0, 1), the noise drawn on the CPU generator."""
    for p, f in zip(trainable(model), fisher):
        noise = torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device)
        p.add_(fisher_variance(f, float(alpha), num_classes).sqrt() * noise)
    return model


def unlearn(model, data, hp, generator):
    fisher = fisher_diagonal(model, data.retain, int(hp["batch_size"]), data.num_classes)
    return perturb(model, fisher, hp["alpha"], data.num_classes, generator)
