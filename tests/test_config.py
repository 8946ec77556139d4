"""Config validation fails at once with a message naming the key and the valid choices."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys

import pytest
import torch
import yaml

from unlearnbench import catalog, config, methods
from unlearnbench.methods import names as method_names

from conftest import REPO


def check(cfg: dict) -> dict:
    return config.validate(cfg)


def test_defaults_filled_and_methods_all_expanded():
    cfg = check({})
    assert cfg["datasets"] == ["digits"] and cfg["splits"]["val_fraction"] == 0.15
    assert cfg["methods"] == method_names()  # the whole registry: the paper's 18 first
    assert cfg["methods"][:18] == list(methods.PAPER_METHODS)
    assert cfg["search"]["trials"] == 0 and cfg["download"] is False


def test_shipped_configs_are_valid():
    for path in [REPO / "config.yaml", *sorted((REPO / "configs").glob("*.yaml"))]:
        config.load(path)


@pytest.mark.parametrize(
    "cfg, expected",
    [
        ({"datasetz": ["digits"]}, ["unknown key", "'datasetz'", "valid keys", "datasets"]),
        ({"datasets": ["imagenet"]}, ["datasets", "'imagenet'", "valid:", "cifar10", "utkface"]),
        ({"models": ["vgg"]}, ["models", "'vgg'", "resnet18", "tinyvit11m", "smallcnn"]),
        ({"methods": ["ft", "unlearn_magic"]}, ["methods", "'unlearn_magic'", "msg", "ct"]),
        ({"methods": "some"}, ["methods", "'some'"]),
        ({"splits": {"val_fraction": 1.5}}, ["splits.val_fraction", "1.5"]),
        ({"splits": {"forget_fraction": 0}}, ["splits.forget_fraction"]),
        ({"splits": {"forgot_fraction": 0.1}}, ["splits", "'forgot_fraction'", "forget_fraction"]),
        ({"seeds": [-1]}, ["seeds.0", "-1"]),
        ({"seeds": ["zero"]}, ["seeds.0", "'zero'"]),
        ({"seeds": [1, 1]}, ["seeds", "non-unique"]),
        ({"device": "tpu"}, ["device", "'tpu'", "auto", "cuda"]),
        ({"precision": "fp16"}, ["precision", "'fp16'", "fp32", "bf16", "auto"]),
        ({"search": {"start_from_defaults": "yes"}}, ["search.start_from_defaults", "'yes'"]),
        ({"search": {"one_job": "yes"}}, ["search.one_job", "'yes'"]),
        ({"warm_start": "false"}, ["warm_start", "'false'", "boolean"]),
        ({"search": {"trials": -1}}, ["search.trials", "-1"]),
        ({"models": ["smallcnn", "resnet18"], "search": {"trials": {"smallcnn": 3}}},
         ["search.trials", "no budget", "resnet18"]),
        ({"models": ["smallcnn"], "search": {"trials": {"smallcnn": 3, "vgg": 2}}}, ["search.trials", "'vgg'"]),
        ({"models": ["smallcnn"], "search": {"trials": {"smallcnn": 0}}}, ["search.trials.smallcnn", "0"]),
        ({"method_params": {"ft": {"epochz": 3}}}, ["method_params.ft", "epochz", "valid:", "epochs"]),
        ({"method_params": {"nope": {}}}, ["method_params", "'nope'"]),
        ({"training": {"digits": {"epochs": 0}}}, ["training.digits.epochs", "0"]),
        ({"training": {"mnst": {"epochs": 3}}}, ["training", "'mnst'", "mnist"]),
    ],
)
def test_bad_config_names_key_and_choices(cfg, expected):
    with pytest.raises(config.ConfigError) as err:
        check(cfg)
    for part in expected:
        assert part in str(err.value), f"{part!r} missing from: {err.value}"


def test_search_trials_one_number_or_one_per_model():
    assert config.search_on(check({"search": {"trials": 2}}))
    assert not config.search_on(check({"search": {"trials": 0}}))
    cfg = check({"models": ["smallcnn", "resnet18"], "search": {"trials": {"smallcnn": 3, "resnet18": 2}}})
    assert config.search_on(cfg)
    assert (config.search_trials(cfg, "smallcnn"), config.search_trials(cfg, "resnet18")) == (3, 2)
    assert config.search_trials(check({"search": {"trials": 5}}), "resnet18") == 5


def test_unreadable_config_file_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("datasets: [digits\n")
    with pytest.raises(config.ConfigError, match="bad.yaml"):
        config.load(bad)
    with pytest.raises(config.ConfigError, match="not found"):
        config.load(tmp_path / "missing.yaml")


def test_recipe_and_epoch_cap_follow_the_paper():
    cfg = check({})
    assert config.recipe(cfg, "cifar10")["epochs"] == 182 and config.epoch_cap(cfg, "cifar10") == 37
    assert config.recipe(cfg, "mnist")["epochs"] == 50 and config.epoch_cap(cfg, "mnist") == 10
    assert config.recipe(cfg, "utkface")["batch_size"] == 128
    cfg = check({"training": {"digits": {"epochs": 20}}})
    assert config.recipe(cfg, "digits")["epochs"] == 20 and config.epoch_cap(cfg, "digits") == 4


def test_schema_is_valid_yaml_with_descriptions():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    assert all("description" in spec for spec in schema["properties"].values())


def test_precision_auto_resolves_to_what_the_device_computes_natively(monkeypatch):
    from unlearnbench import runtime

    cpu = torch.device("cpu")
    assert runtime.resolve_precision("fp32", cpu) == "fp32" and runtime.resolve_precision("bf16", cpu) == "bf16"
    monkeypatch.setattr(runtime, "native_bf16", lambda device: True)
    assert runtime.resolve_precision("auto", cpu) == "bf16"
    monkeypatch.setattr(runtime, "native_bf16", lambda device: False)
    assert runtime.resolve_precision("auto", cpu) == "fp32"
    with pytest.raises(ValueError, match="'fp16'; valid: auto, fp32, bf16"):
        runtime.resolve_precision("fp16", cpu)


# --- sections that can be switched off constrain nothing while off ---------------------------

# one violation of each U-LiRA cross-check, on a config whose main search is on
ULIRA_VIOLATIONS = {
    "main search covers no U-LiRA method": ({"methods": ["ft", "ga"]}, {}, "no method 'ct', method 'msg'"),
    "unknown dataset": ({}, {"dataset": "imagenet"}, "ulira.dataset"),
    "unknown model": ({}, {"model": "vgg"}, "ulira.model"),
    "unknown method": ({}, {"methods": ["nope"], "search_trials": 1}, "ulira.methods"),
    "target split out of range": ({}, {"splits": 4, "target_splits": [4]}, "ulira.target_splits"),
    "search splits out of range": ({}, {"splits": 4, "search_splits": 5, "search_trials": 1}, "ulira.search_splits"),
}


@pytest.mark.parametrize("main, section, message", ULIRA_VIOLATIONS.values(), ids=list(ULIRA_VIOLATIONS))
def test_ulira_section_is_checked_only_when_enabled(main, section, message):
    """A subset run (`methods: [ft, ga]`, `ulira: {enabled: false}`) over a config whose
    U-LiRA section names other methods must not fail on the section it switched off."""
    base = {"search": {"trials": 2}, **main}
    off = config.validate_ulira(check({**base, "ulira": {"enabled": False, **section}}))
    assert off["ulira"]["enabled"] is False
    with pytest.raises(config.ConfigError, match=re.escape(message)):
        config.validate_ulira(check({**base, "ulira": {"enabled": True, **section}}))
    with pytest.raises(config.ConfigError, match=re.escape(message)):  # what a U-LiRA target checks
        config.check_ulira(off)


def test_disabled_ulira_section_is_still_completed():
    u = config.validate_ulira(check({"ulira": {"enabled": False, "splits": 4, "methods": "all"}}))["ulira"]
    assert u["target_splits"] == [0, 1, 2, 3] and u["search_splits"] == 4
    assert u["methods"] == [m for m in method_names() if methods.applies(m, "random")]


def test_search_switched_off_constrains_nothing_else():
    """With search.trials 0, U-LiRA runs method defaults: its methods need not be in `methods`."""
    cfg = check({"methods": ["ft"], "search": {"trials": 0, "seeds": [7]},
                 "ulira": {"enabled": True, "methods": ["ct", "msg"]}})
    assert config.validate_ulira(cfg)["ulira"]["methods"] == ["ct", "msg"]
    assert not config.search_on(cfg)


def test_shipped_configs_with_a_subset_and_ulira_off():
    for path in [REPO / "config.yaml", *sorted((REPO / "configs").glob("*.yaml"))]:
        cfg = yaml.safe_load(path.read_text())
        cfg.update(methods=["ft", "ga"], ulira={**cfg.get("ulira", {}), "enabled": False})
        config.validate_ulira(check(cfg))


# --- the registries without torch ----------------------------------------------------------

VALIDATE_WITHOUT_TORCH = """
import sys
from unlearnbench import catalog, config, methods
for path in sys.argv[1:]:
    config.validate_ulira(config.load(path))
print(methods.label("ngplus"), methods.hyperparameters("ft", {"epochs": 2})["epochs"], len(catalog.DATASETS))
print(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "numpy") or m.startswith("unlearnbench.methods.")))
"""


def test_config_and_registry_names_need_no_torch():
    paths = [str(REPO / "config.yaml"), *map(str, sorted((REPO / "configs").glob("*.yaml")))]
    out = subprocess.run([sys.executable, "-c", VALIDATE_WITHOUT_TORCH, *paths], capture_output=True, text=True,
                         check=True).stdout
    assert out == "NG+ 2 6\n[]\n"


def test_registry_literals_are_what_each_module_holds():
    for name in method_names():
        module = methods.get(name)  # raises if a literal and the imported module disagree
        info = methods.info(name)
        assert (module.NAME, module.LABEL, tuple(module.READS), module.DEFAULTS) == (
            info.name, info.label, info.reads, info.defaults)
        assert callable(module.search_space) and callable(module.unlearn)


@pytest.mark.parametrize("source, message", [
    ('NAME = "x"\nLABEL = "X"\nREADS = ("retain",)\nDEFAULTS = dict(lr=1)\n'
     "def search_space(t, e): pass\ndef unlearn(m, d, h, g): pass\n", "DEFAULTS must be a literal"),
    ('NAME = "x"\nLABEL = "X"\nREADS = ("retain",)\nDEFAULTS = {}\ndef search_space(t, e): pass\n', "lacks unlearn"),
    ('from .ft import NAME\nLABEL = "X"\nREADS = ()\nDEFAULTS = {}\n'
     "def search_space(t, e): pass\ndef unlearn(m, d, h, g): pass\n", "NAME must be assigned a literal"),
])
def test_method_module_without_literals_is_named(tmp_path, source, message):
    path = tmp_path / "mymethod.py"
    path.write_text(source)
    with pytest.raises(TypeError, match=message) as err:
        methods._read_info(path)
    assert "mymethod" in str(err.value)


def test_dataset_and_model_names_match_their_registries():
    from unlearnbench import data, models

    assert set(catalog.DATASET_NAMES) == set(data._registry()) and set(catalog.MODEL_NAMES) == set(models.BUILDERS)
    with pytest.raises(ImportError, match="catalog.py"):
        catalog.check_registry("model", {"resnet18", "vgg"}, ("resnet18",))


def test_every_dataset_and_model_has_every_fact():
    """Each catalog entry fills every field (superclasses: None except cifar100's 20
    coarse classes, 5 fine classes each); the data specs and recipes read them."""
    from unlearnbench import data

    for entry in [*catalog.DATASETS.values(), *catalog.MODELS.values()]:
        missing = [f.name for f in dataclasses.fields(entry)
                   if getattr(entry, f.name) is None and f.name not in ("superclasses", "max_search_batch")]
        assert not missing, (entry.name, missing)
    for name, d in catalog.DATASETS.items():
        assert 0 < d.test_size < d.pool_size and d.channels == 3 and d.cost > 0 and d.mem_mb > 0
        spec = data.get_spec(name)
        assert (spec.num_classes, spec.image_size, spec.mean, spec.std) == (d.num_classes, d.image_size, d.mean, d.std)
    coarse = catalog.DATASETS["cifar100"].superclasses
    assert len(coarse) == 100 and sorted(coarse.count(c) for c in set(coarse)) == [5] * 20
    assert coarse[:3] == (4, 1, 14)  # apple: fruit and vegetables; aquarium fish: fish; baby: people
    assert [d for d in catalog.DATASETS.values() if d.superclasses] == [catalog.DATASETS["cifar100"]]
    assert {n: config.recipe({}, n)["epochs"] for n in ("cifar10", "mnist")} == {"cifar10": 182, "mnist": 50}
    assert config.recipe({}, "utkface")["batch_size"] == 128 == catalog.DATASETS["utkface"].max_search_batch


@pytest.mark.workflow
def test_a_config_file_that_is_not_a_yaml_mapping_fails_naming_file_and_line(tmp_path):
    """Snakemake's own message names neither the file nor the line.
    config.yaml is checked before Snakemake reads it, before any job; a --configfile,
    which Snakemake reads first, by `python -m unlearnbench.config`."""
    import subprocess
    import sys

    from conftest import copy_workflow, snakemake

    work = copy_workflow(tmp_path / "w")
    for text, message in (("datasets: [digits\nmodels: [smallcnn]\n",
                           "config file config.yaml is not valid YAML, line 2 column 7"),
                          ("", "config file config.yaml is empty"),
                          ("- digits\n", "config file config.yaml holds a list, not a mapping")):
        (work / "config.yaml").write_text(text)
        out = snakemake(work, "-n", check=False)
        text = out.stdout + out.stderr
        assert out.returncode != 0 and message in text, text[-2000:]
        assert "Building DAG" not in text
    (tmp_path / "my.yaml").write_text("methods: [ft\n")
    check = subprocess.run([sys.executable, "-m", "unlearnbench.config", str(tmp_path / "my.yaml")],
                           capture_output=True, text=True)
    assert check.returncode == 1 and "my.yaml is not valid YAML, line 2" in check.stderr
