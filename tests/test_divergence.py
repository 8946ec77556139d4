"""A diverged model (non-finite outputs) is scored as wrong, not fatal."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from unlearnbench import evaluate

from conftest import tiny_split


class Exploded(nn.Module):
    def forward(self, x):
        out = torch.zeros(len(x), 10)
        out[::2] = float("nan")
        out[1::4] = float("inf")
        return out


def test_diverged_model_gets_finite_metrics_and_a_flag():
    splits = {k: tiny_split(40, i) for i, k in enumerate(["retain", "forget", "val", "test"])}
    metrics = evaluate.evaluate(Exploded(), splits)
    assert metrics["diverged"] is True
    assert all(math.isfinite(v) for k, v in metrics.items() if k != "diverged")
    preds = evaluate.predict(Exploded(), splits["test"])
    assert not preds.correct[::2].any() and (preds.losses[::2] == evaluate.DIVERGED_LOSS).all()


def test_healthy_model_is_not_flagged():
    splits = {k: tiny_split(40, i) for i, k in enumerate(["retain", "forget", "val", "test"])}
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
    assert evaluate.evaluate(net, splits)["diverged"] is False


def test_reference_with_non_finite_weights_fails_naming_the_tensor():
    from unlearnbench.jobs.reference import check_finite_weights

    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    check_finite_weights(net, "a healthy net")  # no error
    with torch.no_grad():
        net[2].weight[0, 1] = float("nan")
    with pytest.raises(FloatingPointError, match=r"2\.weight") as err:
        check_finite_weights(net, "the original smallcnn of seed 0")
    assert "0.weight" not in str(err.value) and "precision fp32" in str(err.value)
