"""The subclass scenario end to end (docs/protocol.md §10.4): a real Snakemake run on the
cifar100 stand-in of `python -m unlearnbench.fixtures` (torchvision's own CIFAR100 class
reads it), with the random scenario beside it and the tables built."""

import pickle

import numpy as np
import pandas as pd
import pytest

from safetensors.numpy import load_file

from unlearnbench import catalog, fixtures, scenario_data

MEMBER = 69  # scenarios.DEFAULTS: rocket, a member of super-class vehicles 2


@pytest.mark.workflow
def test_subclass_on_cifar100_fixture(tmp_path):
    """Every model trains and is judged on the 20 super-class labels; the forget set is
    every example of D of the fine class `member`. The retrained model, which never saw
    it, still places most of its test images in their super-class (the fixture's fine
    classes share half their super-class's pattern, as real ones share looks), yet less
    often than the original, which trained on them; a class-wise method (bs) runs here,
    searched on the scenario, and is n/a in the random scenario."""
    from conftest import copy_workflow, snakemake, write_config

    data_dir = tmp_path / "data"
    # 20 images per fine class: about 17 of the member in D, above the 10 the MIA needs
    fixtures.write_cifar100(data_dir, np.random.default_rng(0), train_per_class=20, test_per_class=5)
    work = copy_workflow(tmp_path / "wf")
    write_config(work / "tiny.yaml", datasets=["cifar100"], models=["smallcnn"], seeds=[0], methods=["ft", "bs"],
                 device="cpu", data_dir=str(data_dir), verify_checksums=False,
                 training={"cifar100": {"epochs": 4, "batch_size": 64, "image_size": 16, "augment": False}},
                 search={"trials": 1, "seeds": [0]}, method_params={"ft": {"epochs": 1}, "bs": {"epochs": 1}},
                 ulira={"enabled": False}, scenarios=[{"kind": "random"}, {"kind": "subclass"}])
    snakemake(work, "--cores", "2", "--configfile", "tiny.yaml")

    fine = np.concatenate([pickle.loads((data_dir / "cifar-100-python" / part).read_bytes(),
                                        encoding="latin1")["fine_labels"] for part in ("train", "test")])
    base = dict(np.load(work / "results/cifar100/splits.npz"))
    split = dict(np.load(work / "results/scenarios/subclass/cifar100/splits.npz"))
    d = np.concatenate([base["retain"], base["forget"]])
    assert scenario_data.info_of(split)["params"] == {"member": MEMBER}
    assert split["forget"].tolist() == sorted(d[fine[d] == MEMBER]) and len(split["forget"]) >= 10
    assert split["test_member"].tolist() == sorted(base["test"][fine[base["test"]] == MEMBER])
    assert split["label_map"].tolist() == list(catalog.DATASETS["cifar100"].superclasses)
    out = work / "results/scenarios/subclass/cifar100/smallcnn"
    assert load_file(out / "original/seed0.safetensors")["fc.weight"].shape[0] == 20  # super-classes
    assert load_file(work / "results/cifar100/smallcnn/original/seed0.safetensors")["fc.weight"].shape[0] == 100

    metrics = pd.read_csv(work / "results/metrics.csv").set_index(["scenario", "method"])
    sub = metrics.loc["subclass"]
    assert sub[["forget_class_acc", "other_classes_acc"]].notna().all().all()
    assert sub.loc["retrained", "forget_class_acc"] >= 0.6  # never saw a rocket, yet calls them vehicles
    assert sub.loc["original", "forget_class_acc"] >= 0.6 and sub.loc["original", "forget_acc"] >= 0.9
    assert (sub.loc[["original", "retrained"], "other_classes_acc"] >= 0.6).all()
    assert sub.loc["ft", ["hp_source", "hp_scenario"]].tolist() == ["search", "subclass"]
    assert sub.loc["bs", ["hp_source", "hp_scenario"]].tolist() == ["search", "subclass"]
    assert (out / "search/bs/best_seed0.json").exists()
    assert not metrics.loc[("random", "bs"), "applicable"]
    table = (work / "results/tables/scenarios/subclass.md").read_text()
    assert "forget-class TA" in table and "searched here" in table
    ranks = pd.read_csv(work / "results/tables/scenario_rankings.csv")
    assert set(ranks.loc[ranks["scenario"] == "subclass", "method"]) == {"original", "retrained", "ft", "bs"}
    assert (work / "figures/scenarios/subclass.png").exists() and (work / "figures/scenario_rankings.png").exists()
    assert (work / "results/tables/main.md").exists()
