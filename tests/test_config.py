"""Config validation fails at once with a message naming the key and the valid choices."""

from __future__ import annotations

import pytest
import torch
import yaml

from unlearnbench import config
from unlearnbench.methods import names as method_names

from conftest import REPO


def check(cfg: dict) -> dict:
    return config.validate(cfg)


def test_defaults_filled_and_methods_all_expanded():
    cfg = check({})
    assert cfg["datasets"] == ["digits"] and cfg["splits"]["val_fraction"] == 0.15
    assert cfg["methods"] == method_names() and len(cfg["methods"]) == 18
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
