"""Every registered method on every registry model: the contract of docs/methods.md."""

from __future__ import annotations

import pytest
import torch

from unlearnbench import methods, models
from unlearnbench.batches import Split
from unlearnbench.methods import DataAccessError

from conftest import tiny_split

ALL = methods.names()
PAPER = ["ft", "ga", "srl", "ngplus", "scrub", "bt", "salun", "ff", "iu", "cfk", "euk", "fcs", "msg", "cfw",
         "prmq", "ct", "kde", "rni"]
BEYOND = ["aru", "bs", "l1sparse", "ssd", "unsir"]  # docs/methods.md#beyond-the-paper


def tiny_hp(name: str) -> dict:
    """The method's defaults shrunk so a run takes a moment: one epoch, small batches."""
    hp = {}
    for key, value in methods.get(name).DEFAULTS.items():
        if key == "epochs" or key.endswith("_epochs"):
            hp[key] = type(value)(1) if key != "reset_epoch" else value
        elif key.endswith("batch_size"):
            hp[key] = 8
    if name == "rni":
        hp.update(epochs=2, fine_epochs=1, reset_epoch=1)
    if name == "ssd":  # on 36 random images no entry's forget importance is 10 x the full data's
        hp.update(alpha=0.5)
    return hp


class Guarded(Split):
    """A split that records every read of its images or labels."""

    def __init__(self, split: Split, name: str, log: set):
        super().__init__(split.images, split.labels, split.spec)
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_log", log)

    def __getattribute__(self, attr):
        if attr in ("images", "labels", "batches", "subset"):
            object.__getattribute__(self, "_log").add(object.__getattribute__(self, "_name"))
        return object.__getattribute__(self, attr)


def splits_for_test(seed: int = 0, name: str | None = None) -> dict[str, Split]:
    """Random tiny splits; for a method not defined for the random scenario (a class-wise
    one), the forget set is class 0 and the retain set holds the other classes."""
    splits = {"retain": tiny_split(24, seed + 1), "forget": tiny_split(12, seed + 2), "val": tiny_split(12, seed + 3),
              "test": tiny_split(12, seed + 4)}
    if name is not None and not methods.applies(name, "random"):
        retain, forget = splits["retain"], splits["forget"]
        splits["forget"] = Split(forget.images, torch.zeros_like(forget.labels), forget.spec)
        splits["retain"] = Split(retain.images, 1 + retain.labels % 9, retain.spec)
    return splits


def test_registry_holds_the_papers_eighteen_in_order_then_the_others():
    assert list(methods.PAPER_METHODS) == PAPER and ALL[:18] == PAPER
    assert set(BEYOND) <= set(ALL[18:]) and ALL[18:] == sorted(ALL[18:])
    assert [methods.in_paper(n) for n in ("ft", "rni", "ssd", "unsir")] == [True, True, False, False]
    assert {methods.label(n) for n in ("ngplus", "salun", "cfk", "euk")} == {"NG+", "SalUn", "CF-k", "EU-k"}
    assert [methods.info(n).label for n in BEYOND] == ["ARU", "BS", "ℓ1-sparse", "SSD", "UNSIR"]
    # tables and figures print a mark after a method beyond the paper, with a legend line
    assert [methods.label(n) for n in ("ft", "ssd", "l1sparse", "retrained")] == ["FT", "SSD†", "ℓ1-sparse†",
                                                                                 "retrained"]
    assert methods.legend(["ft", "retrained"]) == [] and methods.legend(["ft", "ssd"]) == [methods.LEGEND]


def test_scenarios_literal_decides_where_a_method_applies():
    """UNSIR and BS are class-wise (SCENARIOS in their source); a module without the
    literal applies everywhere; the reason names the scenarios; a wrong kind is an error."""
    for name in ("unsir", "bs"):
        assert methods.info(name).scenarios == ("class", "subclass")
        assert [methods.applies(name, s) for s in ("random", "class", "subclass", "poison")] == [False, True, True,
                                                                                                False]
        assert methods.not_applicable_reason(name, "class") is None
    assert methods.not_applicable_reason("unsir", "random") == (
        "UNSIR is a class-wise method: defined for the class and subclass scenarios")
    assert all(methods.applies(n, s) for n in ("ft", "ssd", "aru", "l1sparse") for s in methods.SCENARIO_KINDS)
    with pytest.raises(ValueError, match="unknown scenario 'classes'.*random, class, subclass"):
        methods.applies("ft", "classes")


@pytest.mark.parametrize(
    "name, reads",
    [("ct", {"retain"}), ("ft", {"retain"}), ("cfk", {"retain"}), ("euk", {"retain"}), ("cfw", {"retain"}),
     ("prmq", {"retain"}), ("rni", {"retain"}), ("ff", {"retain"}), ("ga", {"forget"}),
     ("kde", {"retain", "val"})],
)
def test_declared_data_access(name, reads):
    assert set(methods.get(name).READS) == reads


def test_only_kde_and_scrub_read_validation_data():
    """docs/methods.md: KDE is the only method that trains on D_v; SCRUB reads D_v only to
    measure the error its rewinding rule compares against."""
    assert [n for n in ALL if "val" in methods.get(n).READS] == ["scrub", "kde"]


@pytest.mark.parametrize("name", ALL)
def test_method_reads_only_its_splits(name):
    """Run the method on guarded splits: the splits it is not listed with are never
    handed to it, and asking for one raises."""
    log: set = set()
    splits = {k: Guarded(v, k, log) for k, v in splits_for_test(name=name).items()}
    net = models.build("smallcnn", 10, seed=0)
    methods.run(name, net, splits, 10, tiny_hp(name), torch.Generator().manual_seed(0))
    assert log <= set(methods.get(name).READS), f"{name} read {log - set(methods.get(name).READS)}"
    data = methods.UnlearnData.restricted(name, methods.get(name).READS, splits_for_test(name=name), 10)
    for split in {"retain", "forget", "val"} - set(methods.get(name).READS):
        with pytest.raises(DataAccessError, match=split):
            getattr(data, split)


def _state(net):
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


@pytest.mark.parametrize("model", models.MODEL_NAMES)
@pytest.mark.parametrize("name", ALL)
def test_method_runs_keeps_keys_and_changes_weights(name, model):
    original = models.build(model, 10, seed=0)
    before = _state(original)
    net, seconds = methods.run(name, original, splits_for_test(name=name), 10, tiny_hp(name), torch.Generator().manual_seed(0))
    after = _state(net)
    assert list(after) == list(before), "state-dict keys changed"
    assert seconds > 0
    changed = [k for k in before if before[k].is_floating_point() and not torch.equal(before[k], after[k])]
    assert changed, f"{name} left every weight of {model} unchanged"
    assert all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())


@pytest.mark.parametrize("name", ALL)
def test_method_is_deterministic_for_a_fixed_seed(name):
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        net, _ = methods.run(name, models.build("smallcnn", 10, seed=0), splits_for_test(name=name), 10, tiny_hp(name),
                             torch.Generator().manual_seed(5))
        runs.append(_state(net))
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


@pytest.mark.parametrize("name", ALL)
def test_bf16_precision_runs_the_method_under_autocast(name):
    """precision bf16 on CPU: the method's convolutions compute in bf16 (IU's in fp32),
    its weights stay fp32 and finite; fp32 (the default) leaves every convolution in fp32."""
    seen = {}
    for precision in ("fp32", "bf16"):
        dtypes = set()
        net = models.build("smallcnn", 10, seed=0)
        hook = torch.nn.modules.module.register_module_forward_hook(
            lambda mod, inp, out: dtypes.add(out.dtype) if isinstance(mod, torch.nn.Conv2d) else None)
        try:
            out, _ = methods.run(name, net, splits_for_test(name=name), 10, tiny_hp(name), torch.Generator().manual_seed(0),
                                 precision)
        finally:
            hook.remove()
        assert all(v.dtype == torch.float32 and torch.isfinite(v).all()
                   for v in out.state_dict().values() if v.is_floating_point())
        seen[precision] = dtypes
    assert seen["fp32"] <= {torch.float32}
    if name == "iu":  # IU sums a thousand rank-one terms: fp32 whatever the precision
        assert seen["bf16"] <= {torch.float32}
    elif seen["bf16"]:  # methods that run the network at all (every one but a pure weight edit)
        assert torch.bfloat16 in seen["bf16"], seen["bf16"]


@pytest.mark.parametrize("name", ALL)
def test_search_space_keys_are_hyperparameters(name):
    import optuna

    trial = optuna.trial.FixedTrial({})  # not used: inspect the space through a real study
    study = optuna.create_study(directions=["minimize"] * 4)
    trial = study.ask()
    space = methods.get(name).search_space(trial, 4)
    assert set(space) <= set(methods.get(name).DEFAULTS)
    assert 1 <= space.get("epochs", 1) <= 4


def test_unknown_hyperparameter_is_refused():
    with pytest.raises(KeyError, match="valid: batch_size, epochs, lr"):
        methods.hyperparameters("ft", {"epoch": 3})


def test_unknown_method_lists_valid_names():
    with pytest.raises(KeyError, match="valid: ft, ga, srl"):
        methods.get("magic")
