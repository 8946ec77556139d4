"""The methods beyond the paper's 18 (docs/methods.md#beyond-the-paper): UNSIR, ARU, SSD,
ℓ1-sparse and Boundary Shrink, each against a known answer on tiny data and a linear
model whose gradient is computed here by hand."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unlearnbench import methods
from unlearnbench.batches import Split
from unlearnbench.methods import _adversarial, aru, bs, l1sparse, ssd, unsir

from conftest import tiny_split

C = 10


def linear_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, C))


def class_splits(forget_class: int = 0) -> dict:
    """Forget: 12 images of `forget_class`; retain: 24 images of the other classes."""
    retain, forget = tiny_split(24, 1), tiny_split(12, 2)
    others = torch.tensor([c for c in range(C) if c != forget_class])
    return {"retain": Split(retain.images, others[retain.labels % (C - 1)], retain.spec),
            "forget": Split(forget.images, torch.full_like(forget.labels, forget_class), forget.spec),
            "val": tiny_split(12, 3)}


def run(name, model, splits, hp):
    out, _ = methods.run(name, model, splits, C, hp, torch.Generator().manual_seed(0))
    return out


def whole(split):
    return split.normalise(split.images), split.labels


def squared_gradient(model, split) -> list[torch.Tensor]:
    """The squared gradient of the mean CE over the split (one batch), via .grad."""
    model.zero_grad()
    x, y = whole(split)
    F.cross_entropy(model(x), y).backward()
    return [p.grad.detach().pow(2) for p in model.parameters()]


# ---------------------------------------------------------------- SSD


def test_ssd_dampens_exactly_the_selected_entries_by_the_rule():
    """Selected (I_f > alpha I_D): p x min(lambda I_D / I_f, 1); the others bit-identical."""
    p = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    i_d = torch.tensor([1.0, 1.0, 1.0, 0.1, 2.0])
    i_f = torch.tensor([5.0, 1.9, 40.0, 0.0, 6.0])
    masks = ssd.dampen([p], [i_d], [i_f], alpha=2.0, dampening=4.0)
    assert masks[0].tolist() == [True, False, True, False, True]
    # 1 x min(4/5, 1); 3 x min(4/40, 1); 5 x min(8/6, 1) = 5 (the cap at 1)
    assert p.tolist() == pytest.approx([0.8, 2.0, 0.3, 4.0, 5.0])


def test_ssd_end_to_end_leaves_unselected_parameters_bit_identical():
    """One batch per set: I_f and I_D are the squared gradients on D_f and on D_r ∪ D_f;
    the unlearned weights follow the rule entry by entry."""
    splits = {"retain": tiny_split(24, 1), "forget": tiny_split(12, 2)}
    start = linear_model()
    i_f = squared_gradient(start, splits["forget"])
    i_d = squared_gradient(start, ssd.union(splits["retain"], splits["forget"]))
    before = [p.detach().clone() for p in start.parameters()]
    alpha, dampening = 1.5, 1.0
    out = run("ssd", start, splits, {"alpha": alpha, "dampening": dampening, "batch_size": 64})
    selected_any = False
    for p, b, f, d in zip(out.parameters(), before, i_f, i_d):
        selected = f > alpha * d
        selected_any |= bool(selected.any())
        assert torch.equal(p[~selected], b[~selected])
        torch.testing.assert_close(p[selected], b[selected] * (dampening * d / f).clamp(max=1.0)[selected])
    assert selected_any


def test_ssd_importance_averages_squared_batch_gradients():
    split = tiny_split(12, 2)
    model = linear_model()
    halves = [Split(split.images[:6], split.labels[:6], split.spec), Split(split.images[6:], split.labels[6:], split.spec)]
    expected = [(a + b) / 2 for a, b in zip(squared_gradient(model, halves[0]), squared_gradient(model, halves[1]))]
    for got, want in zip(ssd.importance(model, split, 6), expected):
        torch.testing.assert_close(got, want)


# ---------------------------------------------------------------- l1-sparse


def test_l1_weight_decays_linearly_over_the_epochs():
    assert [l1sparse.penalty_weight(1.0, e, 4) for e in range(4)] == [1.0, 0.75, 0.5, 0.25]


def test_l1sparse_step_is_ce_plus_decaying_l1_subgradient():
    """Two epochs, one batch each, plain SGD: θ -= lr (∇CE + alpha_e sign θ), alpha_0 = alpha,
    alpha_1 = alpha / 2."""
    splits = {"retain": tiny_split(24, 1)}
    lr, alpha = 0.05, 0.01
    start = linear_model()
    expected = copy.deepcopy(start)
    for weight in (alpha, alpha / 2):
        x, y = whole(splits["retain"])
        grad = torch.autograd.grad(F.cross_entropy(expected(x), y), list(expected.parameters()))
        with torch.no_grad():
            for p, g in zip(expected.parameters(), grad):
                p.sub_(lr * (g + weight * p.sign()))
    out = run("l1sparse", start, splits, {"epochs": 2, "batch_size": 64, "lr": lr, "momentum": 0.0,
                                          "weight_decay": 0.0, "alpha": alpha})
    for p, q in zip(out.parameters(), expected.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- Boundary Shrink


def test_fgsm_moves_each_pixel_by_bound_against_the_gradient_sign_on_the_grid():
    split = tiny_split(4, 5)
    model = linear_model()
    x, y = whole(split)
    bound = 0.07  # 17.85/255: no pixel lands on a rounding tie (0.1 = 25.5/255 would)
    grad = _adversarial.input_gradient(model, x, y)
    pixels = split.images.float() / 255
    expected = torch.round((pixels + bound * grad.sign()).clamp(0, 1) * 255) / 255
    got = _adversarial.to_pixels(_adversarial.fgsm(model, x, y, bound, split.spec), split.spec)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_bs_fine_tunes_on_the_frozen_originals_adversarial_labels():
    """Two batches, plain SGD: each batch's targets are the argmax of the ORIGINAL model on
    its FGSM images (not the model being trained); the step is CE against them."""
    forget = class_splits()["forget"]
    lr, bound = 0.5, 0.2
    start = linear_model()
    original = copy.deepcopy(start).eval()
    expected = copy.deepcopy(start)
    gen = torch.Generator().manual_seed(0)
    crossed = 0
    for x, y in forget.batches(6, shuffle=True, generator=gen):
        target = original(_adversarial.fgsm(original, x, y, bound, forget.spec)).argmax(1)
        crossed += int((target != y).sum())
        grad = torch.autograd.grad(F.cross_entropy(expected(x), target), list(expected.parameters()))
        with torch.no_grad():
            for p, g in zip(expected.parameters(), grad):
                p.sub_(lr * g)
    assert crossed > 0
    out = run("bs", start, {"forget": forget}, {"epochs": 1, "batch_size": 6, "lr": lr, "momentum": 0.0,
                                                "bound": bound})
    for p, q in zip(out.parameters(), expected.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- UNSIR


def test_unsir_noise_objective_known_answer():
    logits = torch.zeros(2, C)
    noise = torch.ones(2, 1, 2, 2)  # squared norm 4 per image
    assert float(unsir.noise_objective(logits, noise, 3, 0.5)) == pytest.approx(-torch.log(torch.tensor(10.0)) + 2.0)


def test_unsir_noise_raises_the_forget_class_loss():
    model = linear_model()
    hp = {**methods.info("unsir").defaults, "noise_epochs": 2, "noise_steps": 4}
    gen = torch.Generator().manual_seed(0)
    start = unsir.error_maximising_noise(model, 0, (8, 3, 32, 32), {**hp, "noise_epochs": 0}, gen)
    gen = torch.Generator().manual_seed(0)
    trained = unsir.error_maximising_noise(model, 0, (8, 3, 32, 32), hp, gen)
    label = torch.zeros(8, dtype=torch.long)
    assert F.cross_entropy(model(trained), label) > F.cross_entropy(model(start), label)


def test_unsir_impairs_on_labelled_noise_and_first_retain_images_then_repairs(monkeypatch):
    """Impair: each forget class's noise batch x noise_batches, labelled with that class,
    plus the first `retain_per_class` retain images of every other class; repair: those
    retain images alone, with their own epochs and lr. The forget class is 3: the authors'
    notebook labels every noise image 0 (docs/reference.md), which this would catch."""
    splits = class_splits(3)
    calls = []
    monkeypatch.setattr(unsir, "train_epochs", lambda model, x, y, epochs, lr, bs, gen: calls.append(
        (x.shape, y.clone(), epochs, lr)))
    hp = {**methods.info("unsir").defaults, "batch_size": 4, "noise_batches": 3, "retain_per_class": 2,
          "noise_epochs": 1, "noise_steps": 1, "impair_epochs": 2, "repair_epochs": 3}
    run("unsir", linear_model(), splits, hp)
    (impair_shape, impair_y, e_i, lr_i), (repair_shape, repair_y, e_r, lr_r) = calls
    labels = splits["retain"].labels
    first = torch.cat([(labels == c).nonzero().squeeze(1)[:2] for c in sorted(set(labels.tolist()))]).sort().values
    assert torch.equal(repair_y, labels[first]) and repair_shape[1:] == (3, 32, 32)
    assert torch.equal(impair_y, torch.cat([torch.full((12,), 3), labels[first]]))
    assert (e_i, lr_i, e_r, lr_r) == (2, hp["impair_lr"], 3, hp["repair_lr"])


def test_unsir_refuses_a_forget_set_covering_every_class():
    splits = {"retain": tiny_split(24, 1), "forget": tiny_split(40, 2)}
    with pytest.raises(ValueError, match="UNSIR needs retain images of a class outside the forget classes"):
        run("unsir", linear_model(), splits, {"noise_epochs": 1, "noise_steps": 1})


# ---------------------------------------------------------------- ARU


def test_aru_masks_the_largest_shift_filters_per_convolution():
    shifts = [torch.tensor([0.1, 0.5, 0.3, 0.5]), torch.tensor([2.0, 1.0])]
    masks = aru.filter_masks(shifts, 0.5)
    assert [m.tolist() for m in masks] == [[False, True, False, True], [True, False]]
    assert not any(m.any() for m in aru.filter_masks(shifts, 0.0))


def test_aru_reset_redraws_only_masked_filters_from_the_default_init():
    conv = nn.Conv2d(3, 4, 3)
    before_w, before_b = conv.weight.detach().clone(), conv.bias.detach().clone()
    mask = torch.tensor([False, True, False, True])
    with torch.no_grad():
        aru.reset_filters([conv], [mask], torch.Generator().manual_seed(7))
    assert torch.equal(conv.weight[~mask], before_w[~mask]) and torch.equal(conv.bias[~mask], before_b[~mask])
    fresh = nn.Conv2d(3, 4, 3)
    from unlearnbench.methods._surgery import reset_parameters

    reset_parameters(fresh, torch.Generator().manual_seed(7))
    assert torch.equal(conv.weight[mask], fresh.weight[mask]) and torch.equal(conv.bias[mask], fresh.bias[mask])


def test_aru_filter_shift_is_zero_without_noise_and_positive_with_it():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(C))
    forget = class_splits()["forget"]
    net(whole(forget)[0])
    hp = {**methods.info("aru").defaults, "batch_size": 6}
    # bound 0: the images only make the round trip through pixel space (float rounding)
    assert all(float(s.max()) < 1e-5 for s in aru.filter_shift(net, forget, {**hp, "bound": 0.0}))
    assert all(float(s.min()) > 1e-3 for s in aru.filter_shift(net, forget, hp))
