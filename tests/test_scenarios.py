"""Forgetting scenarios (src/unlearnbench/scenarios.py): builders, success metrics and
memorisation on synthetic cases with known answers, the pool hook, and config checks."""

import copy
import json
import re

import numpy as np
import pandas as pd
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


def test_a_forget_set_too_small_for_the_mia_fails_naming_its_parameter():
    labels = np.arange(300) % 100
    base = {"retain": np.arange(0, 180), "forget": np.arange(180, 200), "val": np.arange(200, 250),
            "test": np.arange(250, 300)}
    arrays = data.build(scenarios.complete({"kind": "subclass", "member": 52}), "cifar100", base, labels)
    with pytest.raises(scenarios.ScenarioError, match=r"^member: the subclass scenario's forget set on cifar100 "
                                                      r"holds 2 examples, under the 10"):
        data.check_forget_size(arrays)
    data.check_forget_size(built("random", {**base, "forget": base["forget"][:3]}))  # the random split's own


def test_memorised_and_typical_take_the_extremes(base):
    memo = np.full(250, np.nan)
    d = np.union1d(base["retain"], base["forget"])
    memo[d] = np.arange(len(d), dtype=float)  # the i-th example of D memorised i
    top = built("memorised", base, memo, stratum=0.25, size=10)
    low = built("typical", base, memo, stratum=0.25, size=10)
    assert (memo[top["forget"]] >= len(d) - 42).all() and len(top["forget"]) == 10  # top round(0.25 x 170) = 42
    assert (memo[low["forget"]] < 42).all()
    check_partition(top, base)
    rum = built("memorised", base, memo, size=10)  # RUM's: exactly the 10 most memorised
    assert sorted(memo[rum["forget"]]) == list(range(len(d) - 10, len(d)))
    assert sorted(memo[built("typical", base, memo)["forget"]]) == list(range(20))  # the random forget size
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
    ({"kind": "class", "hyperparameters": "borrow"}, "scenarios[0].hyperparameters"),
    ({"kind": "class", "hyperparameters": 3}, "scenarios.0.hyperparameters"),  # the schema's type check
])
def test_bad_scenarios_are_rejected_naming_the_key(entry, key):
    with pytest.raises(ub_config.ConfigError, match="config error at " + re.escape(key)):
        ub_config.validate(_config([entry], ulira={"enabled": False, "dataset": "mnist"}))


def test_scenarios_default_to_random_and_complete_their_defaults():
    cfg = ub_config.validate({"datasets": ["digits"]})
    assert [e["kind"] for e in cfg["scenarios"]] == ["random"]
    cfg = ub_config.validate(_config([{"kind": "poison", "share": 0.2}]))
    assert cfg["scenarios"][0]["params"] == {**scenarios.DEFAULTS["poison"], "share": 0.2}
    assert cfg["scenarios"][0]["hyperparameters"] == "own"
    again = ub_config.validate(copy.deepcopy(cfg))  # a completed config validates to itself
    assert again["scenarios"] == cfg["scenarios"]


def test_own_searches_every_applicable_method_and_random_borrows_the_rest():
    """`hyperparameters: own` searches each method that applies on the scenario; `random`
    borrows the random scenario's choice, searching only what it does not run (bs, class-wise);
    without a search, neither searches nor borrows."""
    cfg = ub_config.validate(_config([{"kind": "random"}, {"kind": "class", "name": "own"},
                                      {"kind": "class", "name": "borrowing", "hyperparameters": "random"},
                                      {"kind": "poison", "hyperparameters": "random"}],
                                     methods=["ft", "bs", "ga"], search={"trials": 2}))
    own, borrowing, poison = ub_config.scenario_entries(cfg)
    assert ub_config.scenario_searched(cfg, own) == ["ft", "bs", "ga"] and ub_config.scenario_borrowed(cfg, own) == []
    assert ub_config.scenario_searched(cfg, borrowing) == ["bs"]
    assert ub_config.scenario_borrowed(cfg, borrowing) == ["ft", "ga"]
    assert ub_config.scenario_searched(cfg, poison) == [] and ub_config.scenario_borrowed(cfg, poison) == ["ft", "ga"]
    cfg["search"]["trials"] = 0
    assert ub_config.scenario_searched(cfg, own) == [] == ub_config.scenario_borrowed(cfg, borrowing)


def test_hp_scenario_names_whose_hyperparameters_a_row_used():
    from unlearnbench.jobs.scenario import hp_scenario

    searched, best = {"bs": object()}, {"ft": "results/digits/smallcnn/search/ft/best.json"}
    assert hp_scenario("class", "bs", searched, best, "random") == "class"  # searched here
    assert hp_scenario("class", "ft", searched, best, "random") == "random"  # borrowed
    # no search: the config's, under the scenario the entry's key names
    assert hp_scenario("class", "ft", {}, {}, "own") == "class"
    assert hp_scenario("class", "ft", {}, {}, "random") == "random"


# ----------------------------------------------------------------------------- tables


def _rows(scenario, values, na=()):
    """metrics.csv rows of one scenario: method -> (RA, FA, TA, forget-class acc)."""
    rows = []
    for method, (ra, fa, ta, fc) in values.items():
        applicable = method not in na
        rows.append({"scenario": scenario, "dataset": "digits", "model": "smallcnn", "method": method, "seed": 0,
                     "retain_acc": ra if applicable else np.nan, "forget_acc": fa if applicable else np.nan,
                     "test_acc": ta if applicable else np.nan, "forget_class_acc": fc if applicable else np.nan,
                     "diverged": False, "applicable": applicable, "na_reason": None if applicable else "class only",
                     "hp_source": "config", "hp_scenario": "random"})
    return rows


def test_gap_ranks_within_a_scenario_and_kendall_compares_them():
    from unlearnbench.report import scenarios as report

    ref = {"retrained": (1.0, 0.0, 0.9, 0.0), "original": (1.0, 1.0, 0.9, 1.0)}
    a = _rows("class", {**ref, "ft": (1.0, 0.4, 0.9, 0.4), "ga": (0.8, 0.0, 0.7, 0.0),
                        "ct": (1.0, 0.1, 0.9, 0.1), "x": (0, 0, 0, 0)}, na=("x",))
    b = _rows("random", {**ref, "ft": (1.0, 0.9, 0.9, np.nan), "ga": (1.0, 0.0, 0.9, np.nan),
                         "ct": (1.0, 0.5, 0.9, np.nan), "x": (1.0, 0.2, 0.9, np.nan)})
    table = report.summary(pd.DataFrame(a + b)).set_index(["scenario", "method"])
    # class: Gap over RA, FA, TA, forget-class acc; ft 0.4 and 0.4 off -> 0.2
    assert table.loc[("class", "ft"), "Gap"] == pytest.approx(0.2)
    assert table.loc[("class", "ga"), "Gap"] == pytest.approx((0.2 + 0.2) / 4)
    assert table.loc[("class", "ct"), "Gap"] == pytest.approx(0.05)
    assert [table.loc[("class", m), "rank"] for m in ("ct", "ga", "ft")] == [1, 2, 3]
    assert np.isnan(table.loc[("class", "x"), "rank"]) and not table.loc[("class", "x"), "applicable"]
    assert table.loc[("class", "x"), "na_reason"] == "class only"
    assert np.isnan(table.loc[("class", "retrained"), "rank"])  # references are not ranked
    # random: Gap over RA, FA, TA only; ga 1st, x 2nd, ct 3rd, ft 4th
    assert [table.loc[("random", m), "rank"] for m in ("ga", "x", "ct", "ft")] == [1, 2, 3, 4]
    tau = report.kendall(table.reset_index())
    row = tau.iloc[0]
    assert row["n_methods"] == 3  # x is n/a in class: left out
    # ranks over (ct, ga, ft): class 1, 2, 3; random 2, 1, 3 -> one discordant pair of three
    assert row["tau"] == pytest.approx(1 / 3)


def test_not_applicable_rows_reach_metrics_csv_without_numbers(tmp_path):
    from unlearnbench import scores
    from unlearnbench.jobs.scenario import not_applicable

    path = tmp_path / "results/scenarios/class/digits/smallcnn/metrics/ft/seed0.json"
    path.parent.mkdir(parents=True)
    not_applicable("ft", "needs a class", path)
    frame = scores.collect_metrics([path], tmp_path / "metrics.csv")
    row = frame.iloc[0]
    assert row["scenario"] == "class" and row["method"] == "ft" and not row["applicable"]
    assert row["na_reason"] == "needs a class" and np.isnan(row["retain_acc"])
    assert scores.read_metrics(tmp_path / "metrics.csv").empty  # the paper's tables: random only
    assert len(scores.read_metrics(tmp_path / "metrics.csv", applicable_only=False, scenario=None)) == 1


# ----------------------------------------------------------------------------- workflow


def _scenario_jobs(dry_run: str) -> dict:
    """From a dry run's output: per scenario job, its input line and runtime resource."""
    jobs = {}
    for block in dry_run.split("rule scenario:")[1:]:
        name = re.search(r"wildcards: scenario=([^,]+)", block)[1]
        jobs[name] = {"input": re.search(r"input: (.*)", block)[1],
                      "runtime": int(re.search(r"runtime=(\d+)", block)[1])}
    return jobs


@pytest.mark.workflow
def test_scenarios_workflow_on_a_tiny_config(tmp_path):
    """Every digits scenario through the references, a method and the tables: the success
    metrics' known directions, one split file per scenario recorded in provenance; the
    scenarios with `hyperparameters: own` (class, memorised) search ft on themselves, poison
    (`random`) borrows the random scenario's choice."""
    from conftest import copy_workflow, snakemake, write_config

    from unlearnbench import catalog

    work = copy_workflow(tmp_path / "wf")
    settings = dict(models=["smallcnn"], seeds=[0], methods=["ft", "bs"], device="cpu",
                    training={"digits": {"epochs": 6, "batch_size": 128, "image_size": 16, "weight_decay": 0.0}},
                    method_params={"ft": {"epochs": 1}},
                    ulira={"enabled": False, "splits": 2, "forget_sets": 1, "epochs": 1, "forget_fraction": 0.5,
                           "methods": ["ft"]},
                    scenarios=[{"kind": "random"}, {"kind": "class", "class": 3},
                               {"kind": "poison", "hyperparameters": "random"}, {"kind": "memorised", "size": 20}])
    # a dry run with a larger budget: an `own` scenario needs no best.json and its runtime
    # counts the trials it searches (ft and bs, 30 each), a borrowing one needs ft's best.json
    write_config(work / "dry.yaml", **settings, search={"trials": 30, "seeds": [0]})
    dry = _scenario_jobs(snakemake(work, "-n", "--configfile", "dry.yaml", "--forcerun", "scenario").stdout)
    unit = 20 * catalog.DATASETS["digits"].cost * catalog.MODELS["smallcnn"].cost  # STAGE_MINUTES["unlearn"]
    assert "best.json" not in dry["class"]["input"] and dry["class"]["runtime"] == max(10, int(unit * (4 + 60)))
    assert "results/digits/smallcnn/search/ft/best.json" in dry["poison"]["input"]
    assert "search/bs/best.json" not in dry["poison"]["input"] and dry["poison"]["runtime"] == max(10, int(unit * 4))
    write_config(work / "tiny.yaml", **settings, search={"trials": 1, "seeds": [0]})
    snakemake(work, "--cores", "2", "--configfile", "tiny.yaml")
    metrics = pd.read_csv(work / "results/metrics.csv").set_index(["scenario", "method"])
    assert set(metrics.index.get_level_values("scenario")) == {"random", "class", "poison", "memorised"}
    assert metrics.loc[("class", "retrained"), "forget_class_acc"] <= 0.05  # never saw class 3
    assert metrics.loc[("class", "original"), "forget_class_acc"] > 0.5
    assert metrics.loc[("poison", "original"), "attack_success"] > metrics.loc[("poison", "retrained"),
                                                                               "attack_success"]
    # own: searched on the scenario itself; random: the random scenario's choice
    scen = work / "results/scenarios"
    for name in ("class", "memorised"):
        assert metrics.loc[(name, "ft"), ["hp_source", "hp_scenario"]].tolist() == ["search", name]
        assert (scen / name / "digits/smallcnn/search/ft/seed0.csv").exists()
        assert (scen / name / "digits/smallcnn/search/ft/best_seed0.json").exists()
    assert metrics.loc[("poison", "ft"), ["hp_source", "hp_scenario"]].tolist() == ["search", "random"]
    assert not (scen / "poison/digits/smallcnn/search").exists()
    assert "searched here" in (work / "results/tables/scenarios/class.md").read_text()
    poison_table = (work / "results/tables/scenarios/poison.md").read_text()
    assert "random's search" in poison_table and "searched here" not in poison_table
    # BS, class-wise: n/a where the forget set is not a class, searched on the class scenario itself
    assert not metrics.loc[("random", "bs"), "applicable"] and not metrics.loc[("poison", "bs"), "applicable"]
    assert metrics.loc[("class", "bs"), ["hp_source", "hp_scenario"]].tolist() == ["search", "class"]
    assert (work / "results/scenarios/class/digits/smallcnn/search/bs/best_seed0.json").exists()
    split = data.info_of(np.load(work / "results/scenarios/memorised/digits/splits.npz"))
    assert split["sizes"]["forget"] == 20 and split["forget_memorisation_mean"] > split["d_memorisation_mean"]
    provenance = json.loads((work / "results/provenance.json").read_text())
    assert {s["name"] for s in provenance["scenarios"]} == {"class", "poison", "memorised"}
    for name in ("random", "class", "poison", "memorised"):
        assert (work / f"results/tables/scenarios/{name}.md").exists()
        assert (work / f"figures/scenarios/{name}.png").exists()
    assert (work / "results/tables/scenario_rankings.md").exists() and (work / "figures/scenario_rankings.png").exists()
    # the paper's tables stay on the random scenario
    assert "original" in pd.read_csv(work / "results/tables/main.csv")["method"].tolist()
