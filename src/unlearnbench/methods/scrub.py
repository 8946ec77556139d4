"""SCRUB with rewinding: a frozen teacher (copy of O, eval mode) and a student trained
from O. Epoch e = 1..E: if e <= msteps, a max step over the forget set (unshuffled)
minimising -KL_T(student, teacher); then a min step over the retain set (shuffled)
minimising gamma CE + alpha KL_T. SGD with the lr multiplied by 0.1 at epochs
int(0.5E), int(0.8E), int(0.9E). The student is kept after every epoch; the returned
one is the epoch whose forget-set error is closest to the validation error."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..evaluate import predict
from ..train import sgd
from ._loops import kl_t, milestone_factor
from ._spaces import suggest_batch, suggest_lr, suggest_wd
from ._surgery import frozen_copy

NAME = "scrub"
LABEL = "SCRUB"
READS = ("retain", "forget", "val")
DEFAULTS = {
    "epochs": 5, "msteps": 3, "gamma": 1.0, "alpha": 0.5, "temperature": 2.0,
    "lr": 5e-4, "momentum": 0.9, "weight_decay": 5e-4,
    "retain_batch_size": 32, "forget_batch_size": 64,
}
LR_DECAY = 0.1


def search_space(trial, epoch_cap: int) -> dict:
    cap = max(1, int(epoch_cap))
    return {
        "gamma": trial.suggest_float("gamma", 0.0, 1.0),
        "alpha": trial.suggest_float("alpha", 0.0, 1.0),
        "msteps": trial.suggest_int("msteps", 1, cap),
        "epochs": trial.suggest_int("epochs", 1, cap),
        "temperature": trial.suggest_float("temperature", 0.0, 5.0),
        "lr": suggest_lr(trial, "lr"),
        "weight_decay": suggest_wd(trial, "weight_decay"),
        "retain_batch_size": suggest_batch(trial, "retain_batch_size"),
        "forget_batch_size": suggest_batch(trial, "forget_batch_size"),
    }


def lr_at(epoch: int, lr: float, epochs: int, decay: float = LR_DECAY) -> float:
    """The lr of 1-based `epoch`: multiplied by `decay` once per milestone
    int(0.5E), int(0.8E), int(0.9E) already passed (m < epoch). Milestones that
    coincide count once each and a milestone 0 applies from the first epoch, as in
    the reference (SCRUB's adjust_learning_rate)."""
    return lr * milestone_factor(epoch, epochs, decay)


def rewind_epoch(forget_errors, val_error: float) -> int:
    """The 1-based epoch whose forget error is closest to `val_error` (the first on ties)."""
    gaps = [abs(float(e) - float(val_error)) for e in forget_errors]
    if not gaps:
        raise ValueError("no epoch to rewind to")
    return int(np.argmin(gaps)) + 1


def error(model, split) -> float:
    return 1.0 - float(predict(model, split).correct.mean())


def train(model, data, hp, generator):
    """Run SCRUB; return the student after each epoch (CPU state dicts, index e-1),
    the per-epoch forget errors and the final student's validation error."""
    epochs = int(hp["epochs"])
    temperature = float(hp["temperature"])
    gamma, alpha = float(hp["gamma"]), float(hp["alpha"])
    teacher = frozen_copy(model)
    student = model
    optimizer = sgd(student.parameters(), hp["lr"], hp["momentum"], hp["weight_decay"])
    states, forget_errors = [], []
    for epoch in range(1, epochs + 1):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(epoch, float(hp["lr"]), epochs)
        student.train()
        if epoch <= int(hp["msteps"]):
            for x, _ in data.forget.batches(int(hp["forget_batch_size"]), shuffle=False):
                with torch.no_grad():
                    t = teacher(x)
                loss = -kl_t(student(x), t, temperature)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        for x, y in data.retain.batches(int(hp["retain_batch_size"]), shuffle=True, generator=generator):
            with torch.no_grad():
                t = teacher(x)
            s = student(x)
            loss = gamma * F.cross_entropy(s, y) + alpha * kl_t(s, t, temperature)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        states.append({k: v.detach().to("cpu", copy=True) for k, v in student.state_dict().items()})
        forget_errors.append(error(student, data.forget))
    val_error = error(student, data.val)
    return states, forget_errors, val_error


def unlearn(model, data, hp, generator):
    states, forget_errors, val_error = train(model, data, hp, generator)
    model.load_state_dict(states[rewind_epoch(forget_errors, val_error) - 1])
    return model
