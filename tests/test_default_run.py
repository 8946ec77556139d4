"""The embedded default's speed levers: a per-dataset input size, precision auto's
fallback where CPU bf16 is defective, the one-job modes of the search and of U-LiRA,
and the reference checks of a finished run (benchmarks/reference_checks.py)."""

from __future__ import annotations

import importlib.util
import json

import pandas as pd
import pytest
import torch

from conftest import REPO, copy_workflow, snakemake, write_config
from unlearnbench import config, data, io, models, runtime
from unlearnbench.jobs.context import Context


def _reference_checks():
    spec = importlib.util.spec_from_file_location("reference_checks", REPO / "benchmarks/reference_checks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- input size


def test_image_size_resizes_once_from_the_native_images():
    default = data.load_pool("digits")
    small = data.load_pool("digits", image_size=16)
    assert default.images.shape[1:] == (3, 32, 32) and small.images.shape[1:] == (3, 16, 16)
    assert torch.equal(small.labels, default.labels) and small.n_train == default.n_train
    # 8x8 -> 16x16 directly (not via 32x32): the grey value of a constant image survives exactly
    grey = torch.full((2, 8, 8), 200, dtype=torch.uint8)
    assert torch.equal(data._grey_to_rgb(grey, 16), torch.full((2, 3, 16, 16), 200, dtype=torch.uint8))
    assert data.get_spec("digits", 16).image_size == 16 and data.get_spec("digits").image_size == 32
    with pytest.raises(ValueError, match="image_size"):
        data.get_spec("digits", 0)


def test_config_image_size_is_a_training_override_and_is_checked():
    cfg = config.validate({"training": {"digits": {"image_size": 16, "epochs": 10}}})
    assert config.recipe(cfg, "digits")["image_size"] == 16
    with pytest.raises(config.ConfigError, match="image_size"):
        config.validate({"training": {"digits": {"image_size": 2}}})
    assert config.validate({})["ulira"]["one_job"] is None  # by the bank's size


def test_context_holds_the_configured_input_size(tmp_path):
    pool = data.load_pool("digits")
    io.save_npz(tmp_path / "splits.npz", **data.make_splits(pool.n_train, len(pool.labels)))
    ctx = Context("digits", tmp_path / "splits.npz", device="cpu", precision="fp32", threads=1, image_size=16)
    assert ctx.spec.image_size == 16
    assert all(s.images.shape[1:] == (3, 16, 16) for s in ctx.splits.values())


# ----------------------------------------------------------------------------- precision


def test_bf16_hazard_is_a_strided_convolution_on_a_1x1_map():
    resnet = models.build("resnet18", 10, seed=0)
    hazards = runtime.bf16_cpu_hazards(resnet, (3, 16, 16))
    assert "layer4.0.conv1" in hazards and "layer4.0.downsample.0" in hazards
    assert runtime.bf16_cpu_hazards(resnet, (3, 32, 32)) == []  # layer4 sees 2x2 maps there
    assert runtime.bf16_cpu_hazards(models.build("smallcnn", 10, seed=0), (3, 16, 16)) == []
    assert resnet.training  # the probe restores the mode


def test_precision_auto_falls_back_to_fp32_only_where_bf16_is_defective(monkeypatch, tmp_path):
    monkeypatch.setattr(runtime, "native_bf16", lambda device: True)  # as on an AMX / AVX512-BF16 CPU
    cpu = torch.device("cpu")
    resnet = models.build("resnet18", 10, seed=0)
    assert runtime.resolve_precision("auto", cpu) == "bf16"
    assert runtime.resolve_precision("auto", cpu, resnet, (3, 16, 16)) == "fp32"
    assert runtime.resolve_precision("auto", cpu, resnet, (3, 32, 32)) == "bf16"
    assert runtime.resolve_precision("bf16", cpu, resnet, (3, 16, 16)) == "bf16"  # asked for: kept
    # a job's context resolves it for the model it builds
    pool = data.load_pool("digits")
    io.save_npz(tmp_path / "splits.npz", **data.make_splits(pool.n_train, len(pool.labels)))
    for size, name, expected in ((16, "resnet18", "fp32"), (16, "smallcnn", "bf16"), (32, "resnet18", "bf16")):
        ctx = Context("digits", tmp_path / "splits.npz", device="cpu", precision="auto", threads=1, image_size=size)
        io.save_state(tmp_path / "m.safetensors", models.build(name, 10, seed=0))
        assert ctx.precision == "bf16"
        ctx.model(name, tmp_path / "m.safetensors")
        assert ctx.precision == expected, (size, name)


# ----------------------------------------------------------------------------- a method's jobs


def _job_counts(out: str) -> dict:
    return {line.split()[0]: int(line.split()[1]) for line in out.split("Job stats:", 1)[1].splitlines()[3:]
            if len(line.split()) == 2 and line.split()[1].isdigit()}


def test_search_one_job_by_default_only_for_small_searches():
    small = config.validate({"models": ["smallcnn", "resnet18"], "search": {"trials": {"smallcnn": 3, "resnet18": 2}}})
    assert config.search_one_job(small)
    assert not config.search_one_job(config.validate({"search": {"trials": 100, "seeds": [0, 1, 2]}}))
    assert not config.search_one_job(config.validate({"search": {"trials": 7, "seeds": [0, 1, 2]}}))  # 21 > 20
    assert not config.search_one_job(config.validate({"search": {"trials": 0, "one_job": True}}))  # no search
    assert config.search_one_job(config.validate({"search": {"trials": 100, "one_job": True}}))
    assert not config.search_one_job(config.validate({"search": {"trials": 2, "one_job": False}}))


def test_ulira_one_job_by_default_only_for_small_banks():
    """ulira.one_job null: one job for every split when splits x forget sets <= 64 (the
    default's 8 x 2), one per split for the paper's 64 x 10."""
    def resolved(**ulira):
        return config.ulira_one_job(config.validate({"ulira": ulira}))

    assert resolved(splits=8, forget_sets=2) and resolved(splits=32, forget_sets=2)  # 64
    assert not resolved(splits=64, forget_sets=10) and not resolved(splits=13, forget_sets=5)  # 65
    assert resolved(splits=64, forget_sets=10, one_job=True) and not resolved(splits=2, forget_sets=1, one_job=False)


@pytest.mark.workflow
def test_search_one_job_writes_what_the_three_rules_write(tmp_path):
    """search.one_job true runs one job per method instead of a study job per search
    seed, a select_best job and an unlearn job; the files are the same (timings aside)."""
    results = {}
    for one_job in (False, True):
        work = copy_workflow(tmp_path / str(one_job))
        write_config(work / "tiny.yaml", models=["smallcnn"], seeds=[0, 1], methods=["ft", "ga"], device="cpu",
                     precision="fp32", training={"digits": {"epochs": 2, "batch_size": 128, "image_size": 16}},
                     search={"trials": 2, "seeds": [1], "start_from_defaults": True, "one_job": one_job},
                     ulira={"enabled": False})
        counts = _job_counts(snakemake(work, "metrics", "-n", "--quiet", "rules", "--configfile", "tiny.yaml").stdout)
        expected = {"search_unlearn": 2} if one_job else {"search": 2, "select_best": 2, "unlearn": 2}
        assert {k: v for k, v in counts.items() if k in ("search", "select_best", "unlearn", "search_unlearn")} \
            == expected, counts
        snakemake(work, "metrics", "--cores", "2", "--configfile", "tiny.yaml")
        base = work / "results/digits/smallcnn"
        results[one_job] = {
            "metrics": pd.read_csv(work / "results/metrics.csv").drop(columns=["seconds"]),
            "best": {m: io.read_json(base / f"search/{m}/best.json") for m in ("ft", "ga")},
            "trials": {m: pd.read_csv(base / f"search/{m}/seed1.csv").drop(
                columns=[c for c in pd.read_csv(base / f"search/{m}/seed1.csv") if "seconds" in c or "datetime" in c
                         or c == "duration"]) for m in ("ft", "ga")},
        }
    pd.testing.assert_frame_equal(results[True]["metrics"], results[False]["metrics"])
    assert results[True]["best"] == results[False]["best"]
    for m in ("ft", "ga"):
        pd.testing.assert_frame_equal(results[True]["trials"][m], results[False]["trials"][m])


# ----------------------------------------------------------------------------- U-LiRA jobs


@pytest.mark.parametrize("one_job, shadow, unlearn", [(False, 4, 8), (True, 1, 2), (None, 1, 2)])
def test_ulira_one_job_runs_every_split_in_one_job(tmp_path, one_job, shadow, unlearn):
    copy_workflow(tmp_path)
    write_config(tmp_path / "tiny.yaml", models=["smallcnn"], methods=["ft", "ga"], search={"trials": 0},
                 ulira={"enabled": True, "splits": 4, "forget_sets": 2, "forget_fraction": 0.5, "methods": ["ft", "ga"],
                        "one_job": one_job})
    out = snakemake(tmp_path, "table_ulira", "-n", "--quiet", "rules", "--configfile", "tiny.yaml").stdout
    counts = _job_counts(out)
    assert counts["ulira_shadow"] == shadow and counts["ulira_unlearn"] == unlearn, out
    assert counts["ulira_attack"] == 4  # retrained, original, ft, ga


# ----------------------------------------------------------------------------- reference checks


def test_reference_checks_known_answers():
    rows = []
    for seed, (ra, fa, ta, mia) in enumerate([(0.96, 1.0, 0.96, 0.50), (0.98, 0.99, 0.97, 0.56), (0.97, 1.0, 0.95, 0.50)]):
        rows.append({"dataset": "digits", "model": "m", "method": "retrained", "seed": seed, "retain_acc": ra,
                     "forget_acc": 0.9, "test_acc": 0.9, "val_mia": mia})
        rows.append({"dataset": "digits", "model": "m", "method": "original", "seed": seed, "retain_acc": 1.0,
                     "forget_acc": fa, "test_acc": ta, "val_mia": 0.6})
    table = _reference_checks().checks(pd.DataFrame(rows), {("digits", "m"): {"original": 0.6, "retrained": 0.5}})
    got = {r.check: (round(r.value, 6), r.holds) for r in table.itertuples()}
    assert got == {"retrained RA": (0.97, True), "original FA - TA": (0.036667, True),
                   "retrained val MIA": (0.52, True), "U-LiRA AUC original - retrained": (0.1, True)}
    rows[0]["retain_acc"] = 0.80  # mean RA 0.92
    table = _reference_checks().checks(pd.DataFrame(rows), {("digits", "m"): {"original": 0.5, "retrained": 0.5}})
    assert not table.set_index("check")["holds"]["retrained RA"]
    assert not table.set_index("check")["holds"]["U-LiRA AUC original - retrained"]


@pytest.mark.workflow
def test_reference_checks_on_a_tiny_run(tmp_path):
    """The machinery on a real (tiny) run: digits at 16x16, both reference kinds, U-LiRA
    in one-job mode; the checker reads what the workflow wrote (numbers not asserted)."""
    copy_workflow(tmp_path)
    write_config(tmp_path / "tiny.yaml", models=["smallcnn"], seeds=[0], methods=["ft"], search={"trials": 0},
                 training={"digits": {"epochs": 3, "batch_size": 128, "image_size": 16}}, device="cpu",
                 method_params={"ft": {"epochs": 1}},
                 ulira={"enabled": True, "splits": 4, "forget_sets": 2, "forget_fraction": 0.5, "epochs": 2,
                        "methods": ["ft"], "min_samples": 4, "one_job": True})
    snakemake(tmp_path, "metrics", "table_ulira", "--cores", "2", "--configfile", "tiny.yaml")
    info = json.loads((tmp_path / "results/digits/smallcnn/original/seed0.json").read_text())
    assert info["recipe"]["image_size"] == 16 and info["recipe"]["batch_size"] == 128
    assert (tmp_path / "logs/ulira/digits/smallcnn/shadow/all.log").exists()
    assert (tmp_path / "logs/ulira/digits/smallcnn/unlearn/ft/all.log").exists()
    module = _reference_checks()
    table = module.checks(pd.read_csv(tmp_path / "results/metrics.csv"), module.read_ulira(tmp_path / "results"))
    assert list(table["check"]) == ["retrained RA", "original FA - TA", "retrained val MIA",
                                    "U-LiRA AUC original - retrained"]
    assert table["value"].notna().all() and set(table["model"]) == {"smallcnn"}
    assert module.main(["--results", str(tmp_path / "results")]) in (0, 1)
