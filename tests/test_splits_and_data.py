"""Datasets through the real torchvision code paths on fixture files in the real
on-disk formats, and the fixed splits of docs/protocol.md §2."""

from __future__ import annotations

import pickle
import struct

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import datasets as tv

from unlearnbench import data

from oracles import split_sizes


@pytest.mark.parametrize(
    "n_train, n_test, expected",
    [
        (50_000, 10_000, {"retain": 38_250, "forget": 4_250, "val": 7_500, "test": 10_000}),  # cifar10/100
        (60_000, 10_000, {"retain": 45_900, "forget": 5_100, "val": 9_000, "test": 10_000}),  # (fashion_)mnist
        (23_708 - int(0.2 * 23_708), int(0.2 * 23_708),
         {"retain": 14_508, "forget": 1_613, "val": 2_846, "test": 4_741}),  # utkface
    ],
)
def test_paper_split_sizes(n_train, n_test, expected):
    assert split_sizes(n_train, n_test) == expected


def test_make_splits_sizes_partition_and_determinism():
    splits = data.make_splits(5_000, 6_000)
    sizes = {k: len(v) for k, v in splits.items()}
    assert sizes == split_sizes(5_000, 1_000)
    train_parts = np.concatenate([splits["retain"], splits["forget"], splits["val"]])
    assert sorted(train_parts.tolist()) == list(range(5_000))  # disjoint and covering
    assert splits["test"].tolist() == list(range(5_000, 6_000))
    again = data.make_splits(5_000, 6_000)
    assert all(np.array_equal(splits[k], again[k]) for k in splits)
    assert not np.array_equal(splits["forget"], data.make_splits(5_000, 6_000, seed=7)["forget"])


def test_digits_pool_is_embedded_and_like_mnist():
    pool = data.load_pool("digits")
    assert pool.images.shape == (1_797, 3, 32, 32) and pool.images.dtype == torch.uint8
    assert data.get_spec("digits").image_size == 32  # docs/protocol.md §1: like mnist
    assert pool.n_train == 1_797 - int(0.2 * 1_797)
    assert torch.equal(pool.images[:, 0], pool.images[:, 2])  # grey replicated
    assert int(pool.images.max()) == 255 and set(pool.labels.tolist()) == set(range(10))


def _write_idx(path, array: np.ndarray, magic: int) -> None:
    with open(path, "wb") as fh:
        fh.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape))
        fh.write(array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("name, cls", [("mnist", tv.MNIST), ("fashion_mnist", tv.FashionMNIST)])
def test_mnist_like_from_idx_files(tmp_path, name, cls):
    raw = tmp_path / cls.__name__ / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 30), ("t10k", 10)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), 2051)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10, 2049)
    pool = data.load_pool(name, tmp_path)
    assert pool.images.shape == (40, 3, 32, 32) and pool.n_train == 30
    assert pool.labels.tolist() == [i % 10 for i in range(30)] + [i % 10 for i in range(10)]


def _cifar_files(root, folder, files, label_key, num_classes, rng):
    """Pickled dicts as torchvision reads them (it unpickles with encoding="latin1")."""
    base = root / folder
    base.mkdir(parents=True)
    for name, n in files:
        batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 label_key: list(rng.integers(0, num_classes, n)), "filenames": ["x"] * n}
        with open(base / name, "wb") as fh:
            pickle.dump(batch, fh)
    return base


@pytest.fixture
def skip_md5(monkeypatch):
    """torchvision's CIFAR classes check each file's MD5: bypass only that check (the
    files must still exist)."""
    import os

    from torchvision.datasets import cifar

    monkeypatch.setattr(cifar, "check_integrity", lambda path, md5=None: os.path.isfile(path))


def test_cifar10_from_python_batches(tmp_path, skip_md5):
    rng = np.random.default_rng(0)
    files = [(f"data_batch_{i}", 4) for i in range(1, 6)] + [("test_batch", 5)]
    base = _cifar_files(tmp_path, "cifar-10-batches-py", files, "labels", 10, rng)
    with open(base / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": [str(i) for i in range(10)]}, fh)
    pool = data.load_pool("cifar10", tmp_path)
    assert pool.images.shape == (25, 3, 32, 32) and pool.n_train == 20
    with open(base / "data_batch_1", "rb") as fh:
        first = pickle.load(fh)
    assert torch.equal(pool.images[0], torch.from_numpy(first["data"][0].reshape(3, 32, 32)))


def test_cifar100_from_python_files(tmp_path, skip_md5):
    rng = np.random.default_rng(0)
    base = _cifar_files(tmp_path, "cifar-100-python", [("train", 12), ("test", 6)], "fine_labels", 100, rng)
    with open(base / "meta", "wb") as fh:
        pickle.dump({"fine_label_names": [str(i) for i in range(100)]}, fh)
    pool = data.load_pool("cifar100", tmp_path)
    assert pool.images.shape == (18, 3, 32, 32) and pool.n_train == 12
    assert data.get_spec("cifar100").num_classes == 100


def test_utkface_from_jpg_names(tmp_path):
    folder = tmp_path / "UTKFace"
    folder.mkdir()
    ages = [3, 19, 20, 45, 61, 85, 99, 30, 50, 70]
    for i, age in enumerate(ages):
        Image.new("RGB", (20, 20), (i * 20, 0, 0)).save(folder / f"{age}_0_{i % 4}_2017011{i}.jpg.chip.jpg")
    (folder / "notes.txt").write_text("ignored")
    pool = data.load_pool("utkface", tmp_path)
    assert pool.images.shape == (10, 3, 224, 224) and pool.n_train == 8
    assert sorted(pool.labels.tolist()) == sorted(min(a // 20, 4) for a in ages)
    assert [data.utkface_label(n) for n in ("3_0_0_1.jpg", "20_1_2_3.jpg", "99_0_0_1.jpg")] == [0, 1, 4]


@pytest.mark.parametrize("name, expected", [("cifar10", "cifar-10-batches-py"), ("mnist", "MNIST"),
                                            ("utkface", "UTKFace")])
def test_missing_dataset_names_path_and_switch(tmp_path, name, expected):
    with pytest.raises(data.DatasetMissingError) as err:
        data.load_pool(name, tmp_path / "nowhere")
    message = str(err.value)
    assert str(tmp_path / "nowhere") in message and expected in message
    # UTKFace has no download: its message says where to get it instead
    switch = "susanqq.github.io/UTKFace" if name == "utkface" else "download: true"
    assert switch in message and (name == "utkface") == ("download: true" not in message)


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(KeyError, match="valid: digits, mnist"):
        data.get_spec("imagenet")


def test_split_files_are_validated_naming_the_file_and_the_overlap(tmp_path):
    """A well-formed splits.npz whose forget indices were also added to
    retain trained the "retrained" model on the forget set, silently. Every read checks
    disjoint roles, ranges and the recorded sizes."""
    from unlearnbench import io
    from unlearnbench.jobs import reference
    from unlearnbench.jobs.context import Context

    path = tmp_path / "results" / "digits" / "splits.npz"
    reference.write_splits("digits", path)
    good = io.load_npz(path)
    assert int(good["n_train"]) == data.load_pool("digits").n_train
    Context("digits", path, device="cpu", threads=1)  # a good file is accepted

    def broken(**changes):
        bad = tmp_path / f"bad{len(list(tmp_path.glob('bad*')))}.npz"
        io.save_npz(bad, **{**good, **changes})
        return bad

    cases = [
        (broken(retain=np.concatenate([good["retain"], good["forget"]])),
         rf"bad0.npz: {len(good['forget'])} index\(es\) are in both retain and forget, e.g. "
         rf"\[{good['forget'][0]}, "),
        (broken(val=np.append(good["val"], good["n_train"] + 5)), r"1 val index\(es\) outside \[0, 1438\)"),
        (broken(test=good["test"][:-1] - 1), r"test index\(es\) outside \[1438, 1797\)"),
        (broken(forget=np.append(good["forget"], good["forget"][:1])), r"forget repeats 1 index"),
        (broken(n_pool=np.int64(5000)), r"records n_pool 5000, but the dataset has 1797"),
        (broken(forget=good["forget"].astype(float)), r"forget is not a 1-D array of indices"),
    ]
    for bad, message in cases:
        with pytest.raises(io.CorruptFileError, match=message):
            Context("digits", bad, device="cpu", threads=1)
    # without recorded sizes (an older file), the dataset's sizes still bound the indices
    old = {k: good[k] for k in data.SPLIT_NAMES}
    io.save_npz(tmp_path / "old.npz", **{**old, "val": np.append(old["val"], 1797)})
    with pytest.raises(io.CorruptFileError, match=r"old.npz: 1 val index\(es\) outside \[0, 1438\)"):
        Context("digits", tmp_path / "old.npz", device="cpu", threads=1)
