"""The benchmark's central invariant, on the real job functions (docs/protocol.md §2, §3).

A pool whose every image carries its own pool index in two pixels goes through the
jobs that write the splits and train the references; the examples a model is trained
on are then decoded back to pool indices. The retrained model must see exactly the
retain indices (no forget, val or test index), the original exactly retain + forget;
the splits must be disjoint and cover the pool as specified. That no method receives a
split it did not declare is tested in tests/test_methods.py
(test_method_reads_only_its_splits).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unlearnbench import config as ub_config
from unlearnbench import data
from unlearnbench.jobs import reference
from unlearnbench.jobs.context import Context

N_TRAIN, N_TEST = 300, 60


def indexed_pool(*_args, **_kwargs) -> data.Pool:
    """Random images, except that pixels (0, 0, 0) and (0, 0, 1) hold the pool index."""
    g = torch.Generator().manual_seed(0)
    n = N_TRAIN + N_TEST
    images = torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    index = torch.arange(n)
    images[:, 0, 0, 0], images[:, 0, 0, 1] = (index % 256).to(torch.uint8), (index // 256).to(torch.uint8)
    return data.Pool(images, torch.randint(0, 10, (n,), generator=g), n_train=N_TRAIN)


def decode(images: torch.Tensor) -> np.ndarray:
    images = images.cpu().long()
    return (images[:, 0, 0, 0] + 256 * images[:, 0, 0, 1]).numpy()


@pytest.fixture
def job_files(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "load_pool", indexed_pool)
    splits = tmp_path / "splits.npz"
    reference.write_splits("digits", splits)
    init = tmp_path / "init.safetensors"
    reference.write_init("digits", "smallcnn", 0, init)
    return splits, init


def test_splits_are_disjoint_and_cover_the_pool_as_specified(job_files):
    splits = data.read_splits(job_files[0])
    sets = {k: set(splits[k].tolist()) for k in data.SPLIT_NAMES}
    assert sum(map(len, sets.values())) == N_TRAIN + N_TEST  # no index twice
    assert set().union(*sets.values()) == set(range(N_TRAIN + N_TEST))
    assert sets["test"] == set(range(N_TRAIN, N_TRAIN + N_TEST))  # the official test part
    n_val = int(np.ceil(0.15 * N_TRAIN))
    n_forget = int(np.ceil(0.1 * (N_TRAIN - n_val)))
    assert {k: len(v) for k, v in sets.items()} == {"retain": N_TRAIN - n_val - n_forget, "forget": n_forget,
                                                     "val": n_val, "test": N_TEST}


@pytest.mark.parametrize("kind", ["retrained", "original"])
def test_references_train_on_exactly_their_indices(job_files, tmp_path, monkeypatch, kind):
    splits_path, init = job_files
    seen = []
    real_train = reference.train

    def spy(net, split, *args, **kwargs):
        seen.append((decode(split.images), split.labels.cpu().clone()))
        return real_train(net, split, *args, **kwargs)

    monkeypatch.setattr(reference, "train", spy)
    ctx = Context("digits", splits_path, device="cpu", precision="fp32")
    recipe = {**ub_config.recipe({}, "digits"), "epochs": 1}
    reference.train_reference(ctx, "smallcnn", kind, 0, recipe, init, tmp_path / "m.safetensors", tmp_path / "i.json",
                         tmp_path / "metrics.json")
    assert len(seen) == 1
    trained, labels = seen[0]
    splits = data.read_splits(splits_path)
    want = splits["retain"] if kind == "retrained" else np.concatenate([splits["retain"], splits["forget"]])
    assert sorted(trained.tolist()) == sorted(want.tolist())
    assert torch.equal(labels, indexed_pool().labels[torch.as_tensor(trained)])  # each image with its own label
    for other in ("val", "test") + (("forget",) if kind == "retrained" else ()):
        assert not set(trained.tolist()) & set(splits[other].tolist()), other
    # the evaluation splits are the split file's, in its order
    for name in data.SPLIT_NAMES:
        assert decode(ctx.splits[name].images).tolist() == splits[name].tolist()
