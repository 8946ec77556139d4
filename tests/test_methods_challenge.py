"""The NeurIPS 2023 challenge's FCS, MSG, CFW, PRMQ, KDE and RNI, and the block methods
CF-k and EU-k (docs/methods.md): each method's defining mechanism against a known answer,
on tiny synthetic data and the small CPU CNN. CT: test_methods_baselines.py."""

from __future__ import annotations

import copy
import math

import numpy as np
import optuna
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unlearnbench import methods, models
from unlearnbench.batches import Split
from unlearnbench.data import get_spec
from unlearnbench.methods import DataAccessError, UnlearnData, cfk, cfw, fcs, kde, msg, prmq, rni
from unlearnbench.methods._loops import step_decay

GROUP2 = ("cfk", "euk", "fcs", "msg", "cfw", "prmq", "kde", "rni")
C = 10
SPEC = get_spec("digits")

# Hyperparameters that keep a full run to a handful of steps.
QUICK = {
    "cfk": {"epochs": 2, "batch_size": 8},
    "euk": {"epochs": 2, "batch_size": 8},
    "fcs": {"epochs": 2, "batch_size": 8},
    "msg": {"epochs": 2, "batch_size": 8},
    "cfw": {"epochs": 2, "batch_size": 8},
    "prmq": {"epochs": 1.5, "batch_size": 8, "prune_amount": 0.5},
    "kde": {"epochs": 1, "retain_epochs": 1, "batch_size": 8},
    "rni": {"epochs": 3, "fine_epochs": 1, "batch_size": 8},
}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class CountingSplit(Split):
    """A Split that records every batches() call (to prove what a method reads)."""

    def __init__(self, images, labels, spec):
        super().__init__(images, labels, spec)
        self.calls = []

    def batches(self, batch_size, shuffle=True, generator=None, augment_data=False):
        self.calls.append({"batch_size": batch_size, "shuffle": shuffle, "augment_data": augment_data})
        return super().batches(batch_size, shuffle=shuffle, generator=generator, augment_data=augment_data)


def make_split(n: int, seed: int) -> CountingSplit:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    labels = torch.arange(n) % C
    return CountingSplit(images, labels[torch.randperm(n, generator=g)], SPEC)


def make_splits() -> dict:
    return {"retain": make_split(24, 1), "forget": make_split(8, 2), "val": make_split(8, 3)}


def data_for(name: str, splits: dict) -> UnlearnData:
    return UnlearnData.restricted(name, methods.get(name).READS, splits, C)


def smallcnn() -> nn.Module:
    """A stand-in for a trained original: every parameter and BatchNorm statistic is moved
    off its initial value, so a reset to 1 / 0 / default init is visible."""
    model = models.build("smallcnn", C, seed=0)
    g = gen(99)
    with torch.no_grad():
        for value in model.state_dict().values():
            if value.is_floating_point():
                value.add_(0.05 * torch.randn(value.shape, generator=g))
    return model


def snapshot(model: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def changed(before: dict, after: dict) -> set[str]:
    return {k for k in before if not torch.equal(before[k], after[k])}


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def unlearn(name: str, model: nn.Module, splits: dict, seed: int = 0, **hp) -> nn.Module:
    return methods.get(name).unlearn(model, data_for(name, splits), methods.hyperparameters(name, hp), gen(seed))


# ------------------------------------------------------------------ every method

@pytest.mark.parametrize("name", GROUP2)
def test_interface_and_search_space(name):
    module = methods.get(name)
    assert module.NAME == name and name in methods.names()
    assert set(module.READS) <= {"retain", "forget", "val"}
    assert ("val" in module.READS) == (name == "kde")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        space = module.search_space(study.ask(), 10)
        assert set(space) <= set(module.DEFAULTS), set(space) - set(module.DEFAULTS)
        assert space["batch_size"] in (64, 128, 256)
        assert 1 <= space["epochs"] <= 10
        assert 1e-5 <= space["lr"] <= 1e-1
    if name == "prmq":
        assert isinstance(space["epochs"], float)
    else:
        assert isinstance(space["epochs"], int)


@pytest.mark.parametrize("name", GROUP2)
def test_runs_reads_its_data_and_is_deterministic(name):
    results = []
    for _ in range(2):
        splits = make_splits()
        model = smallcnn()
        keys = list(model.state_dict())
        out, _seconds = methods.run(name, model, splits, C, QUICK[name], gen(3))
        assert list(out.state_dict()) == keys
        assert all(torch.isfinite(v).all() for v in out.state_dict().values() if v.is_floating_point())
        assert all(p.requires_grad for p in out.parameters())
        for split in methods.get(name).READS:
            assert splits[split].calls, f"{name} never read {split}"
        for split in {"retain", "forget", "val"} - set(methods.get(name).READS):
            assert not splits[split].calls
        results.append(snapshot(out))
    assert not changed(*results), "same seed, different result"


@pytest.mark.parametrize("name", GROUP2)
def test_unlisted_split_is_refused(name):
    data = data_for(name, make_splits())
    for split in {"retain", "forget", "val"} - set(methods.get(name).READS):
        with pytest.raises(DataAccessError):
            getattr(data, split)


# ------------------------------------------------------------------ CF-k

def test_cfk_k1_trains_only_last_block_and_classifier():
    model = smallcnn()
    before = snapshot(model)
    out = unlearn("cfk", model, make_splits(), epochs=2, batch_size=8, lr=0.1, k=1)
    diff = changed(before, snapshot(out))
    params = {n for n, _ in out.named_parameters()}
    assert diff == {n for n in params if n.startswith(("layer3.", "fc."))}
    # eval mode: no BatchNorm statistic moved, not even in the trained block
    assert not any(k.endswith(("running_mean", "running_var", "num_batches_tracked")) for k in diff)


def test_cfk_k_above_block_count_trains_all_blocks():
    model = smallcnn()
    before = snapshot(model)
    out = unlearn("cfk", model, make_splits(), epochs=1, batch_size=8, lr=0.1, k=10)
    diff = changed(before, snapshot(out))
    params = {n for n, _ in out.named_parameters()}
    assert diff == {n for n in params if n.startswith(("layer1.", "layer2.", "layer3.", "fc."))}


def test_cfk_proximal_term_and_lr_decay():
    p, a = torch.tensor([1.0, 2.0]), torch.zeros(2)
    assert cfk.proximal([p, p], [a, a], 0.5).item() == pytest.approx(0.25 * 10)
    lrs = []
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = step_decay(opt, 10, 0.5)
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == [1.0] * 6 + [0.5] * 3 + [0.25]  # milestones 5, 8, 9 passed (0-based epoch > m)


# ------------------------------------------------------------------ EU-k

@pytest.mark.parametrize("hp", [{"epochs": 0}, {"epochs": 1, "lr": 0.0}])
def test_euk_reinitialises_exactly_last_k_blocks(hp):
    model = smallcnn()
    before = snapshot(model)
    out = unlearn("euk", model, make_splits(), batch_size=8, k=1, **hp)
    after = snapshot(out)
    assert changed(before, after) == {"layer3.0.weight", "layer3.1.weight", "layer3.1.bias", "fc.weight", "fc.bias"}
    assert torch.equal(after["layer3.1.weight"], torch.ones(128))
    assert torch.equal(after["layer3.1.bias"], torch.zeros(128))
    assert torch.equal(after["fc.bias"], torch.zeros(C))
    conv = after["layer3.0.weight"]  # Kaiming-uniform, fan_out, relu: bound sqrt(6 / fan_out)
    assert conv.abs().max() <= math.sqrt(6 / (conv.shape[0] * 9)) + 1e-7
    assert conv.abs().max() > 0.9 * math.sqrt(6 / (conv.shape[0] * 9))
    fc = after["fc.weight"]  # Xavier-uniform: bound sqrt(6 / (fan_in + fan_out))
    assert fc.abs().max() <= math.sqrt(6 / (128 + C)) + 1e-7


def test_euk_k2_and_augmented_retain():
    model, splits = smallcnn(), make_splits()
    before = snapshot(model)
    out = unlearn("euk", model, splits, epochs=1, lr=0.0, batch_size=8, k=2)
    diff = changed(before, snapshot(out))
    assert {k.split(".")[0] for k in diff} == {"layer2", "layer3", "fc"}
    assert splits["retain"].calls and all(c["augment_data"] for c in splits["retain"].calls)
    cf_splits = make_splits()
    unlearn("cfk", smallcnn(), cf_splits, epochs=1, batch_size=8)
    assert not any(c["augment_data"] for c in cf_splits["retain"].calls)


# ------------------------------------------------------------------ FCS

def test_fcs_uniform_kl_known_logits():
    assert fcs.uniform_kl(torch.zeros(3, 4)).item() == pytest.approx(0.0, abs=1e-7)
    # p = (1/4, 3/4): KL(u || p) = 0.5 log(0.5 / 0.25) + 0.5 log(0.5 / 0.75); batchmean over 2 rows
    logits = torch.tensor([[0.0, math.log(3.0)], [5.0, 5.0]])
    expected = 0.5 * (0.5 * math.log(2.0) + 0.5 * math.log(2.0 / 3.0))
    assert fcs.uniform_kl(logits).item() == pytest.approx(expected, rel=1e-6)


def test_fcs_contrastive_loss_known_logits():
    z_f, z_r = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert fcs.contrastive_loss(z_f, z_r, 1.0).item() == pytest.approx(math.log(1 + math.e) - 0.5, rel=1e-6)
    assert fcs.contrastive_loss(z_f, z_r, 2.0).item() == pytest.approx(math.log(1 + math.e ** 0.5) - 0.25, rel=1e-6)


# ------------------------------------------------------------------ MSG

def test_msg_lr_schedule():
    def lrs(e):
        return [msg.lr_at(1.0, k, e) for k in range(e)]

    assert lrs(1) == [1.0]
    assert lrs(2) == [1.0, 0.5]
    assert lrs(4) == pytest.approx([1 / 2, 1.0, 2 / 3, 1 / 3])
    assert lrs(5) == pytest.approx([1 / 3, 2 / 3, 1.0, 2 / 3, 1 / 3])


def test_msg_reinitialises_smallest_gradient_entries_per_conv():
    model = smallcnn()
    before = snapshot(model)
    g = gen(5)
    grads = {n: torch.randn(p.shape, generator=g) for n, p in model.named_parameters()}
    masks = msg.reinit_small_gradients(model, grads, 0.3, gen(6))
    assert set(masks) == {"conv1", "layer1.0", "layer2.0", "layer3.0"}
    after = snapshot(model)
    assert changed(before, after) == {f"{m}.weight" for m in masks}
    for name, mask in masks.items():
        key = f"{name}.weight"
        assert mask.sum().item() == round(0.3 * mask.numel())
        mag = grads[key].abs()
        assert mag[mask].max() <= mag[~mask].min()
        assert torch.equal(after[key][~mask], before[key][~mask])
        assert (after[key][mask] != before[key][mask]).all()


def test_msg_gradient_hook_scales_known_gradient():
    model = smallcnn()
    weight = model.layer1[0].weight
    mask = torch.zeros_like(weight, dtype=torch.bool)
    mask.view(-1)[::3] = True
    handles = msg.register_gradient_scaling(model, {"layer1.0": mask})
    known = torch.randn(weight.shape, generator=gen(1))
    (weight * known).sum().backward()
    assert torch.allclose(weight.grad, torch.where(mask, known, 0.1 * known))
    for h in handles:
        h.remove()
    weight.grad = None
    (weight * known).sum().backward()
    assert torch.equal(weight.grad, known)


def test_msg_gradient_probe_is_retain_minus_forget():
    splits = make_splits()
    model = smallcnn()
    reference = copy.deepcopy(model).train()
    grads = msg.gradient_probe(model, splits["retain"], splits["forget"], 64, gen(2))
    index = torch.randperm(24, generator=gen(2))[:8]  # the probe's retain subset (one batch)
    sub = splits["retain"].subset(index)
    xr, yr = next(sub.batches(64, shuffle=False))
    xf, yf = next(splits["forget"].batches(64, shuffle=False))
    (F.cross_entropy(reference(xr), yr) - F.cross_entropy(reference(xf), yf)).backward()
    for name, p in reference.named_parameters():
        assert torch.allclose(grads[name], p.grad, atol=1e-6), name
    assert all(p.grad is None for p in model.parameters())


def test_msg_unlearn_leaves_no_hooks():
    out = unlearn("msg", smallcnn(), make_splits(), epochs=1, batch_size=8)
    for m in out.modules():
        if isinstance(m, nn.Conv2d):
            assert not m.weight._backward_hooks


# ------------------------------------------------------------------ CFW

def test_cfw_confuser_only_touches_top_level_conv_children():
    model = smallcnn()
    before = snapshot(model)
    assert cfw.confuse(model, 0.5, gen()) == ["conv1"]
    assert changed(before, snapshot(model)) == {"conv1.weight"}
    noise = snapshot(model)["conv1.weight"] - before["conv1.weight"]
    assert noise.std().item() == pytest.approx(0.5, rel=0.2)
    assert cfw.confuse(models.build("resnet18", C, seed=0), 0.5, gen()) == ["conv1"]


def test_cfw_confuser_touches_nothing_on_tinyvit():
    model = models.build("tinyvit11m", C, seed=0)
    before = snapshot(model)
    assert cfw.confuse(model, 0.5, gen()) == []
    assert not changed(before, snapshot(model))


def test_cfw_balanced_class_weights_match_sklearn():
    from sklearn.utils.class_weight import compute_class_weight

    labels = torch.tensor([0] * 5 + [1] * 3 + [2] * 2 + [4] * 7)
    ours = cfw.balanced_class_weights(labels, 5)
    present = np.unique(labels.numpy())
    expected = compute_class_weight("balanced", classes=present, y=labels.numpy())
    assert np.allclose(ours[present].numpy(), expected)
    assert ours[3].item() == 0.0


def test_cfw_weighted_ce_and_confuser_schedule(monkeypatch):
    w = torch.tensor([2.0, 4.0, 1.0, 1.0])
    loss = cfw.weighted_ce(torch.zeros(2, 4), torch.tensor([0, 1]), w)
    assert loss.item() == pytest.approx(math.log(4) * 3.0)
    sigmas = []
    real = cfw.confuse
    monkeypatch.setattr(cfw, "confuse", lambda m, s, g: sigmas.append(s) or real(m, s, g))
    unlearn("cfw", smallcnn(), make_splits(), epochs=3, batch_size=8, sigma_start=0.3, sigma_final=0.01)
    assert sigmas == [0.3, 0.01]
    sigmas.clear()
    unlearn("cfw", smallcnn(), make_splits(), epochs=1, batch_size=8, sigma_start=0.3, sigma_final=0.01)
    assert sigmas == [0.3]


# ------------------------------------------------------------------ PRMQ

def test_prmq_prunes_fraction_globally_and_redraws_weights():
    model = smallcnn()
    before = snapshot(model)
    pruned = prmq.prune_and_reinit(model, 0.7, gen())
    after = snapshot(model)
    assert list(after) == list(before)  # no weight_orig / weight_mask left
    total = sum(mask.numel() for _, _, mask in pruned)
    assert sum(mask.sum().item() for _, _, mask in pruned) == round(0.7 * total)
    names = {id(m): n for n, m in model.named_modules()}
    cut = [before[f"{names[id(m)]}.{t}"][mask].abs() for m, t, mask in pruned]
    kept = [before[f"{names[id(m)]}.{t}"][~mask].abs() for m, t, mask in pruned]
    assert torch.cat(cut).max() <= torch.cat(kept).min()  # global, not per tensor
    for module, tname, mask in pruned:
        key = f"{names[id(module)]}.{tname}"
        assert torch.equal(after[key][~mask], before[key][~mask])
        if tname == "bias":
            assert (after[key][mask] == 0).all()
        else:
            bound = 1 / math.sqrt(after[key][0].numel())
            assert (after[key][mask].abs() <= bound).all()
            assert (after[key][mask] != 0).all()


def test_prmq_float16_round_trip_step_count_and_zero_biases():
    model = smallcnn()
    masks = {(type(m).__name__, t, tuple(mask.shape)): mask
             for m, t, mask in prmq.prune_and_reinit(copy.deepcopy(model), 0.95, gen())}
    bias_mask = masks[("Linear", "bias", (C,))]
    assert bias_mask.any()
    forwards = []
    model.register_forward_hook(lambda m, i, o: forwards.append(1) if torch.is_grad_enabled() else None)
    out = unlearn("prmq", model, make_splits(), epochs=1.5, batch_size=5, lr=0.0, weight_decay=0.0,
                  prune_amount=0.95)
    # 24 retain samples in batches of 5 -> 5 batches; int(5 x 1.5) + 1 = 8 steps
    assert len(forwards) == prmq.num_steps(5, 1.5) == 8
    assert prmq.num_steps(5, 3.2) == 17
    for key, value in out.state_dict().items():
        if value.is_floating_point():
            assert value.dtype == torch.float32
            assert torch.equal(value, value.half().float()), key
    assert (out.fc.bias[bias_mask] == 0).all()  # pruned biases stay 0 (lr 0)
    assert (out.fc.bias[~bias_mask] != 0).all()


def test_prmq_class_weights():
    w = prmq.class_weights(torch.tensor([0, 0, 0, 0, 1]), 3)
    assert w.tolist() == pytest.approx([4 ** -0.1, 1.0, 0.0])


# ------------------------------------------------------------------ KDE

def test_kde_resets_conv1_and_classifier_only():
    model = smallcnn()
    before = snapshot(model)
    out = unlearn("kde", model, make_splits(), epochs=0, retain_epochs=0)
    assert changed(before, snapshot(out)) == {"conv1.weight", "fc.weight", "fc.bias"}
    vit = models.build("tinyvit11m", C, seed=0)
    assert kde.reset_modules(vit) == [vit.head.fc]


def test_kde_warms_up_on_val_then_trains_on_retain():
    splits = make_splits()
    unlearn("kde", smallcnn(), splits, epochs=2, retain_epochs=1, batch_size=8)
    assert len(splits["val"].calls) == 2 and len(splits["retain"].calls) == 1
    assert not splits["forget"].calls
    without_val = UnlearnData.restricted("kde", ("retain",), make_splits(), C)
    with pytest.raises(DataAccessError):
        kde.unlearn(smallcnn(), without_val, methods.hyperparameters("kde", {"epochs": 1}), gen())


def test_kde_losses_known_logits():
    s = torch.tensor([[1.0, 2.0, 3.0]])
    assert kde.distill_kl(s, s, 5.0).item() == pytest.approx(0.0, abs=1e-7)
    assert kde.soft_ce(torch.zeros(2, 4), torch.zeros(2, 4), 2.0).item() == pytest.approx(math.log(4))
    # KL(t || s) at T = 1 for t = (1/2, 1/2), s = (1/4, 3/4)
    t = torch.zeros(1, 2)
    s = torch.tensor([[0.0, math.log(3.0)]])
    assert kde.distill_kl(s, t, 1.0).item() == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(2 / 3), rel=1e-6)


# ------------------------------------------------------------------ RNI

def test_rni_resets_classifier_and_perturbs_chosen_tensors_once():
    model = smallcnn()
    before = snapshot(model)
    record = []
    hp = methods.hyperparameters("rni", {"epochs": 3, "fine_epochs": 0, "reset_epoch": 1, "noise_ratio": 0.7,
                                         "lr": 0.0, "weight_decay": 0.0, "batch_size": 8})
    out = rni.run(model, data_for("rni", make_splits()), hp, gen(), record=record)
    bn = ["bn1.weight", "bn1.bias"]
    for epoch in record:
        assert len(epoch["chosen"]) == 9 and not any("bn" in n for n in epoch["chosen"])
        assert epoch["trained"] == epoch["chosen"] + bn
        assert set(epoch["noised"]) <= set(epoch["drawn"]) <= set(epoch["chosen"])
    assert record[0]["drawn"] == record[0]["noised"] == []  # before reset_epoch
    for e in (1, 2):  # int(0.7 x 9) drawn, then those trained in an earlier epoch skipped
        assert len(record[e]["drawn"]) == int(0.7 * 9) == 6
        earlier = set().union(*(r["trained"] for r in record[:e]))
        assert record[e]["noised"] == [n for n in record[e]["drawn"] if n not in earlier]
    after = snapshot(out)
    params = {n for n, _ in out.named_parameters()}
    noised = set(record[1]["noised"]) | set(record[2]["noised"])
    assert changed(before, after) & params == noised | {"fc.weight", "fc.bias"}


def test_rni_fine_epochs_train_everything():
    record = []
    hp = methods.hyperparameters("rni", {"epochs": 2, "fine_epochs": 1, "batch_size": 8})
    out = rni.run(smallcnn(), data_for("rni", make_splits()), hp, gen(), record=record)
    assert record[1]["trained"] == [n for n, _ in out.named_parameters()]
    assert record[1]["noised"] == []
