"""Results say what produced them: device and precision per row, tables warn when rows
differ, and results/provenance.json records packages, machine, git state and config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from unlearnbench import provenance
from unlearnbench.report import critical_difference, tables
from synthetic import synthetic_metrics

SOME = ["ft", "ga", "msg", "ct"]
TABLE_WRITERS = {
    "main": lambda m, d: tables.write_main_table(m, d / "main.csv", d / "main.md", d / "main.tex"),
    "rte": lambda m, d: tables.write_rte_table(m, d / "rte.csv", d / "rte.md", d / "rte.tex"),
    "rankings": lambda m, d: tables.write_rankings_table(m, d / "r.csv", d / "mr.csv", d / "rankings.md",
                                                         d / "rankings.tex"),
    "cd": lambda m, d: critical_difference.write_cd_table(m, d / "cd.csv", d / "p.csv", d / "cd.md", d / "cd.tex"),
}


def write_metrics(tmp_path, frame) -> Path:
    path = tmp_path / "metrics.csv"
    frame.to_csv(path, index=False)
    return path


def frame():
    return synthetic_metrics(settings=(("digits", "smallcnn"), ("digits", "resnet18")), seeds=(0, 1, 2),
                             methods=SOME, rng_seed=2)


def test_metrics_csv_requires_device_and_precision(tmp_path):
    from unlearnbench import io, scores

    path = write_metrics(tmp_path, frame().drop(columns=["device", "precision"]))
    with pytest.raises(io.CorruptFileError, match="device, precision"):
        scores.read_metrics(path)


@pytest.mark.parametrize("name", TABLE_WRITERS)
def test_every_table_warns_when_rows_mixed_precisions(tmp_path, name):
    mixed = frame()
    mixed.loc[(mixed["model"] == "resnet18") & (mixed["seed"] == 2), "precision"] = "bf16"
    path = write_metrics(tmp_path, mixed)
    TABLE_WRITERS[name](path, tmp_path)
    md = next(p for p in tmp_path.glob("*.md")).read_text()
    tex = next(p for p in tmp_path.glob("*.tex")).read_text()
    n_bf16 = int((mixed["precision"] == "bf16").sum())
    assert "WARNING: rows were produced under different devices or precisions" in md
    assert f"cpu bf16 ({n_bf16} rows)" in md and "cpu fp32" in md
    assert "different devices or precisions" in tex


def test_main_table_marks_the_setting_that_mixed_and_states_a_uniform_run(tmp_path):
    mixed = frame()
    mixed.loc[(mixed["model"] == "resnet18") & (mixed["seed"] == 2), "device"] = "cuda"
    TABLE_WRITERS["main"](write_metrics(tmp_path, mixed), tmp_path)
    md = (tmp_path / "main.md").read_text()
    assert "## digits / resnet18 (3 seeds; mixed device: cpu+cuda)" in md
    assert "## digits / smallcnn (3 seeds)" in md
    uniform = tmp_path / "uniform"
    uniform.mkdir()
    TABLE_WRITERS["main"](write_metrics(uniform, frame()), uniform)
    md = (uniform / "main.md").read_text()
    assert "Every row computed on cpu in fp32." in md and "WARNING" not in md


# --- provenance.json -------------------------------------------------------------------------

def test_provenance_records_packages_python_machine_and_config(tmp_path):
    config = {"datasets": ["digits"], "precision": "auto", "device": "auto"}
    record = provenance.write_provenance(config, tmp_path / "provenance.json", cwd=tmp_path)
    back = json.loads((tmp_path / "provenance.json").read_text())
    assert back == record
    for name in ("torch", "torchvision", "timm", "optuna", "scikit-learn", "snakemake", "numpy"):
        assert back["packages"][name] == metadata.version(name)
    assert back["python"] == ".".join(map(str, sys.version_info[:3]))
    assert back["cpu"] and isinstance(back["gpus"], list)
    assert back["git"] == {"commit": None, "dirty": None}  # tmp_path is no repository
    assert back["config_sha256"] == provenance.config_hash(config)
    assert provenance.config_hash({**config, "precision": "fp32"}) != back["config_sha256"]
    assert provenance.config_hash(dict(reversed(list(config.items())))) == back["config_sha256"]


def test_provenance_git_commit_and_dirty_flag(tmp_path):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "a.txt").write_text("one\n")
    git("add", "a.txt")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    (tmp_path / "untracked.txt").write_text("results are not the code\n")
    assert provenance.git_state(tmp_path) == {"commit": head, "dirty": False}
    (tmp_path / "a.txt").write_text("two\n")
    assert provenance.git_state(tmp_path) == {"commit": head, "dirty": True}


def test_gpu_names_come_from_nvidia_smi(tmp_path, monkeypatch):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'NVIDIA H100 80GB HBM3'\necho 'NVIDIA H100 80GB HBM3'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert provenance.gpu_names() == ["NVIDIA H100 80GB HBM3"] * 2
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert provenance.gpu_names() == []


def test_provenance_does_not_import_torch(tmp_path):
    code = ("import sys; from unlearnbench import provenance; "
            f"provenance.write_provenance({{}}, {str(tmp_path / 'p.json')!r}); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(provenance.__file__).parents[1])})
    assert proc.returncode == 0, proc.stderr
