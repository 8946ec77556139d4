"""Known-answer tests of the published methods NG+, SCRUB, BT, SalUn, FF and IU, and of
the SRL baseline (docs/methods.md), on tiny synthetic data and the CPU smallcnn. CF-k and
EU-k: test_methods_challenge.py; FT, GA, CT: test_methods_baselines.py."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unlearnbench import methods, models
from unlearnbench.batches import Split
from unlearnbench.data import get_spec
from unlearnbench.methods import _loops as loops
from unlearnbench.methods import _surgery as surgery
from unlearnbench.methods import bt, ff, iu, ngplus, salun, scrub, srl
from unlearnbench.methods.base import UnlearnData

from conftest import tiny_split
from oracles import woodfisher

C = 10
SPEC = get_spec("digits")
GROUP1 = ("srl", "ngplus", "scrub", "bt", "salun", "ff", "iu")


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_split(n: int, seed: int, size: int = 32, num_classes: int = C) -> Split:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    return Split(images, torch.randint(0, num_classes, (n,), generator=g), SPEC)


@pytest.fixture
def splits():
    return {"retain": make_split(12, 1), "forget": make_split(8, 2), "val": make_split(6, 3),
            "test": make_split(6, 4)}


def data_for(name: str, splits, num_classes: int = C) -> UnlearnData:
    return UnlearnData.restricted(name, methods.get(name).READS, splits, num_classes)


def smallcnn(seed: int = 0) -> nn.Module:
    return models.build("smallcnn", C, 32, seed=seed)


def gen(seed: int = 7) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def params_of(model):
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def buffers_of(model):
    return {k: v.detach().clone() for k, v in model.named_buffers()}


# --------------------------------------------------------------------------- registry


def test_registry_reads_and_defaults():
    assert set(GROUP1) <= set(methods.names())
    expected_reads = {
        "srl": {"retain", "forget"}, "ngplus": {"retain", "forget"}, "scrub": {"retain", "forget", "val"},
        "bt": {"retain", "forget"}, "salun": {"retain", "forget"}, "ff": {"retain"}, "iu": {"retain", "forget"},
    }
    for name, reads in expected_reads.items():
        assert set(methods.get(name).READS) == reads, name
    assert methods.label("ngplus") == "NG+" and methods.label("salun") == "SalUn"
    assert srl.DEFAULTS == {"epochs": 5, "batch_size": 256, "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4}
    assert ngplus.DEFAULTS == {"epochs": 10, "batch_size": 256, "alpha": 0.95, "lr": 0.01, "momentum": 0.9,
                               "weight_decay": 0.0}
    assert scrub.DEFAULTS == {"epochs": 5, "msteps": 3, "gamma": 1.0, "alpha": 0.5, "temperature": 2.0,
                              "lr": 5e-4, "momentum": 0.9, "weight_decay": 5e-4, "retain_batch_size": 32,
                              "forget_batch_size": 64}
    assert bt.DEFAULTS == {"epochs": 10, "batch_size": 256, "lr": 0.01, "weight_decay": 0.0, "temperature": 1.0}
    assert salun.DEFAULTS == {"epochs": 10, "batch_size": 256, "threshold": 0.5, "lr": 0.01, "momentum": 0.0,
                              "weight_decay": 0.0}
    assert ff.DEFAULTS == {"batch_size": 64, "alpha": 0.2}
    assert iu.DEFAULTS == {"batch_size": 256, "alpha": 0.2}


class RecordingTrial:
    """Records every suggestion (kind, range) and returns the low end / first choice."""

    def __init__(self):
        self.seen = {}

    def suggest_float(self, name, low, high, log=False):
        self.seen[name] = ("float", low, high, log)
        return low

    def suggest_int(self, name, low, high):
        self.seen[name] = ("int", low, high)
        return low

    def suggest_categorical(self, name, choices):
        self.seen[name] = ("cat", tuple(choices))
        return choices[0]


BASE = {"lr": ("float", 1e-5, 1e-1, True), "weight_decay": ("float", 1e-5, 1e-1, True),
        "batch_size": ("cat", (64, 128, 256)), "epochs": ("int", 1, 7)}


@pytest.mark.parametrize("name, extra", [
    ("srl", {}),
    ("ngplus", {"alpha": ("float", 0.0, 1.0, False)}),
    ("bt", {"temperature": ("float", 0.0, 5.0, False)}),
    ("salun", {"threshold": ("float", 0.0, 1.0, False), "momentum": ("float", 0.9, 0.9, False)}),
])
def test_search_spaces_base_plus(name, extra):
    trial = RecordingTrial()
    hp = methods.get(name).search_space(trial, 7)
    assert trial.seen == {**BASE, **extra}
    assert set(hp) <= set(methods.get(name).DEFAULTS)


def test_search_spaces_scrub_ff_iu():
    trial = RecordingTrial()
    scrub.search_space(trial, 7)
    assert trial.seen == {
        "gamma": ("float", 0.0, 1.0, False), "alpha": ("float", 0.0, 1.0, False), "msteps": ("int", 1, 7),
        "epochs": ("int", 1, 7), "temperature": ("float", 0.0, 5.0, False),
        "lr": ("float", 1e-5, 1e-1, True), "weight_decay": ("float", 1e-5, 1e-1, True),
        "retain_batch_size": ("cat", (64, 128, 256)), "forget_batch_size": ("cat", (64, 128, 256)),
    }
    for module in (ff, iu):
        trial = RecordingTrial()
        assert set(module.search_space(trial, 7)) == set(module.DEFAULTS)
        assert trial.seen == {"batch_size": ("cat", (64, 128, 256)), "alpha": ("float", 0.0, 1.0, False)}


# --------------------------------------------------------------------------- smoke, all methods


SMOKE_HP = {
    "srl": {"epochs": 1, "batch_size": 4},
    "ngplus": {"epochs": 1, "batch_size": 4},
    "scrub": {"epochs": 2, "msteps": 1, "retain_batch_size": 4, "forget_batch_size": 4},
    "bt": {"epochs": 1, "batch_size": 8},
    "salun": {"epochs": 1, "batch_size": 4, "lr": 0.05},
    "ff": {"batch_size": 4},
    "iu": {"batch_size": 4},
}


@pytest.mark.parametrize("name", GROUP1)
def test_smoke_smallcnn(name, splits):
    model = smallcnn()
    before = model.state_dict()
    before = {k: v.clone() for k, v in before.items()}
    out, _ = methods.run(name, model, splits, C, SMOKE_HP[name], gen())
    after = out.state_dict()
    assert list(after) == list(before)
    assert all(v.device.type == "cpu" for v in after.values())
    assert all(torch.isfinite(v.float()).all() for v in after.values())
    assert any(not torch.equal(before[k], after[k]) for k in before if after[k].is_floating_point())


@pytest.mark.parametrize("name", ["srl", "ngplus", "salun", "ff"])
def test_same_seed_same_weights(name, splits):
    a, _ = methods.run(name, smallcnn(), splits, C, SMOKE_HP[name], gen(3))
    b, _ = methods.run(name, smallcnn(), splits, C, SMOKE_HP[name], gen(3))
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k


# --------------------------------------------------------------------------- SRL


def test_srl_relabels_uniformly_including_true_label_fresh_each_epoch():
    retain, forget = make_split(5, 1, size=2), make_split(3000, 2, size=2, num_classes=4)
    union = loops.RelabelledUnion(retain, forget, num_classes=4)
    g = gen(11)
    first, second = union.epoch_split(g), union.epoch_split(g)
    # Known answer: the forget labels are exactly randint(0, C) from the generator, in order.
    ref = gen(11)
    expected1 = torch.randint(0, 4, (3000,), generator=ref)
    expected2 = torch.randint(0, 4, (3000,), generator=ref)
    assert torch.equal(first.labels[5:], expected1) and torch.equal(second.labels[5:], expected2)
    assert torch.equal(first.labels[:5], retain.labels)  # retain labels kept
    assert torch.equal(first.images, torch.cat([retain.images, forget.images]))
    assert not torch.equal(first.labels[5:], second.labels[5:])  # fresh each epoch
    same_as_true = (first.labels[5:] == forget.labels).float().mean().item()
    assert abs(same_as_true - 0.25) < 0.04  # true label not excluded: hit at rate 1/C
    counts = torch.bincount(first.labels[5:], minlength=4).float() / 3000
    assert torch.all((counts - 0.25).abs() < 0.04)


def test_srl_draws_fresh_labels_every_epoch(splits, monkeypatch):
    drawn = []
    real = loops.RelabelledUnion.epoch_split

    def spy(self, generator):
        split = real(self, generator)
        drawn.append(split.labels.clone())
        return split

    monkeypatch.setattr(loops.RelabelledUnion, "epoch_split", spy)
    methods.run("srl", smallcnn(), splits, C, {"epochs": 3, "batch_size": 8}, gen())
    assert len(drawn) == 3
    n_r = len(splits["retain"])
    assert all(torch.equal(d[:n_r], splits["retain"].labels) for d in drawn)
    assert not torch.equal(drawn[0][n_r:], drawn[1][n_r:]) or not torch.equal(drawn[1][n_r:], drawn[2][n_r:])


# --------------------------------------------------------------------------- NG+


def test_ngplus_alpha_one_is_retain_ce_in_eval_mode(splits):
    retain, forget = splits["retain"], splits["forget"]  # 12 and 8: 3 retain batches of 4, 2 forget
    hp = {**ngplus.DEFAULTS, "epochs": 1, "batch_size": 4, "alpha": 1.0, "lr": 0.05}
    model = smallcnn()
    reference = copy.deepcopy(model)
    buffers = buffers_of(model)
    methods.run("ngplus", model, splits, C, hp, gen(5))
    # BatchNorm statistics frozen (eval mode).
    for k, v in model.named_buffers():
        assert torch.equal(v, buffers[k]), k

    # Plain CE on the retain batches in eval mode, same SGD, same draws from the generator:
    # the retain permutation, then the forget loader's permutation(s) as NG+ cycles it.
    g = gen(5)
    reference.eval()
    opt = torch.optim.SGD(reference.parameters(), lr=0.05, momentum=0.9, weight_decay=0.0)
    for i, (x, y) in enumerate(retain.batches(4, shuffle=True, generator=g)):
        if i % forget.num_batches(4) == 0:
            torch.randperm(len(forget), generator=g)
        loss = F.cross_entropy(reference(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    for (k, a), b in zip(model.named_parameters(), reference.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=k)


def test_ngplus_loss_is_alpha_retain_minus_forget(splits, monkeypatch):
    """With lr such that one SGD step is theta - lr grad, the first step's gradient must be
    that of alpha CE_r - (1 - alpha) CE_f on the first retain and forget batches."""
    retain, forget = splits["retain"], splits["forget"]
    alpha = 0.3
    hp = {**ngplus.DEFAULTS, "epochs": 1, "batch_size": 12, "alpha": alpha, "lr": 1.0, "momentum": 0.0}
    model = smallcnn()
    start = copy.deepcopy(model).eval()
    methods.run("ngplus", model, splits, C, hp, gen(9))
    g = gen(9)
    x_r, y_r = next(retain.batches(12, shuffle=True, generator=g))
    x_f, y_f = next(forget.batches(12, shuffle=True, generator=g))
    loss = alpha * F.cross_entropy(start(x_r), y_r) - (1 - alpha) * F.cross_entropy(start(x_f), y_f)
    grads = torch.autograd.grad(loss, list(start.parameters()))
    for (k, p), p0, gr in zip(model.named_parameters(), start.parameters(), grads):
        torch.testing.assert_close(p, p0 - gr, rtol=1e-5, atol=1e-6, msg=k)


# --------------------------------------------------------------------------- SCRUB


def test_scrub_rewind_epoch_known_numbers():
    assert scrub.rewind_epoch([0.05, 0.12, 0.30, 0.22], 0.2) == 4
    assert scrub.rewind_epoch([0.5, 0.21, 0.19], 0.2) == 2  # tie: the first epoch wins
    assert scrub.rewind_epoch([0.9], 0.1) == 1
    assert scrub.rewind_epoch([0.0, 0.0, 0.4, 0.1], 0.0) == 1


def test_scrub_lr_schedule():
    assert [scrub.lr_at(e, 1.0, 10) for e in range(1, 11)] == pytest.approx(
        [1, 1, 1, 1, 1, 0.1, 0.1, 0.1, 0.01, 0.001])
    assert [scrub.lr_at(e, 1.0, 5) for e in range(1, 6)] == pytest.approx([1, 1, 0.1, 0.1, 0.001])
    assert scrub.lr_at(1, 1.0, 1) == pytest.approx(0.001)  # milestones 0, 0, 0


def test_kl_t_known_answer():
    s = torch.tensor([[0.0, 1.0], [2.0, 0.0]])
    t = torch.tensor([[1.0, 0.0], [2.0, 0.0]])
    temp = 2.0
    expected = 0.0
    for i in range(2):
        pt, ps = F.softmax(t[i] / temp, 0), F.softmax(s[i] / temp, 0)
        expected += float((pt * (pt.log() - ps.log())).sum())
    expected = expected / 2 * temp**2
    assert float(loops.kl_t(s, t, temp)) == pytest.approx(expected, rel=1e-5)
    assert float(loops.kl_t(t, t, temp)) == pytest.approx(0.0, abs=1e-7)


def test_scrub_returns_student_of_rewound_epoch(splits, monkeypatch):
    hp = {**scrub.DEFAULTS, "epochs": 3, "msteps": 2, "retain_batch_size": 4, "forget_batch_size": 4,
          "lr": 0.05}
    states, forget_errors, val_error = scrub.train(smallcnn(), data_for("scrub", splits), hp, gen(4))
    assert len(states) == len(forget_errors) == 3 and 0.0 <= val_error <= 1.0

    out, _ = methods.run("scrub", smallcnn(), splits, C, hp, gen(4))
    chosen = states[scrub.rewind_epoch(forget_errors, val_error) - 1]
    for k, v in out.state_dict().items():
        assert torch.equal(v, chosen[k]), k

    monkeypatch.setattr(scrub, "rewind_epoch", lambda errors, val: 1)
    out, _ = methods.run("scrub", smallcnn(), splits, C, hp, gen(4))
    for k, v in out.state_dict().items():
        assert torch.equal(v, states[0][k]), k
    assert any(not torch.equal(states[0][k], states[2][k]) for k in states[0])


class CountingSplit(Split):
    def __init__(self, split, log):
        super().__init__(split.images, split.labels, split.spec)
        self.log = log

    def batches(self, batch_size, shuffle=True, generator=None, augment_data=False):
        self.log.append((batch_size, shuffle))
        return super().batches(batch_size, shuffle, generator, augment_data)


def test_scrub_max_steps_only_first_msteps_unshuffled(splits):
    log = []
    wrapped = {**splits, "forget": CountingSplit(splits["forget"], log)}
    hp = {"epochs": 3, "msteps": 2, "retain_batch_size": 4, "forget_batch_size": 3}
    methods.run("scrub", smallcnn(), wrapped, C, hp, gen())
    assert [call for call in log if call[0] == 3] == [(3, False), (3, False)]  # two max steps, in order


# --------------------------------------------------------------------------- BT


def test_bt_target_incompetent_on_forget_competent_on_retain():
    torch.manual_seed(0)
    competent, incompetent = nn.Linear(5, 4), nn.Linear(5, 4)
    x = torch.randn(6, 5)
    is_forget = torch.tensor([0, 1, 1, 0, 0, 1])
    temp = 2.5
    target = bt.bt_target(x, is_forget, competent, incompetent, temp)
    with torch.no_grad():
        for i in range(6):
            teacher = incompetent if is_forget[i] else competent
            torch.testing.assert_close(target[i], F.softmax(teacher(x[i:i + 1]) / temp, dim=1)[0])
    student = torch.randn(6, 4)
    log_s = F.log_softmax(student / temp, dim=1)
    expected = (target * (target.log() - log_s)).sum() / target.numel()  # mean over batch x class
    assert float(bt.bt_loss(student, target, temp)) == pytest.approx(float(expected), rel=1e-5)


def test_bt_uses_origin_flags_and_seeded_resnet18(splits, monkeypatch):
    built, seen = [], []
    real_build, real_target = bt.models.build, bt.bt_target

    def spy_build(name, num_classes, image_size=32, seed=None):
        built.append((name, num_classes, seed))
        return real_build(name, num_classes, image_size, seed=seed)

    def spy_target(x, is_forget, competent, incompetent, temperature):
        seen.append((x.clone(), is_forget.clone(), incompetent))
        return real_target(x, is_forget, competent, incompetent, temperature)

    model = smallcnn()
    original = copy.deepcopy(model)
    resnet18_type = type(models.build("resnet18", C))
    monkeypatch.setattr(bt.models, "build", spy_build)
    monkeypatch.setattr(bt, "bt_target", spy_target)
    methods.run("bt", model, splits, C, {"epochs": 1, "batch_size": 8}, gen(21))
    assert built == [("resnet18", C, surgery.draw_seed(gen(21)))]
    assert isinstance(seen[0][2], resnet18_type)
    assert not seen[0][2].training
    forget_x = splits["forget"].normalise(splits["forget"].images)
    retain_x = splits["retain"].normalise(splits["retain"].images)
    flags = torch.cat([f for _, f, _ in seen])
    xs = torch.cat([x for x, _, _ in seen])
    assert int(flags.sum()) == len(splits["forget"]) and len(flags) == len(splits["forget"]) + len(splits["retain"])
    for x, flag in zip(xs, flags):
        pool = forget_x if flag else retain_x
        assert (pool - x).abs().flatten(1).amax(1).min() == 0  # each row comes from the flagged split
    # The competent teacher is the frozen original: its targets on a retain row are softmax(O(x)/T).
    x0, f0, _ = seen[0]
    retain_rows = (f0 == 0).nonzero().squeeze(1)
    original.eval()
    with torch.no_grad():
        target = real_target(x0, f0, original, seen[0][2], 1.0)
        torch.testing.assert_close(target[retain_rows], F.softmax(original(x0[retain_rows]), dim=1))


# --------------------------------------------------------------------------- SalUn


def test_salun_mask_known_answer():
    saliency = [torch.tensor([0.1, 5.0, 0.3]), torch.tensor([[2.0, 0.2], [0.05, 4.0]])]
    masks = salun.saliency_mask(saliency, 0.5)  # int(7 x 0.5) = 3 entries: 5, 4, 2
    assert masks[0].tolist() == [False, True, False]
    assert masks[1].tolist() == [[True, False], [False, True]]
    assert [m.sum().item() for m in salun.saliency_mask(saliency, 1.0)] == [3, 4]
    assert [m.sum().item() for m in salun.saliency_mask(saliency, 0.0)] == [0, 0]


def test_salun_mask_keeps_exact_fraction_globally():
    torch.manual_seed(0)
    saliency = [torch.rand(7, 3), torch.rand(11) * 2, torch.rand(2, 2, 3) * 0.5]
    total = sum(s.numel() for s in saliency)
    for threshold in (0.1, 0.33, 0.5, 0.9):
        masks = salun.saliency_mask(saliency, threshold)
        kept = int(total * threshold)
        assert sum(int(m.sum()) for m in masks) == kept
        values = torch.cat([s.flatten() for s in saliency])
        chosen = torch.cat([m.flatten() for m in masks])
        assert values[chosen].min() >= values[~chosen].max()  # global ranking, not per tensor


def test_salun_saliency_is_abs_summed_negative_ce_gradient_in_eval_mode(splits):
    model = smallcnn()
    model.train()
    buffers = buffers_of(model)
    got = salun.forget_saliency(model, splits["forget"], 3, gen(2))
    assert model.training
    for k, v in model.named_buffers():
        assert torch.equal(v, buffers[k])  # eval mode: BatchNorm statistics untouched
    ref = copy.deepcopy(model).eval()
    total = [torch.zeros_like(p) for p in ref.parameters()]
    for x, y in splits["forget"].batches(3, shuffle=True, generator=gen(2)):
        for acc, g in zip(total, torch.autograd.grad(-F.cross_entropy(ref(x), y), list(ref.parameters()))):
            acc += g
    for a, b in zip(got, total):
        torch.testing.assert_close(a, b.abs())


def test_salun_masked_entries_do_not_change(splits, monkeypatch):
    captured = []
    real = salun.saliency_mask

    def spy(saliency, threshold):
        masks = real(saliency, threshold)
        captured.append(masks)
        return masks

    monkeypatch.setattr(salun, "saliency_mask", spy)
    model = smallcnn()
    before = params_of(model)
    hp = {"epochs": 2, "batch_size": 4, "lr": 0.1, "threshold": 0.3}  # momentum 0, wd 0: the defaults
    methods.run("salun", model, splits, C, hp, gen())
    masks = captured[0]
    total = sum(m.numel() for m in masks)
    assert sum(int(m.sum()) for m in masks) == int(total * 0.3)
    changed_inside = 0
    for (k, p), m in zip(model.named_parameters(), masks):
        assert torch.equal(p[~m], before[k][~m]), k
        changed_inside += int((p[m] != before[k][m]).sum())
    assert changed_inside > 0


# --------------------------------------------------------------------------- FF


def test_ff_variance_known_answer():
    alpha, c = 0.5, 3
    classifier_w = torch.tensor([[1e-6, 4.0], [0.5, 1.0], [2.0, 1e-9]])
    # 1/(F+eps) capped at 1e3 then 1e2 (first dim = C) -> [[100, .25], [2, 1], [.5, 100]]; x alpha;
    # mean over dim 1; x 10.
    expected = torch.tensor([[250.625, 250.625], [7.5, 7.5], [251.25, 251.25]])
    torch.testing.assert_close(ff.fisher_variance(classifier_w, alpha, c), expected)
    bn = torch.tensor([0.1, 1e-5, 2.0, 0.0])  # 1-D: cap 1e3, x alpha, x 10
    expected = torch.tensor([10 / (1 + 1e-7), 1e3, 0.5, 1e3]) * alpha * 10
    torch.testing.assert_close(ff.fisher_variance(bn, alpha, c), expected)
    conv = torch.tensor([[1.0, 0.25], [1e-4, 1e-2]]).view(2, 2, 1, 1)  # first dim 2 != C: no x 10
    expected = torch.tensor([[1.25, 1.25], [275.0, 275.0]]).view(2, 2, 1, 1)
    torch.testing.assert_close(ff.fisher_variance(conv, alpha, c), expected, rtol=1e-5, atol=1e-5)
    bias = torch.tensor([1e-3, 1.0, 0.1])  # classifier bias: cap 1e2, x 10 once
    torch.testing.assert_close(ff.fisher_variance(bias, alpha, c),
                               torch.tensor([500.0, 5.0, 50.0]), rtol=1e-5, atol=1e-5)


def test_ff_fisher_diagonal_matches_closed_form_for_a_linear_model():
    c = 3
    split = make_split(10, 5, size=4, num_classes=c)  # batches 4, 4, 2
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(48, c))
    got = ff.fisher_diagonal(model, split, 4, c)
    w, b = model[1].weight.detach(), model[1].bias.detach()
    fw, fb, nb = torch.zeros_like(w), torch.zeros_like(b), 0
    for x, _ in split.batches(4, shuffle=False):
        x = x.flatten(1)
        p = F.softmax(x @ w.T + b, dim=1)
        for y in range(c):
            delta = p - F.one_hot(torch.full((len(x),), y), c).float()  # dCE/dlogits per sample
            gw, gb = delta.T @ x / len(x), delta.mean(0)
            fw += p[:, y].mean() * gw**2
            fb += p[:, y].mean() * gb**2
        nb += 1
    assert nb == 3
    torch.testing.assert_close(got[0], fw / nb, rtol=1e-4, atol=1e-9)
    torch.testing.assert_close(got[1], fb / nb, rtol=1e-4, atol=1e-9)


@pytest.fixture
def no_optimizer(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("no optimiser may be used")

    monkeypatch.setattr(torch.optim.Optimizer, "__init__", refuse)
    monkeypatch.setattr(torch.optim.Optimizer, "step", refuse)


def test_ff_adds_fisher_noise_without_optimizer(splits, no_optimizer):
    model = smallcnn()
    start = copy.deepcopy(model)
    buffers = buffers_of(model)
    hp = {"batch_size": 4, "alpha": 0.3}
    methods.run("ff", model, splits, C, hp, gen(8))
    for k, v in model.named_buffers():
        assert torch.equal(v, buffers[k]), k
    fisher = ff.fisher_diagonal(start, splits["retain"], 4, C)
    g = gen(8)
    for (k, p), p0, f in zip(model.named_parameters(), start.parameters(), fisher):
        noise = torch.randn(p0.shape, generator=g)
        torch.testing.assert_close(p, p0 + ff.fisher_variance(f, 0.3, C).sqrt() * noise, msg=k)


def test_ff_times_its_whole_procedure_on_every_run(splits, monkeypatch):
    """Two runs in one process (a search's trials, search.one_job's final runs) each
    compute the Fisher diagonal, so their recorded times are of the same order (the
    FF cache that kept F between runs made the second ~300 times shorter) and their models equal."""
    calls = []
    real = ff.fisher_diagonal
    monkeypatch.setattr(ff, "fisher_diagonal", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    original = smallcnn()
    hp = {"batch_size": 4, "alpha": 0.3}
    first, t1 = methods.run("ff", copy.deepcopy(original), splits, C, hp, gen(8))
    again, t2 = methods.run("ff", copy.deepcopy(original), splits, C, hp, gen(8))
    assert calls == [4, 4]  # F computed by each run
    assert t2 > t1 / 20 and t1 > t2 / 20  # the same order of magnitude (a cache gives ~1/300)
    for p, q in zip(first.parameters(), again.parameters()):
        assert torch.equal(p, q)


# --------------------------------------------------------------------------- IU


def test_woodfisher_known_small_vectors():
    v = torch.tensor([1.0, 2.0, 0.0])
    gs = [torch.tensor([1.0, 0.0, 1.0]), torch.tensor([0.0, 1.0, 1.0]), torch.tensor([1.0, 1.0, 0.0])]
    # By hand with N = 1: o = g1; g2: o.g = 1, k.g = 2 -> k = v - o = [0, 2, -1], o = o / 2;
    # g3: o.g = 0.5, k.g = 2 -> k = k - (2 / 1.5) o = [-2/3, 2, -5/3].
    torch.testing.assert_close(woodfisher(v, gs, damping=1.0), torch.tensor([-2 / 3, 2.0, -5 / 3]))
    assert torch.equal(woodfisher(v, gs[:1], damping=1.0), v)  # one sample only initialises o

    # A float64 direct computation for random vectors and the real damping.
    torch.manual_seed(0)
    v = torch.randn(20, dtype=torch.float64)
    gs = [torch.randn(20, dtype=torch.float64) * 10 for _ in range(30)]
    k, o = v.clone(), gs[0].clone()
    for g in gs[1:]:
        og, kg = float(o @ g), float(k @ g)
        k = k - kg / (1000.0 + og) * o
        o = o - og / (1000.0 + og) * o
    torch.testing.assert_close(woodfisher(v, gs), k)


def test_iu_influence_direction_known_answer():
    v = iu.influence_direction(torch.tensor([2.0, 4.0]), torch.tensor([10.0, 20.0]), 2, 8)
    torch.testing.assert_close(v, torch.tensor([0.2 - 0.25, 0.4 - 0.5]))


def test_woodfisher_closed_form_equals_the_recursion():
    """IU's fast path: from g.g_first and g.v alone, the same k as the literal recursion
    (by hand on the small example, and on random float64 vectors)."""
    v = torch.tensor([1.0, 2.0, 0.0], dtype=torch.float64)
    gs = [torch.tensor([1.0, 0.0, 1.0]), torch.tensor([0.0, 1.0, 1.0]), torch.tensor([1.0, 1.0, 0.0])]
    gs = [g.double() for g in gs]
    dots = torch.tensor([[g @ gs[0], g @ v] for g in gs[1:]])
    torch.testing.assert_close(iu.woodfisher_from_dots(v, gs[0], dots[:, 0], dots[:, 1], damping=1.0),
                               torch.tensor([-2 / 3, 2.0, -5 / 3], dtype=torch.float64))
    torch.manual_seed(0)
    v = torch.randn(20, dtype=torch.float64)
    gs = [torch.randn(20, dtype=torch.float64) * 10 for _ in range(30)]
    dots = torch.tensor([[g @ gs[0], g @ v] for g in gs[1:]])
    torch.testing.assert_close(iu.woodfisher_from_dots(v, gs[0], dots[:, 0], dots[:, 1]), woodfisher(v, gs))


@pytest.mark.parametrize("name", models.MODEL_NAMES)
def test_iu_gradient_dots_are_per_sample_gradient_dot_products(name):
    """The forward-mode dots g_i.u equal the dot products of the explicit per-sample
    gradients, on every registry model (TinyViT's attention included), in order."""
    torch.manual_seed(0)
    model = models.build(name, C, seed=0).eval()
    split = tiny_split(12, 3)
    grads = list(iu.single_sample_gradients(model, split, 12))
    u = torch.randn_like(grads[0])
    dots = iu.gradient_dots(model, split, [grads[0], u], 2, 9)
    g1_, u_ = grads[0].double(), u.double()
    expected = torch.tensor([[float(g.double() @ g1_), float(g.double() @ u_)] for g in grads[2:9]],
                            dtype=torch.float64)
    assert dots.shape == (7, 2) and dots.dtype == torch.float64
    torch.testing.assert_close(dots, expected, rtol=2e-3, atol=1e-6 * float(expected.abs().max()))


def test_iu_summed_gradient_is_sum_of_per_sample_gradients(splits):
    model = smallcnn().eval()
    a = iu.summed_gradient(model, splits["forget"], 3)
    b = iu.summed_gradient(model, splits["forget"], 8)
    params = list(model.parameters())
    per_sample = sum(iu.single_sample_gradients(model, splits["forget"], 100))
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(a, per_sample, rtol=1e-4, atol=1e-6)
    assert len(list(iu.single_sample_gradients(model, splits["forget"], 3))) == 3
    assert a.numel() == sum(p.numel() for p in params)


def test_iu_applies_alpha_k_without_optimizer(splits, no_optimizer):
    model = smallcnn()
    start = copy.deepcopy(model)
    buffers = buffers_of(model)
    methods.run("iu", model, splits, C, {"batch_size": 5, "alpha": 0.7}, gen())
    for k, v in model.named_buffers():
        assert torch.equal(v, buffers[k]), k
    start.eval()
    retain, forget = splits["retain"], splits["forget"]
    v = iu.influence_direction(iu.summed_gradient(start, forget, 5), iu.summed_gradient(start, retain, 5),
                               len(forget), len(retain))
    k = woodfisher(v, iu.single_sample_gradients(start, retain, iu.WOODFISHER_SAMPLES))
    expected = torch.cat([p.detach().flatten() for p in start.parameters()]) + 0.7 * k
    got = torch.cat([p.detach().flatten() for p in model.parameters()])
    torch.testing.assert_close(got, expected)
    assert not torch.equal(got, torch.cat([p.detach().flatten() for p in start.parameters()]))


# --------------------------------------------------------------------------- shared helpers


def test_tinyvit_attention_bias_is_never_cached():
    """timm's TinyViT Attention caches its bias table in eval mode (graph included), which
    breaks a second backward, goes stale after a step and cannot be deep-copied. models.py
    builds TinyViT without that cache (the one fix), so the methods use plain eval() and
    copy.deepcopy."""
    from timm.models.tiny_vit import Attention

    models.build("tinyvit11m", C, seed=0)
    torch.manual_seed(0)
    model = nn.Sequential(nn.BatchNorm1d(4), nn.Unflatten(1, (4, 1)), Attention(1, 2, num_heads=2, resolution=(2, 2)))
    model.eval()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(3, 4)
    for _ in range(2):  # the second backward would fail with the eval-mode cache
        opt.zero_grad()
        model(x).pow(2).sum().backward()
        opt.step()
    assert not model[2].attention_bias_cache
    copy.deepcopy(model)
