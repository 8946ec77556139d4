"""Adversarial perturbations of normalised image batches (Boundary Shrink's FGSM step,
ARU's PGD attack). Images are perturbed in pixel space, [0, 1], and handed back
normalised: x is `Split.normalise`d, so pixel = x · std + mean."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..batches import _mean_std
from ..data import DatasetSpec


def _constants(spec: DatasetSpec, device) -> tuple[torch.Tensor, torch.Tensor]:
    return _mean_std(tuple(spec.mean), tuple(spec.std), torch.device(device))


def to_pixels(x: torch.Tensor, spec: DatasetSpec) -> torch.Tensor:
    mean, std = _constants(spec, x.device)
    return x * std + mean


def from_pixels(p: torch.Tensor, spec: DatasetSpec) -> torch.Tensor:
    mean, std = _constants(spec, p.device)
    return (p - mean) / std


def input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """d CE(model(x), y) / d x (the model's parameters get no gradient)."""
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(x), y), x)
    return grad


def project(adv: torch.Tensor, natural: torch.Tensor, bound: float, discretise: bool) -> torch.Tensor:
    """Pixel images `adv` moved into the ℓ∞ ball of radius `bound` around `natural`, then
    into [0, 1], then (`discretise`) rounded to the 1/255 grid."""
    adv = natural + (adv - natural).clamp(-bound, bound)
    adv = adv.clamp(0.0, 1.0)
    return torch.round(adv * 255) / 255 if discretise else adv


@torch.no_grad()
def _step(x_pixels, grad, size):
    return x_pixels + grad.sign() * size


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, bound: float, spec: DatasetSpec) -> torch.Tensor:
    """One signed-gradient step of size `bound` ascending CE, as Boundary Shrink's
    adv_generator.FGSM (no random start, discretised to the 1/255 grid); normalised."""
    natural = to_pixels(x.detach(), spec)
    adv = _step(natural, input_gradient(model, x, y), float(bound))
    return from_pixels(project(adv, natural, float(bound), discretise=True), spec).detach()


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, bound: float, step: float, steps: int,
        spec: DatasetSpec) -> torch.Tensor:
    """`steps` signed-gradient steps of size `step` ascending CE, each projected on the
    ℓ∞ ball of radius `bound` and [0, 1] (no random start, not discretised); normalised."""
    natural = to_pixels(x.detach(), spec)
    adv = natural.clone()
    for _ in range(int(steps)):
        grad = input_gradient(model, from_pixels(adv, spec), y)
        adv = project(_step(adv, grad, float(step)), natural, float(bound), discretise=False)
    return from_pixels(adv, spec).detach()
