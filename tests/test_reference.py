"""Known answers from the authors' released code (docs/reference.md): each test
transcribes the reference's procedure, or states the value its semantics give, and
checks the project against it."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import norm
from torch import nn

from unlearnbench import methods, models
from unlearnbench.attacks import ulira
from unlearnbench.batches import Split
from unlearnbench.data import get_spec
from unlearnbench.methods import UnlearnData, rni

REPO = Path(__file__).resolve().parents[1]

C = 10
SPEC = get_spec("digits")


def split(n: int, seed: int) -> Split:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    return Split(images, torch.arange(n) % C, SPEC)


def data_for(name: str, n_retain: int = 24) -> UnlearnData:
    splits = {"retain": split(n_retain, 1), "forget": split(8, 2), "val": split(8, 3)}
    return UnlearnData.restricted(name, methods.get(name).READS, splits, C)


# ----------------------------------------------------------------------------- RNI (kgltop7.py)


def test_rni_noise_rule_known_answer(monkeypatch):
    """kgltop7 noise_optimize_group: draw int(r x 9) of the epoch's chosen tensors, then
    skip every tensor an earlier epoch selected for training. With the draws scripted,
    the noised tensors are known: epoch 1 noises only the 3 drawn tensors epoch 0 did not
    train, epoch 2 none (all its drawn tensors were trained before)."""
    model = models.build("smallcnn", C, seed=0)
    names = [n for n, _ in model.named_parameters() if "bn" not in n]
    assert len(names) == 12
    script = [
        (names, 9, names[:9]),  # epoch 0: chosen
        (names, 9, names[3:]),  # epoch 1: chosen
        (names[3:], 6, names[9:] + names[3:6]),  # epoch 1: drawn among the chosen
        (names, 9, names[:9]),  # epoch 2: chosen
        (names[:9], 6, names[:6]),  # epoch 2: drawn
    ]
    calls = iter(script)

    def scripted(items, count, generator):
        want_items, want_count, answer = next(calls)
        assert (list(items), count) == (list(want_items), want_count)
        return list(answer)

    monkeypatch.setattr(rni, "_choose", scripted)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    record = []
    hp = methods.hyperparameters("rni", {"epochs": 3, "fine_epochs": 0, "reset_epoch": 1, "lr": 0.0,
                                         "weight_decay": 0.0, "batch_size": 8})
    rni.run(model, data_for("rni"), hp, torch.Generator().manual_seed(0), record=record)
    assert [r["noised"] for r in record] == [[], names[9:], []]
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert moved == set(names[9:]) | {"fc.weight", "fc.bias"}  # fc is also reset


def test_rni_noise_rule_matches_a_transcription_with_the_real_draws():
    record = []
    hp = methods.hyperparameters("rni", {"epochs": 6, "fine_epochs": 1, "reset_epoch": 1, "lr": 0.0,
                                         "weight_decay": 0.0, "batch_size": 8})
    rni.run(models.build("smallcnn", C, seed=0), data_for("rni"), hp, torch.Generator().manual_seed(3),
            record=record)
    already_select = []  # the reference's list, grown by each epoch's optim_keys
    for epoch, r in enumerate(record[:5]):
        assert len(r["drawn"]) == (6 if epoch >= 1 else 0) and set(r["drawn"]) <= set(r["chosen"])
        assert r["noised"] == [k for k in r["drawn"] if k not in already_select]
        already_select = list(set(already_select + r["trained"]))
    assert sum(len(r["noised"]) for r in record) < sum(len(r["drawn"]) for r in record)


def test_rni_default_fine_lr_is_the_reference_per_epoch_list():
    """ORIGINAL_FINE_LR indexed by ep - epochs + fine_epoch: with 9 epochs and 4 fine
    ones, the fine epochs 5..8 run at 2e-4, 2e-4, 2e-4, 1e-3; a searched number is used
    in every fine epoch."""
    assert rni.DEFAULTS["fine_lr"] == [2e-4, 2e-4, 2e-4, 1e-3, 1e-3, 1e-4]
    record = []
    hp = methods.hyperparameters("rni", {"batch_size": 64})
    rni.run(models.build("smallcnn", C, seed=0), data_for("rni", 8), hp, torch.Generator().manual_seed(0),
            record=record)
    assert [r["lr"] for r in record] == pytest.approx([2e-4] * 5 + [2e-4, 2e-4, 2e-4, 1e-3])
    record = []
    hp = methods.hyperparameters("rni", {"epochs": 3, "fine_epochs": 2, "fine_lr": 0.5, "batch_size": 64})
    rni.run(models.build("smallcnn", C, seed=0), data_for("rni", 8), hp, torch.Generator().manual_seed(0),
            record=record)
    assert [r["lr"] for r in record] == pytest.approx([2e-4, 0.5, 0.5])
    with pytest.raises(ValueError, match="fine_lr lists 2 learning rates for 3 fine epochs"):
        rni.run(models.build("smallcnn", C, seed=0), data_for("rni", 8),
                methods.hyperparameters("rni", {"fine_epochs": 3, "fine_lr": [0.1, 0.1]}),
                torch.Generator().manual_seed(0))


# ----------------------------------------------------------------------------- TinyViT blocks (munl/models)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_tinyvit_blocks_and_classifier_are_the_reference_partition():
    """get_vit_blocks: the 3 BasicLayers (attention stages with their patch merging at the
    end); get_model_classifier: `head`, a Linear. Sizes counted on the reference's
    thirdparty/tiny_vit.py with 10 classes: 501,896 / 5,086,976 / 4,839,772 and 4,490."""
    model = models.build("tinyvit11m", C, seed=0)
    blocks = models.blocks(model)
    assert [n_params(b) for b in blocks] == [501_896, 5_086_976, 4_839_772]
    names = {id(p): n for n, p in model.named_parameters()}
    prefixes = [{names[id(p)].rsplit(".blocks.", 1)[0].split(".downsample.")[0] + (
        ".blocks" if ".blocks." in names[id(p)] else ".downsample") for p in b.parameters()} for b in blocks]
    assert prefixes == [{"stages.1.blocks", "stages.2.downsample"}, {"stages.2.blocks", "stages.3.downsample"},
                        {"stages.3.blocks"}]
    head = models.classifier(model)
    assert isinstance(head, nn.Linear) and head is model.head.fc and n_params(head) == 448 * C + C
    assert models.classifier_linear(model) is head


def test_cfk_on_tinyvit_trains_the_reference_blocks():
    from unlearnbench.methods import cfk

    model = models.build("tinyvit11m", C, seed=0)
    trainable = {id(p) for p in cfk.parameters_of(cfk.last_k_modules(model, 1))}
    named = {n for n, p in model.named_parameters() if id(p) in trainable}
    assert named == {n for n, _ in model.named_parameters() if n.startswith(("stages.3.blocks.", "head.fc."))}
    everything = {id(p) for p in cfk.parameters_of(cfk.last_k_modules(model, 10))}
    frozen = {n for n, p in model.named_parameters() if id(p) not in everything}
    assert frozen == {n for n, _ in model.named_parameters()
                      if n.startswith(("patch_embed.", "stages.0.", "stages.1.downsample.", "head.norm."))}


# ----------------------------------------------------------------------------- U-LiRA design (step_1)


def reference_lira_splits(n_train: int, data_seed=123, val_ratio=0.05, forget_ratio=0.1, splits=6, forgets=3):
    """pipeline/lira/step_1_lira_generate_splits.py main(), on indices 0..n_train-1."""
    def generate_lira_train_tests(lira_dev_indices, num_attempts, ratio=0.5):
        test_size = int(len(lira_dev_indices) * ratio)
        train_size = len(lira_dev_indices) - test_size
        indices = np.zeros(shape=(num_attempts, len(lira_dev_indices)), dtype=int)
        for attempt_ndx in range(num_attempts):
            indices[attempt_ndx] = np.random.default_rng(attempt_ndx).permutation(lira_dev_indices.copy())
        return indices[:, :train_size], indices[:, train_size:]

    dev_indices = np.arange(n_train)
    val_len = int(n_train * val_ratio)
    lira_indices = np.random.default_rng(data_seed).permutation(dev_indices)
    lira_dev_indices, lira_val_indices = lira_indices[:-val_len], lira_indices[-val_len:]
    train_matrices, test_matrices = generate_lira_train_tests(lira_dev_indices, splits)
    forgets_out = np.stack([generate_lira_train_tests(row, forgets, forget_ratio)[1] for row in train_matrices])
    return lira_val_indices, train_matrices, test_matrices, forgets_out


def test_ulira_design_is_the_reference_split_index_for_index():
    n_train = 2000  # 5 %, halves and 10 % all exact, as at the paper's sizes (50,000 / 47,500 / 23,750)
    val, train, test, forgets = reference_lira_splits(n_train)
    d = ulira.make_design(n_train, np.zeros(n_train, dtype=int), 6, 3)
    assert set(d.val) == set(val)
    for k in range(6):
        assert set(d.pool[d.in_mask[k]]) == set(train[k]) and set(d.pool[~d.in_mask[k]]) == set(test[k])
        for f in range(3):
            assert set(d.pool[d.forget_mask[k, f]]) == set(forgets[k, f])


# ----------------------------------------------------------------------------- U-LiRA scores (consolidate_predictions.py)


def reference_membership(probas: np.ndarray, targets: np.ndarray, test_indices, forgets, n_forget_sets):
    """munl/lira/consolidate_predictions.py: build_forgotten_never_seen_map,
    extract_are_predictions_correct, compute_membership_probabilities (probas indexed
    [example, split, forget set, class])."""
    never, forgotten = defaultdict(list), defaultdict(list)
    for split_ndx, row in enumerate(test_indices):
        for value in row:
            never[value].extend([(split_ndx, f) for f in range(n_forget_sets)])
    for split_ndx in range(len(forgets)):
        for forget_ndx in range(n_forget_sets):
            for value in forgets[split_ndx][forget_ndx]:
                forgotten[value].append((split_ndx, forget_ndx))
    out = {}
    for ndx in sorted(never):
        f = [probas[ndx, s, g].argmax() == targets[ndx] for s, g in forgotten[ndx]]
        n = [probas[ndx, s, g].argmax() == targets[ndx] for s, g in never[ndx]]
        fm, fs, nm, ns = np.mean(f), np.std(f), np.mean(n), np.std(n)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[ndx] = [norm.pdf(z, fm, fs) / (norm.pdf(z, fm, fs) + norm.pdf(z, nm, ns)) for z in f]
        out[ndx] = list(zip(forgotten[ndx], out[ndx]))
    return out


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_correctness_without_holdout_is_the_reference_procedure():
    k_, f_ = 8, 3
    d = ulira.make_design(240, np.random.default_rng(0).integers(0, 4, 240), k_, f_, forget_fraction=0.2)
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 1, (k_, f_, d.n_pool, 4))
    logits[..., :5, :] = 0.0  # always predicts class 0: a constant correctness, std 0 on both sides
    logits[..., 0] += 2.0 * d.in_mask[:, None, :]  # class 0 more likely where seen
    values = ulira.statistic(logits, d.labels, "correctness")
    s = ulira.score_reference(values, d)
    test_indices = [np.flatnonzero(~d.in_mask[k]) for k in range(k_)]
    forgets = [[np.flatnonzero(d.forget_mask[k, f]) for f in range(f_)] for k in range(k_)]
    expected = reference_membership(np.transpose(logits, (2, 0, 1, 3)), d.labels, test_indices, forgets, f_)
    n_defined = n_nan = 0
    for ndx, cases in expected.items():
        for (k, f), p in cases:
            if np.isnan(p):
                n_nan += 1
                assert s.label[k, f, ndx] == -1 and np.isnan(s.p[k, f, ndx])
            else:
                n_defined += 1
                assert s.label[k, f, ndx] == 1 and s.p[k, f, ndx] == pytest.approx(p, rel=1e-6, abs=1e-7)
    assert n_defined > 100 and n_nan > 0
    assert (s.label == 1).sum() == n_defined and s.dropped.sum() == n_nan and not (s.label == 0).any()
    m = ulira.summarise(s)
    assert m["n_unscored"] == n_nan and np.isnan(m["auc"])
    assert m["mean_p_forgotten"] == pytest.approx(np.mean([p for c in expected.values() for _, p in c
                                                           if not np.isnan(p)]), rel=1e-6)


# ----------------------------------------------------------------------------- KDE (kgltop6.py)


class RecordingSplit(Split):
    def __init__(self, base: Split):
        super().__init__(base.images, base.labels, base.spec)
        self.shuffles = []

    def batches(self, batch_size, shuffle=True, generator=None, augment_data=False):
        self.shuffles.append(shuffle)
        return super().batches(batch_size, shuffle=shuffle, generator=generator, augment_data=augment_data)


def test_kde_warm_up_reads_the_validation_set_in_order():
    """kgltop6 warms up on val_loader, which default_loaders builds with shuffle False."""
    splits = {"retain": RecordingSplit(split(16, 1)), "forget": split(8, 2), "val": RecordingSplit(split(16, 3))}
    data = UnlearnData.restricted("kde", methods.get("kde").READS, splits, C)
    hp = methods.hyperparameters("kde", {"epochs": 2, "retain_epochs": 1, "batch_size": 8})
    methods.get("kde").unlearn(models.build("smallcnn", C, seed=0), data, hp, torch.Generator().manual_seed(0))
    assert splits["val"].shuffles == [False, False] and splits["retain"].shuffles == [True]


# ----------------------------------------------------------------------------- CF-k / EU-k lr (scrub_utils.fk_finetune)


def reference_lr_factors(epochs: int, decay: float) -> list[float]:
    """fk_finetune: adjust_learning_rate(epoch, ...) with the 0-based epoch; steps =
    sum(epoch > milestone) over int(0.5E), int(0.8E), int(0.9E)."""
    milestones = np.asarray([int(epochs * 0.5), int(epochs * 0.8), int(epochs * 0.9)])
    return [decay ** int(np.sum(epoch > milestones)) for epoch in range(epochs)]


@pytest.mark.parametrize("name", ["cfk", "euk"])
@pytest.mark.parametrize("epochs, factors", [(1, [1]), (2, [1, 1]), (3, [1, 1, 0.5]), (5, [1, 1, 1, 0.5, 0.5]),
                                             (10, [1] * 6 + [0.5] * 3 + [0.25])])
def test_cfk_euk_lr_per_epoch(name, epochs, factors, monkeypatch):
    assert reference_lr_factors(epochs, 0.5) == factors
    seen = []
    step = torch.optim.SGD.step

    def recording_step(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", recording_step)
    hp = methods.hyperparameters(name, {"epochs": epochs, "batch_size": 24, "lr": 0.1, "decay_rate": 0.5})
    methods.get(name).unlearn(models.build("smallcnn", C, seed=0), data_for(name, 24), hp,
                              torch.Generator().manual_seed(0))
    assert seen == pytest.approx([0.1 * f for f in factors])  # one step per epoch (24 retain examples)


# ----------------------------------------------------------------------------- U-LiRA cap (suggestor.py, lira=True)


def test_ulira_epoch_cap_under_the_paper_config():
    """get_num_epochs_suggestion with lira: ceil(0.2 x 91) = 19, not the main cap 37."""
    from unlearnbench import config

    cfg = config.validate_ulira(config.load(REPO / "configs" / "paper.yaml"))
    assert config.ulira_recipe(cfg)["epochs"] == 91
    assert config.ulira_epoch_cap(cfg) == 19 and config.epoch_cap(cfg, "cifar10") == 37


def test_the_main_searchs_choice_is_capped_for_ulira():
    """A choice made under the main cap (37) has its epoch counts moved under U-LiRA's 19;
    every other value stays."""
    from unlearnbench import search

    chosen = {"epochs": 30, "fine_epochs": 25, "reset_epoch": 3, "lr": 0.05, "weight_decay": 1e-3, "batch_size": 128,
              "fine_lr": 2e-3, "fine_weight_decay": 1e-4, "noise_ratio": 0.4, "origin_noise": 0.2}
    capped = search.within_cap(rni.search_space, chosen, 19)
    assert capped == {**chosen, "epochs": 19, "fine_epochs": 19}
    assert search.within_cap(rni.search_space, {**chosen, "epochs": 10}, 19) == {**chosen, "epochs": 10,
                                                                                  "fine_epochs": 19}


# ----------------------------------------------------------------------------- U-LiRA shadow initialisation


@pytest.mark.parametrize("shared", [True, False])
def test_shadow_models_share_their_initialisation(shared, tmp_path, monkeypatch):
    """The reference loads model seed 0 for every shadow model: the originals and
    retrained models of both forget sets of a split start from the same weights, those
    of models.build(seed=0). With shared_init false each (split, forget set) has its own."""
    from unlearnbench.jobs import ulira as ulira_jobs

    ulira_jobs.write_design("digits", tmp_path / "splits.npz", 2, 2)
    ctx = ulira_jobs.ShadowContext("digits", tmp_path / "splits.npz", device="cpu", threads=1)
    starts = []

    def no_training(net, data, recipe, generator, precision, desc=""):
        starts.append((desc, {k: v.clone() for k, v in net.state_dict().items()}))
        return 0.0

    monkeypatch.setattr(ulira_jobs, "train", no_training)
    ulira_jobs.train_shadow_split(ctx, "smallcnn", 1, {"epochs": 1}, tmp_path / "o.npz", tmp_path / "r.npz",
                                  tmp_path / "w.safetensors", shared_init=shared)
    assert [d for d, _ in starts] == [f"{k} split 1 forget set {f}" for f in (0, 1) for k in ("original", "retrained")]
    seed0 = models.build("smallcnn", ctx.spec.num_classes, ctx.spec.image_size, seed=0).state_dict()

    def same(a, b):
        return all(torch.equal(a[k], b[k]) for k in a)

    (_, o0), (_, r0), (_, o1), (_, r1) = starts
    assert same(o0, r0) and same(o1, r1)  # original and retrained of one forget set: one start
    assert same(o0, o1) == shared and same(o0, seed0) == shared


# ----------------------------------------------------------------------------- NG+ (neggradplus.py)


def test_ngplus_replays_the_epochs_forget_pass(monkeypatch):
    """zip(retain_loader, cycle(forget_loader)): 24 retain and 8 forget examples in
    batches of 4 give 6 steps per epoch; the forget batches of steps 3..5 are those of
    steps 1..3 again, in order (no reshuffle within an epoch)."""
    from unlearnbench.methods import ngplus

    forget = split(8, 2)
    forget.labels = torch.arange(8) + 100  # labels that tell the forget batches apart (the loss below ignores them)
    seen = []
    monkeypatch.setattr(ngplus.F, "cross_entropy", lambda z, y: (seen.append(y.clone()), z.sum() * 0)[1])
    splits = {"retain": split(24, 1), "forget": forget, "val": split(8, 3)}
    data = UnlearnData.restricted("ngplus", methods.get("ngplus").READS, splits, C)
    hp = methods.hyperparameters("ngplus", {"epochs": 2, "batch_size": 4})
    ngplus.unlearn(models.build("smallcnn", C, seed=0), data, hp, torch.Generator().manual_seed(0))
    forget_seen = [tuple(y.tolist()) for y in seen if y.min() >= 100]
    assert len(forget_seen) == 12
    first, second = forget_seen[:6], forget_seen[6:]
    assert first[2:] == first[:2] * 2 and second[2:] == second[:2] * 2
    assert sorted(sum(first[:2], ())) == list(range(100, 108))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_attack_job_uses_the_reference_procedure_for_correctness_without_holdout(tmp_path):
    from unlearnbench.attacks import ulira_files
    from unlearnbench.jobs import ulira_attack as ulira_jobs

    d = ulira.make_design(240, np.random.default_rng(0).integers(0, 4, 240), 4, 2, forget_fraction=0.2)
    d.save(tmp_path / "splits.npz", dataset=np.array("digits"))
    logits = np.random.default_rng(2).normal(0, 1, (4, 2, d.n_pool, 4))
    paths = []
    for k in range(4):
        paths.append(tmp_path / f"split{k}.npz")
        ulira_files.write_bank(paths[-1], logits[k], np.zeros((2, len(d.val), 4)), [1.0, 1.0], {"split": k})
    values = ulira.statistic(logits.astype(np.float16), d.labels, "correctness")
    for holdout, expected in ((False, ulira.score_reference(values, d)), (True, ulira.score(values, d, 32))):
        metrics = ulira_jobs.attack_job(tmp_path / "splits.npz", paths, "ft", tmp_path / "s.npz", tmp_path / "s.json",
                                        statistic="correctness", holdout=holdout)
        got = ulira_files.read_scores(tmp_path / "s.npz")
        np.testing.assert_array_equal(got["label"], expected.label)
        np.testing.assert_array_equal(got["p"], expected.p)
        assert (metrics["n_never_seen"] == 0) != holdout


def test_ulira_search_studies_share_one_sampler_seed(tmp_path, monkeypatch):
    """Every reference U-LiRA study is seeded with model seed 0 (NSGAIIISampler(seed=0))."""
    from unlearnbench.config import SearchSettings
    from unlearnbench.jobs import search as search_jobs
    from unlearnbench.jobs import ulira as ulira_jobs

    ulira_jobs.write_design("digits", tmp_path / "splits.npz", 2, 1)
    ctx = ulira_jobs.ShadowContext("digits", tmp_path / "splits.npz", device="cpu", threads=1)
    monkeypatch.setattr(ulira_jobs, "train", lambda *args, **kwargs: 0.0)
    seeds = []

    class Stop(Exception):
        pass

    def capture(objective, space, n_trials, storage_path, study_name, sampler_seed, *args, **kwargs):
        seeds.append(sampler_seed)
        raise Stop

    monkeypatch.setattr(search_jobs, "run_study", capture)
    for k in (0, 1):
        ulira_jobs.train_shadow_split(ctx, "smallcnn", k, {"epochs": 1}, tmp_path / f"o{k}.npz",
                                      tmp_path / f"r{k}.npz", tmp_path / f"w{k}.safetensors")
        with pytest.raises(Stop):
            ulira_jobs.search_job(ctx, "smallcnn", "ft", k, SearchSettings(3, 2, {}), tmp_path / f"w{k}.safetensors",
                                  tmp_path / f"r{k}.npz", tmp_path / f"s{k}.csv", progress=False)
    assert seeds == [0, 0]


def test_the_first_trials_of_a_study_do_not_depend_on_its_budget(tmp_path):
    """The reference ran 200 trials and chose among the first 100 complete ones: a study
    of 100 trials holds exactly those, so configs/paper.yaml runs 100. The budgets here
    (55 and 75) reach past NSGA-III's random first generation (population 50), where the
    sampler breeds from the trials' values; a failed evaluation (infinite objectives,
    docs/reference.md S2) counts in both alike."""
    from unlearnbench import config, search

    def space(trial, epoch_cap):
        return {"lr": trial.suggest_float("lr", 1e-5, 1e-1, log=True), "epochs": trial.suggest_int("epochs", 1, epoch_cap)}

    def objective(hp, trial):
        if trial.number % 17 == 3:
            raise search.EvaluationFailed("diverged")
        return (hp["lr"], 1.0 / hp["epochs"], abs(hp["lr"] - 0.01), 0.5)

    def params(n, name):
        study = search.run_study(objective, space, n, tmp_path / f"{name}.journal", "s", 0, 5, progress=False,
                                 log=lambda m: None)
        return [t.params for t in sorted(study.trials, key=lambda t: t.number)]

    short, long = params(55, "short"), params(75, "long")
    assert len(short) == 55 and long[:55] == short
    cfg = config.validate_ulira(config.load(REPO / "configs" / "paper.yaml"))
    assert cfg["ulira"]["search_trials"] == 100


# ----------------------------------------------------------------------------- CT (kgltop5.py)


def test_ct_is_the_reference_loop():
    """kgltop5: every Conv2d weight replaced by weight.swapaxes(2, 3), then E epochs of CE
    on the retain set in train mode, SGD, CosineAnnealingLR(T_max=E) stepped per epoch.
    The transcription draws the same batches (the project's generator) as the project."""
    import copy

    import torch.nn.functional as F

    hp = methods.hyperparameters("ct", {"epochs": 3, "batch_size": 8, "lr": 0.05})
    model = models.build("smallcnn", C, seed=0)
    reference = copy.deepcopy(model)
    data = data_for("ct")
    methods.get("ct").unlearn(model, data, hp, torch.Generator().manual_seed(4))

    for module in reference.modules():
        if isinstance(module, nn.Conv2d):
            module.weight = nn.Parameter(module.weight.swapaxes(2, 3))
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=3)
    reference.train()
    g = torch.Generator().manual_seed(4)
    for _ in range(3):
        for x, y in data.retain.batches(8, shuffle=True, generator=g):
            optimizer.zero_grad()
            F.cross_entropy(reference(x), y).backward()
            optimizer.step()
        scheduler.step()
    for (name, a), b in zip(model.state_dict().items(), reference.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_searched_momentum_is_pinned_at_0_9_as_in_the_reference(monkeypatch, tiny_splits):
    """docs/reference.md P5: the reference's suggest_momentum draws from [0.9, 0.9], so
    the second optimisers' momentum it lists as searched (FCS's retain and forget, KDE's
    retain, RNI's fine-tuning) is 0.9 in every trial, their default here; SalUn's is 0.9
    in the search and 0 (its default) outside it. Checked where it acts: every SGD
    optimiser the method builds in a searched run gets momentum 0.9, and SalUn's run
    with its defaults gets 0."""
    import optuna
    import torch

    built = []
    real = torch.optim.SGD.__init__

    def spy(self, params, *args, **kwargs):
        built.append(kwargs.get("momentum", args[1] if len(args) > 1 else 0.0))
        real(self, params, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "__init__", spy)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    splits = tiny_splits
    for seed in range(2):
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
        for name in ("fcs", "kde", "rni", "salun"):
            hp = methods.get(name).search_space(study.ask(), 1)
            built.clear()
            model = models.build("smallcnn", 10, 32, seed=0)
            methods.run(name, model, splits, 10, hp, torch.Generator().manual_seed(seed))
            assert built and all(m == 0.9 for m in built), (name, built)
    built.clear()
    methods.run("salun", models.build("smallcnn", 10, 32, seed=0), splits, 10, {"epochs": 1},
                torch.Generator().manual_seed(0))
    assert built and all(m == 0.0 for m in built) and methods.get("salun").DEFAULTS["momentum"] == 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_population_mia_is_the_references_cross_validated_logistic_regression(seed):
    """The reference scores its MIA with scikit-learn's cross_val_score (logistic
    regression on the loss, StratifiedShuffleSplit(10, 0.1, random_state=123), accuracy);
    the fold-by-fold loop of attacks/mia.py gives the same number, bit for bit."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedShuffleSplit, cross_val_score

    from unlearnbench.attacks.mia import MIA_SEED, mia_accuracy

    rng = np.random.default_rng(seed)
    members, nonmembers = rng.exponential(0.1, 123), rng.exponential(0.1 + 0.05 * seed, 250)
    again = np.random.default_rng(MIA_SEED)  # the shuffles and truncation mia_accuracy does
    m, n = again.permutation(members), again.permutation(nonmembers)
    x = np.concatenate([m, n[:len(m)]])[:, None]
    y = np.concatenate([np.ones(len(m)), np.zeros(len(m))]).astype(np.int64)
    cv = StratifiedShuffleSplit(n_splits=10, test_size=0.1, random_state=MIA_SEED)
    want = float(cross_val_score(LogisticRegression(), x, y, cv=cv, scoring="accuracy").mean())
    assert mia_accuracy(members, nonmembers) == want
