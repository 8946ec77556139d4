"""Forgetting scenarios (src/unlearnbench/scenarios.py): builders, success metrics and
memorisation on synthetic cases with known answers, the pool hook, and config checks."""

import copy
import re

import numpy as np
import pytest
import torch

from unlearnbench import config as ub_config
from unlearnbench import scenario_data as data
from unlearnbench import scenarios

N_CLASSES = 10


@pytest.fixture
def base():
    """A random split of a 200-example train part (labels i % 10) and a 50-example test part."""
    rng = np.random.default_rng(0)
    order = rng.permutation(200)
    return {"retain": np.sort(order[:150]), "forget": np.sort(order[150:170]), "val": np.sort(order[170:]),
            "test": np.arange(200, 250)}


LABELS = np.arange(250) % N_CLASSES


def built(kind, base, memorisation=None, **params):
    return data.build(scenarios.complete({"kind": kind, **params}), "digits", base, LABELS, memorisation)


def check_partition(arrays, base):
    d = np.union1d(base["retain"], base["forget"])
    assert np.array_equal(np.union1d(arrays["retain"], arrays["forget"]), d)
    assert not np.intersect1d(arrays["retain"], arrays["forget"]).size
    assert np.array_equal(arrays["val"], base["val"]) and np.array_equal(arrays["test"], base["test"])


def test_random_is_the_base_split(base):
    arrays = built("random", base)
    for k in ("retain", "forget", "val", "test"):
        assert np.array_equal(arrays[k], base[k])


def test_class_forgets_exactly_that_class(base):
    arrays = built("class", base, **{"class": 3})
    check_partition(arrays, base)
    d = np.union1d(base["retain"], base["forget"])
    assert np.array_equal(arrays["forget"], d[LABELS[d] == 3])
    assert (LABELS[arrays["retain"]] != 3).all()
    assert data.info_of(arrays)["params"] == {"class": 3}


def test_poison_draws_the_share_outside_the_target_and_relabels(base):
    arrays = built("poison", base, share=0.1, target=2)
    check_partition(arrays, base)
    assert len(arrays["forget"]) == 17  # round(0.1 x 170)
    assert (LABELS[arrays["forget"]] != 2).all()
    assert np.array_equal(arrays["trigger_index"], arrays["forget"])
    assert (arrays["relabel_label"] == 2).all()


def test_confusion_swaps_the_share_of_each_class(base):
    arrays = built("confusion", base, pair=[1, 7], share=0.5)
    check_partition(arrays, base)
    d = np.union1d(base["retain"], base["forget"])
    for c, other in ((1, 7), (7, 1)):
        members = d[LABELS[d] == c]
        mine = np.isin(arrays["relabel_index"], members)
        assert mine.sum() == len(members) // 2
        assert (arrays["relabel_label"][mine] == other).all()
    assert np.array_equal(arrays["forget"], arrays["relabel_index"])


def test_subclass_forgets_the_member_and_maps_to_superclasses():
    labels = np.arange(300) % 100
    base = {"retain": np.arange(0, 180), "forget": np.arange(180, 200), "val": np.arange(200, 250),
            "test": np.arange(250, 300)}
    entry = scenarios.complete({"kind": "subclass", "member": 52})
    arrays = data.build(entry, "cifar100", base, labels)
    assert (labels[arrays["forget"]] == 52).all() and len(arrays["forget"]) == 2
    assert np.array_equal(arrays["test_member"], [252])
    assert arrays["label_map"][2] == 14  # baby -> people
    images = torch.zeros(300, 3, 8, 8, dtype=torch.uint8)
    _, mapped, classes = data.apply_to_pool(images, torch.as_tensor(labels), arrays)
    assert classes == 20 and mapped[2] == 14 and mapped[69] == 19


def test_memorised_and_typical_take_the_extremes(base):
    memo = np.full(250, np.nan)
    d = np.union1d(base["retain"], base["forget"])
    memo[d] = np.arange(len(d), dtype=float)  # the i-th example of D memorised i
    top = built("memorised", base, memo, stratum=0.25, size=10)
    low = built("typical", base, memo, stratum=0.25, size=10)
    assert (memo[top["forget"]] >= len(d) - 42).all() and len(top["forget"]) == 10  # top round(0.25 x 170) = 42
    assert (memo[low["forget"]] < 42).all()
    check_partition(top, base)
    with pytest.raises(scenarios.ScenarioError, match="size"):
        built("memorised", base, memo, stratum=0.01, size=10)


def test_memorisation_is_the_in_out_gap():
    in_mask = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], dtype=bool)
    conf = np.array([[0.9, 0.2], [0.5, 0.8], [0.7, 0.6], [0.3, 0.4]])
    memo = data.memorisation(in_mask, conf)
    assert memo == pytest.approx([0.8 - 0.4, 0.7 - 0.3])
    assert np.isnan(data.memorisation(np.ones((2, 1), bool), np.ones((2, 1))))[0]


def test_correct_confidence_is_the_softmax_of_the_label():
    logits = np.log(np.array([[0.2, 0.8], [0.6, 0.4]]))
    assert data.correct_confidence(logits, np.array([1, 1])) == pytest.approx([0.8, 0.4])


def test_success_metrics_known_answers():
    labels = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 0])
    acc = data.class_accuracies(pred, labels, labels == 0)
    assert acc == {"forget_class_acc": 0.5, "other_classes_acc": 0.75}
    assert data.attack_success(np.array([0, 0, 0, 1, 0, 2]), labels, target=0) == 0.5  # 2 of 4 non-0
    assert data.pair_confusion(pred, labels, (0, 1)) == 0.25  # one 0 read as 1 of four 0/1 images


def test_trigger_is_a_white_bottom_right_patch():
    images = torch.zeros(2, 3, 16, 16, dtype=torch.uint8)
    out = data.add_trigger(images, 0.25)
    assert (out[:, :, 12:, 12:] == 255).all() and out.sum() == 2 * 3 * 16 * 255
    assert images.sum() == 0  # a copy


def test_apply_to_pool_relabels_and_triggers_only_the_listed(base):
    arrays = built("poison", base, share=0.1, target=2)
    images = torch.zeros(250, 3, 8, 8, dtype=torch.uint8)
    labels = torch.as_tensor(LABELS)
    new_images, new_labels, classes = data.apply_to_pool(images, labels, arrays)
    hit = torch.zeros(250, dtype=torch.bool)
    hit[torch.as_tensor(arrays["forget"])] = True
    assert classes is None
    assert (new_labels[hit] == 2).all() and torch.equal(new_labels[~hit], labels[~hit])
    assert (new_images[hit].flatten(1).amax(1) == 255).all() and new_images[~hit].sum() == 0


def _config(scenarios_list, **extra):
    cfg = {"datasets": ["digits"], "models": ["smallcnn"], "scenarios": scenarios_list, **extra}
    return cfg


@pytest.mark.parametrize("entry, key", [
    ({"kind": "forgotten"}, "scenarios[0].kind"),
    ({"kind": "class", "class": 12}, "scenarios[0].class"),
    ({"kind": "poison", "share": 0.0}, "scenarios[0].share"),
    ({"kind": "poison", "share": 1.0}, "scenarios[0].share"),
    ({"kind": "subclass"}, "scenarios[0].kind"),
    ({"kind": "confusion", "pair": [3, 3]}, "scenarios[0].pair"),
    ({"kind": "class", "share": 0.1}, "scenarios[0].share"),
    ({"kind": "memorised"}, "scenarios[0].kind"),  # no U-LiRA bank on mnist
])
def test_bad_scenarios_are_rejected_naming_the_key(entry, key):
    with pytest.raises(ub_config.ConfigError, match="config error at " + re.escape(key)):
        ub_config.validate(_config([entry], ulira={"enabled": False, "dataset": "mnist"}))


def test_scenarios_default_to_random_and_complete_their_defaults():
    cfg = ub_config.validate({"datasets": ["digits"]})
    assert [e["kind"] for e in cfg["scenarios"]] == ["random"]
    cfg = ub_config.validate(_config([{"kind": "poison", "share": 0.2}]))
    assert cfg["scenarios"][0]["params"] == {**scenarios.DEFAULTS["poison"], "share": 0.2}
    again = ub_config.validate(copy.deepcopy(cfg))  # a completed config validates to itself
    assert again["scenarios"] == cfg["scenarios"]
