"""Atomic writes and safetensors checkpoints: failures name the file, nothing half-written."""

from __future__ import annotations

import pytest
import torch

from unlearnbench import io, models


def test_checkpoint_round_trip(tmp_path):
    net = models.build("smallcnn", 10, seed=0)
    io.save_state(tmp_path / "a.safetensors", net, {"seed": 0})
    other = io.load_state(tmp_path / "a.safetensors", models.build("smallcnn", 10, seed=1))
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), other.state_dict().values()))


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_checkpoint_names_its_path(tmp_path, damage):
    path = tmp_path / "model.safetensors"
    io.save_state(path, models.build("smallcnn", 10, seed=0))
    raw = path.read_bytes()
    path.write_bytes({"truncate": raw[: len(raw) // 2], "garbage": b"not a checkpoint" * 10, "empty": b""}[damage])
    with pytest.raises(io.CorruptFileError, match=str(path)):
        io.load_state(path, models.build("smallcnn", 10))


def test_checkpoint_of_another_model_is_refused(tmp_path):
    path = tmp_path / "m.safetensors"
    io.save_state(path, models.build("smallcnn", 10, seed=0))
    with pytest.raises(io.CorruptFileError, match="does not fit"):
        io.load_state(path, models.build("smallcnn", 5))


def test_missing_checkpoint_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.safetensors"):
        io.load_state(tmp_path / "nothing.safetensors", models.build("smallcnn", 10))


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out" / "x.json"
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_a_temporary_file_left_by_a_kill_goes_with_the_next_write(tmp_path):
    """SIGKILL cannot clean up: the job's rerun, the output's one writer, removes the
    leftover temporary files of that output (and of no other)."""
    target = tmp_path / "x.json"
    left = [tmp_path / ".x.json.k1ll3d.tmp", tmp_path / ".x.json.ab12cd.tmp"]
    other = tmp_path / ".y.json.k1ll3d.tmp"
    for path in (*left, other):
        path.write_text("half")
    io.write_json(target, {"a": 1})
    assert not any(p.exists() for p in left) and other.exists() and io.read_json(target) == {"a": 1}


def test_atomic_write_replaces_whole(tmp_path):
    target = tmp_path / "x.json"
    io.write_json(target, {"a": 1})
    io.write_json(target, {"b": 2})
    assert io.read_json(target) == {"b": 2}
    target.write_text("{broken")
    with pytest.raises(io.CorruptFileError, match="x.json"):
        io.read_json(target)


def test_corrupt_split_file_named(tmp_path):
    from unlearnbench import data

    path = tmp_path / "splits.npz"
    path.write_bytes(b"PK\x03\x04 broken zip")
    with pytest.raises(io.CorruptFileError, match="splits.npz"):
        data.read_splits(path)
    io.save_npz(path, retain=[1, 2])
    with pytest.raises(io.CorruptFileError, match="lacks forget, val, test"):
        data.read_splits(path)
