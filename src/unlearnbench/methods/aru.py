"""ARU, Attack-and-Reset for Unlearning (Jung et al., 2024, arXiv 2401.08998). The
authors released no code (the paper's footnote says "tbd"), so this follows the paper's
three stages as docs/reference.md records. (1) Attack: PGD (ℓ∞ ball `bound`, step
`step`, `steps` steps, pixel space) on each forget image against O in eval mode. (2)
Mask: per output filter of every convolution, the mean |a(x_adv) − a(x)| of its
activation over the forget set, images and positions; in each convolution the fraction
`reset_ratio` of filters with the largest shift (the features the noise exposes as
biased toward the forget set) is masked. (3) Reset: those filters' weights (and bias)
are redrawn from the layer's default initialisation, then E epochs of CE on D_r, SGD,
train mode, no schedule."""

from __future__ import annotations

import math

import torch
from torch import nn

from ._adversarial import pgd
from ._loops import fine_tune
from ._spaces import base_space
from ._surgery import init_like

NAME = "aru"
LABEL = "ARU"
READS = ("retain", "forget")
DEFAULTS = {"epochs": 5, "batch_size": 256, "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4,
            "reset_ratio": 0.1, "bound": 0.03137254901960784, "step": 0.00784313725490196, "steps": 10}
# bound 8/255 and step 2/255 (literals: the registry reads DEFAULTS without importing)


def search_space(trial, epoch_cap: int) -> dict:
    return {
        **base_space(trial, epoch_cap),
        "reset_ratio": trial.suggest_float("reset_ratio", 0.0, 0.5),
        "bound": trial.suggest_float("bound", 1.0 / 255, 32.0 / 255, log=True),
    }


def convolutions(model: nn.Module) -> list[nn.Conv2d]:
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


@torch.no_grad()
def filter_shift(model: nn.Module, forget, hp: dict) -> list[torch.Tensor]:
    """Per convolution, the mean |activation(x_adv) − activation(x)| of each output filter
    over the forget set (the model in eval mode; its mode restored)."""
    convs = convolutions(model)
    totals = [torch.zeros(c.out_channels, device=c.weight.device) for c in convs]
    seen = 0
    outputs: dict = {}
    hooks = [c.register_forward_hook(lambda mod, inp, out: outputs.__setitem__(mod, out)) for c in convs]
    was_training = model.training
    model.eval()
    try:
        for x, y in forget.batches(int(hp["batch_size"]), shuffle=False):
            with torch.enable_grad():
                x_adv = pgd(model, x, y, hp["bound"], hp["step"], hp["steps"], forget.spec)
            model(x)
            clean = {c: outputs[c].float() for c in convs}
            model(x_adv)
            for total, c in zip(totals, convs):
                total += (outputs[c].float() - clean[c]).abs().mean(dim=(2, 3)).sum(dim=0)
            seen += len(y)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return [t / max(seen, 1) for t in totals]


def filter_masks(shifts: list[torch.Tensor], ratio: float) -> list[torch.Tensor]:
    """In each convolution, the int(ratio × filters) filters with the largest shift (ties:
    the earlier filter)."""
    masks = []
    for shift in shifts:
        keep = int(len(shift) * float(ratio))
        mask = torch.zeros(len(shift), dtype=torch.bool, device=shift.device)
        if keep > 0:
            mask[torch.argsort(shift, descending=True, stable=True)[:keep]] = True
        masks.append(mask)
    return masks


@torch.no_grad()
def reset_filters(convs: list[nn.Conv2d], masks: list[torch.Tensor], generator: torch.Generator) -> None:
    """Redraw the masked filters of each convolution from its default initialisation
    (Kaiming-uniform a = √5, bias U(±1/√fan_in)); a whole layer is drawn, in order, and
    only its masked rows are copied in."""
    for conv, mask in zip(convs, masks):
        fresh = init_like(conv.weight, nn.init.kaiming_uniform_, generator, a=math.sqrt(5))
        conv.weight[mask] = fresh[mask]
        if conv.bias is not None:
            fan_in, _ = nn.init._calculate_fan_in_and_fan_out(conv.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            fresh_bias = init_like(conv.bias, nn.init.uniform_, generator, a=-bound, b=bound)
            conv.bias[mask] = fresh_bias[mask]


def unlearn(model, data, hp, generator):
    convs = convolutions(model)
    reset_filters(convs, filter_masks(filter_shift(model, data.forget, hp), hp["reset_ratio"]), generator)
    return fine_tune(model, data.retain, hp, generator, schedule=None)
