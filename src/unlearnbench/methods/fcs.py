"""FCS (1st in the NeurIPS 2023 unlearning challenge). Stage 1: one pass over the forget
set pulling its predictions towards the uniform distribution, KL(uniform || softmax)
(batchmean). Stage 2, E times: a forget round, a contrastive loss pushing each forget
logit vector away from (detached) retain logits, with its own SGD cosine-annealed per
step over (forget batches x E) steps; then a retain round, one CE pass over the retain
set with its own SGD at lr = retain_lr x batch / 64."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..batches import batch_bounds
from ..train import sgd
from ._loops import cycle, run_epoch
from ._spaces import base_space, suggest_lr, suggest_wd

NAME = "fcs"
LABEL = "FCS"
READS = ("retain", "forget")
DEFAULTS = {
    "epochs": 8, "batch_size": 256,
    # stage-1 optimiser (the "base" lr / momentum / weight decay)
    "lr": 0.005, "momentum": 0.9, "weight_decay": 0.0,
    "temperature": 1.15, "eta_min": 1e-6,
    "forget_lr": 3e-4, "forget_momentum": 0.9, "forget_weight_decay": 0.0,
    "retain_lr": 1e-3, "retain_momentum": 0.9, "retain_weight_decay": 1e-2,
}


def search_space(trial, epoch_cap: int) -> dict:
    space = base_space(trial, epoch_cap)
    space.update({
        "retain_lr": suggest_lr(trial, "retain_lr"),
        "retain_weight_decay": suggest_wd(trial, "retain_weight_decay"),
        "forget_lr": suggest_lr(trial, "forget_lr"),
        "forget_weight_decay": suggest_wd(trial, "forget_weight_decay"),
        "temperature": trial.suggest_float("temperature", 0.0, 5.0),
        "eta_min": trial.suggest_float("eta_min", 1e-6, 1e-1, log=True),
    })
    return space


def uniform_kl(logits: torch.Tensor) -> torch.Tensor:
    """KL(uniform || softmax(logits)), summed over classes, averaged over the batch."""
    uniform = torch.full_like(logits, 1.0 / logits.shape[1])
    return F.kl_div(F.log_softmax(logits, dim=1), uniform, reduction="batchmean")


def contrastive_loss(forget_logits: torch.Tensor, retain_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean over all entries of -log_softmax over the retain axis of z_f z_r^T / tau."""
    similarity = forget_logits @ retain_logits.T / temperature
    return (-F.log_softmax(similarity, dim=-1)).mean()


def unlearn(model, data, hp, generator):
    retain, forget = data.retain, data.forget
    bs, epochs = int(hp["batch_size"]), int(hp["epochs"])

    # Stage 1: one pass over D_f towards uniform predictions.
    optimizer = sgd(model.parameters(), hp["lr"], hp["momentum"], hp["weight_decay"])
    model.train()
    for x, _ in forget.batches(bs, shuffle=True, generator=generator):
        loss = uniform_kl(model(x))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    # Stage 2.
    forget_opt = sgd(model.parameters(), hp["forget_lr"], hp["forget_momentum"], hp["forget_weight_decay"])
    retain_opt = sgd(model.parameters(), hp["retain_lr"] * bs / 64, hp["retain_momentum"],
                     hp["retain_weight_decay"])
    total_steps = len(batch_bounds(len(forget), bs)) * epochs
    forget_sched = torch.optim.lr_scheduler.CosineAnnealingLR(forget_opt, T_max=max(total_steps, 1),
                                                              eta_min=hp["eta_min"])
    for _ in range(epochs):
        model.train()
        retain_batches = cycle(lambda: retain.batches(bs, shuffle=True, generator=generator))
        for x_f, _ in forget.batches(bs, shuffle=True, generator=generator):  # forget round
            x_r, _ = next(retain_batches)
            z_f = model(x_f)
            with torch.no_grad():
                z_r = model(x_r)
            loss = contrastive_loss(z_f, z_r, hp["temperature"])
            forget_opt.zero_grad(set_to_none=True)
            loss.backward()
            forget_opt.step()
            forget_sched.step()
        run_epoch(model, retain, bs, retain_opt, generator)  # retain round
    return model
