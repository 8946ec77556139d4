"""FT, GA and CT (docs/methods.md#ft, #ga, #ct): each method's mechanism against a
known answer, on tiny synthetic data (one batch per epoch, plain SGD) and a linear model
whose gradient is computed here by hand."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unlearnbench import methods, models
from unlearnbench.methods import ct

from conftest import tiny_split

C = 10
PLAIN = {"momentum": 0.0, "weight_decay": 0.0}  # the update is then lr x gradient


@pytest.fixture
def splits():
    return {"retain": tiny_split(24, 1), "forget": tiny_split(12, 2), "val": tiny_split(12, 3)}


def linear_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, C))


def mean_ce_gradient(model: nn.Module, split) -> list[torch.Tensor]:
    """Gradient of the mean CE over the whole split (one batch: its order does not matter)."""
    x, y = split.normalise(split.images), split.labels
    return list(torch.autograd.grad(F.cross_entropy(model(x), y), list(model.parameters())))


def sgd_step(model: nn.Module, gradient: list[torch.Tensor], step: float) -> None:
    with torch.no_grad():
        for p, g in zip(model.parameters(), gradient):
            p.add_(g, alpha=-step)


def unlearned(name: str, model: nn.Module, splits: dict, hp: dict) -> nn.Module:
    out, _ = methods.run(name, model, splits, C, hp, torch.Generator().manual_seed(0))
    return out


def assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)


def test_ft_is_sgd_on_retain_ce_with_cosine_lr(splits):
    """Two epochs of one batch: lr, then lr/2 (cosine over E = 2 after one epoch)."""
    lr = 0.1
    start = linear_model()
    expected = linear_model()
    expected.load_state_dict(start.state_dict())
    sgd_step(expected, mean_ce_gradient(expected, splits["retain"]), lr)
    sgd_step(expected, mean_ce_gradient(expected, splits["retain"]), lr / 2)
    got = unlearned("ft", start, splits, {**PLAIN, "epochs": 2, "batch_size": 64, "lr": lr})
    assert_same_weights(got, expected)


def test_ga_ascends_forget_ce_without_schedule(splits):
    """Two epochs of one batch, both at the full lr, up the forget-set CE."""
    lr = 0.05
    start = linear_model()
    expected = linear_model()
    expected.load_state_dict(start.state_dict())
    for _ in range(2):
        sgd_step(expected, mean_ce_gradient(expected, splits["forget"]), -lr)
    got = unlearned("ga", start, splits, {**PLAIN, "epochs": 2, "batch_size": 64, "lr": lr})
    assert_same_weights(got, expected)


def test_ct_transposes_square_kernels_and_keeps_1x1():
    conv3 = nn.Conv2d(2, 3, 3, bias=False)
    conv1 = nn.Conv2d(2, 3, 1, bias=False)
    with torch.no_grad():
        conv3.weight.copy_(torch.arange(conv3.weight.numel(), dtype=torch.float32).view_as(conv3.weight))
    before3, before1 = conv3.weight.clone(), conv1.weight.clone()
    ct.transpose_convolutions(nn.Sequential(conv3, conv1))
    assert torch.equal(conv3.weight, before3.transpose(-1, -2))
    assert torch.equal(conv3.weight[0, 0], torch.tensor([[0.0, 3.0, 6.0], [1.0, 4.0, 7.0], [2.0, 5.0, 8.0]]))
    assert torch.equal(conv1.weight, before1)


def test_ct_unlearn_is_transpose_then_ft(splits):
    """With lr 0 only the transposition remains; on a model without convolutions CT is FT."""
    net = models.build("smallcnn", C, seed=0)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    got = unlearned("ct", net, splits, {**PLAIN, "epochs": 1, "batch_size": 8, "lr": 0.0})
    convs = {f"{n}.weight" for n, m in got.named_modules() if isinstance(m, nn.Conv2d)}
    assert convs
    for name, p in got.named_parameters():
        want = before[name].transpose(-1, -2) if name in convs else before[name]
        assert torch.equal(p, want), name
    hp = {**PLAIN, "epochs": 2, "batch_size": 64, "lr": 0.1}
    assert_same_weights(unlearned("ct", linear_model(), splits, hp), unlearned("ft", linear_model(), splits, hp))
