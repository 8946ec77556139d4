"""Shipped configurations resolve to their protocol whatever config.yaml holds.

`snakemake --configfile configs/X.yaml` merges X.yaml over config.yaml key by key
(snakemake.utils.update_config, as Workflow.configfile does), then the workflow
validates the result (common.smk, ulira_common.smk). The tests below resolve every
file under configs/ that way, over the shipped config.yaml, over a config.yaml that
sets every key to something else, and over nothing, and check that the three agree
and that configs/paper.yaml is the paper's protocol (docs/protocol.md §2-§7).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.utils import update_config

from unlearnbench import config as ub_config
from unlearnbench import methods

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted((REPO / "configs").glob("*.yaml"))
# Where the data live and what is kept: a machine's business, not the protocol's.
NOT_PROTOCOL = {"data_dir", "download", "keep_unlearned",
                "search.one_job", "ulira.one_job",  # job granularity: the same files either way
                "warm_start"}  # how jobs start: the same files either way

# A config.yaml that differs from the paper in every key it can hold.
HOSTILE = yaml.safe_load("""
datasets: [digits, cifar10]
models: [smallcnn]
seeds: [0]
methods: [ft, ga]
method_params: {ft: {epochs: 1}, ga: {lr: 0.5}}
splits: {val_fraction: 0.3, forget_fraction: 0.3}
training:
  digits: {epochs: 2}
  cifar10: {epochs: 3, batch_size: 8, lr: 0.5, momentum: 0.1, weight_decay: 0.0, augment: false}
  cifar100: {epochs: 3}
  mnist: {epochs: 3, batch_size: 8}
  fashion_mnist: {lr: 0.01}
  utkface: {batch_size: 512, augment: false}
search: {trials: {smallcnn: 1}, seeds: [4], include_defaults: true, start_from_defaults: true,
         on_no_complete_trial: {ft: defaults}}
device: cpu
precision: bf16
data_dir: /elsewhere
keep_unlearned: true
scenarios: [{kind: class, class: 3}, {kind: poison, share: 0.3}]
ulira:
  enabled: false
  dataset: digits
  model: smallcnn
  splits: 4
  forget_sets: 1
  val_fraction: 0.5
  forget_fraction: 0.5
  epochs: 2
  methods: [ft]
  statistic: correctness
  min_samples: 2
  target_splits: [0]
  holdout: false
  search_trials: 1
  search_splits: 1
  shared_init: false
""")


# Overlays, merged after the file they change (--configfile configs/paper.yaml configs/paper-fixture.yaml)
OVERLAYS = {"paper-fixture.yaml": "paper.yaml"}


def resolve(base: dict, path: Path) -> dict:
    """The configuration a run with `--configfile path` sees over `base` as config.yaml
    (an overlay: `--configfile <what it overlays> path`)."""
    merged = copy.deepcopy(base)
    for part in ([path.parent / OVERLAYS[path.name]] if path.name in OVERLAYS else []) + [path]:
        update_config(merged, yaml.safe_load(part.read_text()))
    return ub_config.validate_ulira(ub_config.validate(merged))


def protocol_part(config: dict) -> dict:
    return {k: v for k, v in config.items() if k not in NOT_PROTOCOL}


def test_the_hostile_config_is_itself_valid():
    ub_config.validate_ulira(ub_config.validate(copy.deepcopy(HOSTILE)))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_config_does_not_depend_on_config_yaml(path):
    shipped_default = yaml.safe_load((REPO / "config.yaml").read_text())
    alone = protocol_part(resolve({}, path))
    assert protocol_part(resolve(shipped_default, path)) == alone
    assert protocol_part(resolve(HOSTILE, path)) == alone


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_config_pins_every_key_of_the_schema(path):
    """A key added to the schema later must be written out in every shipped config (or
    be declared not part of the protocol), or config.yaml could change what it runs."""
    schema = ub_config.load_schema()["properties"]
    given = yaml.safe_load(path.read_text())
    if path.name in OVERLAYS:  # what it does not set comes from the file it overlays
        given = copy.deepcopy(yaml.safe_load((path.parent / OVERLAYS[path.name]).read_text()))
        update_config(given, yaml.safe_load(path.read_text()))
    missing = [k for k in schema if k not in given and k not in NOT_PROTOCOL]
    for section in ("splits", "search", "ulira"):
        inner = given.get(section) or {}
        missing += [f"{section}.{k}" for k in schema[section]["properties"]
                    if k not in inner and f"{section}.{k}" not in NOT_PROTOCOL]
    assert not missing, f"{path.name} leaves {missing} to config.yaml"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_config_has_its_protocol_checked(path):
    assert path.name in PROTOCOLS, f"add a protocol check for configs/{path.name} to {Path(__file__).name}"


def check_paper(config: dict) -> None:
    assert config["datasets"] == ["mnist", "fashion_mnist", "cifar10", "cifar100", "utkface"]
    assert config["models"] == ["resnet18", "tinyvit11m"]
    assert config["seeds"] == list(range(10))
    assert config["methods"] == list(methods.PAPER_METHODS)  # named: a new module stays out of the paper grid
    assert config["method_params"] == {}
    assert config["splits"] == {"val_fraction": 0.15, "forget_fraction": 0.1}
    for dataset in config["datasets"]:
        cifar = dataset.startswith("cifar")
        assert ub_config.recipe(config, dataset) == {
            "epochs": 182 if cifar else 50, "batch_size": 128 if dataset == "utkface" else 256, "lr": 0.1,
            "momentum": 0.9, "weight_decay": 5e-4, "augment": True}, dataset
        assert ub_config.epoch_cap(config, dataset) == (37 if cifar else 10)
    search = config["search"]
    assert all(ub_config.search_trials(config, m) == 100 for m in config["models"])
    assert search["seeds"] == [0, 1, 2]
    assert search["include_defaults"] is False and search["start_from_defaults"] is False  # no default trials
    assert search["on_no_complete_trial"] == "fail"
    assert not ub_config.search_one_job(config)  # a job per study: 100 trials each
    assert config["precision"] == "fp32" and config["device"] == "cuda"
    assert [e["kind"] for e in config["scenarios"]] == ["random"]  # the paper's only scenario
    assert config["verify_checksums"] is True
    u = config["ulira"]
    assert u["enabled"] and (u["dataset"], u["model"]) == ("cifar10", "resnet18")
    assert (u["splits"], u["forget_sets"]) == (64, 10)
    assert (u["val_fraction"], u["forget_fraction"]) == (0.05, 0.1)
    assert ub_config.ulira_recipe(config)["epochs"] == 91
    assert {k: v for k, v in ub_config.ulira_recipe(config).items() if k != "epochs"} == {
        k: v for k, v in ub_config.recipe(config, "cifar10").items() if k != "epochs"}
    assert u["methods"] == ["ft", "msg", "cfw", "prmq", "ct", "kde"]
    # the reference ran 200 trials per study and chose among the first 100 (docs/reference.md, U5)
    assert (u["search_trials"], u["search_splits"]) == (100, 32)
    assert ub_config.ulira_epoch_cap(config) == 19 and u["shared_init"] is True
    assert u["statistic"] == "logit" and u["holdout"] is True and u["min_samples"] == 32
    assert u["target_splits"] == list(range(64))


def check_paper_fixture(config: dict) -> None:
    """configs/paper-fixture.yaml over configs/paper.yaml: the paper's grid at fixture
    scale, differing only in sizes, the device and the data checks (the DAG's shape:
    tests/test_paper_fixture.py)."""
    paper = resolve({}, REPO / "configs" / "paper.yaml")
    sizes = {"seeds", "training", "search", "device", "verify_checksums", "ulira"}
    assert {k: v for k, v in config.items() if k not in sizes} == {k: v for k, v in paper.items() if k not in sizes}
    assert config["seeds"] == [0] and config["device"] == "cpu" and config["verify_checksums"] is False
    for dataset in config["datasets"]:  # one epoch, the paper's batch and input sizes
        assert ub_config.recipe(config, dataset) == {**ub_config.recipe(paper, dataset), "epochs": 1}
    assert config["training"] == {d: {"epochs": 1} for d in config["datasets"]}
    search = config["search"]
    assert ub_config.search_trials(config, "resnet18") == 1 and search["seeds"] == [0]
    assert not ub_config.search_one_job(config)  # a job per study, as the paper grid
    assert {k: v for k, v in search.items() if k not in ("trials", "seeds", "on_no_complete_trial")} == {
        k: v for k, v in paper["search"].items() if k not in ("trials", "seeds", "on_no_complete_trial")}
    u, p = config["ulira"], paper["ulira"]
    changed = {"splits", "forget_sets", "epochs", "search_trials", "search_splits", "target_splits", "one_job"}
    assert {k: v for k, v in u.items() if k not in changed} == {k: v for k, v in p.items() if k not in changed}
    assert u["one_job"] is False and u["target_splits"] == list(range(u["splits"]))


PROTOCOLS = {"paper.yaml": check_paper, "paper-fixture.yaml": check_paper_fixture}


@pytest.mark.parametrize("base", ["shipped", "hostile", "none"])
def test_paper_config_resolves_to_the_paper_protocol(base):
    config_yaml = {"shipped": yaml.safe_load((REPO / "config.yaml").read_text()), "hostile": HOSTILE,
                   "none": {}}[base]
    check_paper(resolve(config_yaml, REPO / "configs" / "paper.yaml"))
