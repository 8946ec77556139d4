"""Small stand-in copies of the paper's five datasets, in their real on-disk formats.

    python -m unlearnbench.fixtures --out DIR [--train-per-class N] [--test-per-class M]

writes under DIR exactly what torchvision's dataset classes read (the MNIST and
FashionMNIST raw idx files, CIFAR-10's and CIFAR-100's pickled python batches, the
latter with fine and coarse labels) and UTKFace's `UTKFace/*.jpg` files named
`{age}_{gender}_{race}_{date}.jpg.chip.jpg`, including the three names of the real
archive that lack the race field. Every class is present in the train and the test
part; the images are class-dependent patterns plus noise, so a model can learn them a
little. Deterministic: the same arguments write the same bytes.

Test data for running the workflow end to end (README "Fixture datasets"), never a
substitute for the real sets. torchvision checks the MD5 of every CIFAR file against
the real archive's, which no stand-in can match: run them with `verify_checksums: false`
(configs/paper-fixture.yaml sets it; it is recorded in results/provenance.json).
"""

from __future__ import annotations

import argparse
import math
import pickle
import struct
import time
from pathlib import Path

import numpy as np

from .catalog import CIFAR100_COARSE

# The real archive's three names without a race field ({age}_{gender}_{date}); the
# reference keeps them (docs/reference.md "UTKFace's file list").
UTKFACE_MALFORMED = (
    "39_1_20170116174525125.jpg.chip.jpg",
    "61_1_20170109142408075.jpg.chip.jpg",
    "61_1_20170109150557335.jpg.chip.jpg",
)
# One age per UTKFace class (age // 20, capped at 4: 0-19, 20-39, 40-59, 60-79, 80+).
_UTKFACE_AGES = ((1, 19), (20, 39), (40, 59), (60, 79), (80, 116))


def _patterns(rng: np.random.Generator, n_classes: int, shape: tuple[int, ...]) -> np.ndarray:
    """One fixed random pattern per class, values 0..255."""
    return rng.integers(0, 256, size=(n_classes, *shape)).astype(np.float32)


def _images(rng: np.random.Generator, patterns: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The class pattern blended with noise: learnable, never identical."""
    noise = rng.integers(0, 256, size=(len(labels), *patterns.shape[1:])).astype(np.float32)
    return (0.6 * patterns[labels] + 0.4 * noise).round().clip(0, 255).astype(np.uint8)


def _labels(rng: np.random.Generator, n_classes: int, per_class: int) -> np.ndarray:
    return rng.permutation(np.repeat(np.arange(n_classes), per_class))


def _idx(path: Path, array: np.ndarray) -> None:
    """An idx file as in yann.lecun.com's MNIST: magic (0, 0, ubyte=0x08, ndim), big-endian dims."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist_like(out: Path, folder: str, rng: np.random.Generator, train_per_class: int,
                     test_per_class: int) -> int:
    raw = out / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    patterns = _patterns(rng, 10, (28, 28))
    n = []
    for prefix, per_class in (("train", train_per_class), ("t10k", test_per_class)):
        labels = _labels(rng, 10, per_class)
        _idx(raw / f"{prefix}-images-idx3-ubyte", _images(rng, patterns, labels))
        _idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
        n.append(len(labels))
    return n[0], n[1]


def _pickle(path: Path, obj: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def write_cifar10(out: Path, rng: np.random.Generator, train_per_class: int, test_per_class: int) -> int:
    folder = out / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    patterns = _patterns(rng, 10, (3, 32, 32))
    train = _labels(rng, 10, train_per_class)
    batches = np.array_split(np.arange(len(train)), 5)  # data_batch_1..5, as the archive
    for i, rows in enumerate(batches, start=1):
        labels = train[rows]
        _pickle(folder / f"data_batch_{i}", {
            "batch_label": f"training batch {i} of 5", "labels": labels.tolist(),
            "data": _images(rng, patterns, labels).reshape(len(labels), -1),
            "filenames": [f"fixture_{i}_{j}.png" for j in range(len(labels))]})
    test = _labels(rng, 10, test_per_class)
    _pickle(folder / "test_batch", {
        "batch_label": "testing batch 1 of 1", "labels": test.tolist(),
        "data": _images(rng, patterns, test).reshape(len(test), -1),
        "filenames": [f"fixture_test_{j}.png" for j in range(len(test))]})
    _pickle(folder / "batches.meta", {"label_names": [f"class{c}" for c in range(10)],
                                      "num_cases_per_batch": len(batches[0]), "num_vis": 3072})
    return len(train), len(test)


def write_cifar100(out: Path, rng: np.random.Generator, train_per_class: int, test_per_class: int) -> int:
    folder = out / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    coarse = np.asarray(CIFAR100_COARSE)  # the real archive's 20 super-classes of 5 fine classes
    # half of a fine class's pattern is its super-class's: a model that never saw a fine
    # class still tends to place it in its super-class, as on the real images (the subclass
    # scenario, docs/protocol.md §10.4)
    patterns = 0.5 * _patterns(rng, 20, (3, 32, 32))[coarse] + 0.5 * _patterns(rng, 100, (3, 32, 32))
    n = []
    for part, per_class in (("train", train_per_class), ("test", test_per_class)):
        fine = _labels(rng, 100, per_class)
        _pickle(folder / part, {
            "batch_label": f"{part}ing batch 1 of 1", "fine_labels": fine.tolist(),
            "coarse_labels": coarse[fine].tolist(),
            "data": _images(rng, patterns, fine).reshape(len(fine), -1),
            "filenames": [f"fixture_{part}_{j}.png" for j in range(len(fine))]})
        n.append(len(fine))
    _pickle(folder / "meta", {"fine_label_names": [f"class{c}" for c in range(100)],
                              "coarse_label_names": [f"superclass{c}" for c in range(20)]})
    return n[0], n[1]


def write_utkface(out: Path, rng: np.random.Generator, per_class: int) -> int:
    """`per_class` images per age class at the archive's 200x200, plus its three names
    without a race field."""
    from PIL import Image

    folder = out / "UTKFace"
    folder.mkdir(parents=True, exist_ok=True)
    patterns = _patterns(rng, 5, (200, 200, 3))
    names, labels = [], []
    for c, (lo, hi) in enumerate(_UTKFACE_AGES):
        for j in range(per_class):
            age = int(rng.integers(lo, hi + 1))
            gender, race = int(rng.integers(0, 2)), int(rng.integers(0, 5))
            names.append(f"{age}_{gender}_{race}_2017011{c}{j:08d}.jpg.chip.jpg")
            labels.append(c)
    names += UTKFACE_MALFORMED
    labels += [min(int(n.split("_", 1)[0]) // 20, 4) for n in UTKFACE_MALFORMED]
    for name, image in zip(names, _images(rng, patterns, np.array(labels))):
        Image.fromarray(image).save(folder / name, format="JPEG", quality=90)
    n_test = int(0.2 * len(names))  # the loader's cut (data.utkface_order)
    return len(names) - n_test, n_test


def split_sizes(n_train: int, n_test: int, val_fraction: float = 0.15, forget_fraction: float = 0.1) -> dict:
    """docs/protocol.md §2's split sizes (held-out parts round up, as data.make_splits)."""
    val = math.ceil(val_fraction * n_train)
    forget = math.ceil(forget_fraction * (n_train - val))
    return {"retain": n_train - val - forget, "forget": forget, "val": val, "test": n_test}


def planned(train_per_class: int, test_per_class: int, utkface_per_class: int) -> dict[str, tuple[int, int, int]]:
    """Per dataset: (train images per class, test images per class, UTKFace: images per
    age class). CIFAR-100 gets a tenth of the train images (rounded up) and a fifth of
    the test images (at least 1) per class: it has 100 classes. UTKFace has no official
    test part (the loader cuts 20 %)."""
    ten = (train_per_class, test_per_class, 0)
    return {"mnist": ten, "fashion_mnist": ten, "cifar10": ten,
            "cifar100": (-(-train_per_class // 10), max(1, test_per_class // 5), 0),
            "utkface": (0, 0, utkface_per_class)}


def _train_test(name: str, plan: tuple[int, int, int]) -> tuple[int, int]:
    if name == "utkface":
        n = 5 * plan[2] + len(UTKFACE_MALFORMED)
        return n - int(0.2 * n), int(0.2 * n)
    classes = 100 if name == "cifar100" else 10
    return classes * plan[0], classes * plan[1]


def write_all(out, train_per_class: int = 20, test_per_class: int = 5, utkface_per_class: int = 30,
              seed: int = 0) -> dict[str, tuple[int, int]]:
    """Every paper dataset under `out` (sizes: `planned`); returns (train, test) images per
    dataset. Refuses, before writing, sizes whose forget, val or test part would hold fewer
    examples than a membership attack needs."""
    from .attacks.mia import MIN_MEMBERS

    if min(train_per_class, test_per_class, utkface_per_class) < 1:
        raise ValueError("need at least one image per class in each part, got "
                         f"{train_per_class}, {test_per_class}, {utkface_per_class}")
    plan = planned(train_per_class, test_per_class, utkface_per_class)
    for name, p in plan.items():
        n_train, n_test = _train_test(name, p)
        small = {k: v for k, v in split_sizes(n_train, n_test).items() if k != "retain" and v < MIN_MEMBERS}
        if small:
            raise ValueError(f"{name}: {n_train} train / {n_test} test images give a {small} split, under the "
                             f"{MIN_MEMBERS} a membership attack needs; raise --train-per-class / --test-per-class")
    out = Path(out)
    rng = np.random.default_rng(seed)
    return {
        "mnist": write_mnist_like(out, "MNIST", rng, *plan["mnist"][:2]),
        "fashion_mnist": write_mnist_like(out, "FashionMNIST", rng, *plan["fashion_mnist"][:2]),
        "cifar10": write_cifar10(out, rng, *plan["cifar10"][:2]),
        "cifar100": write_cifar100(out, rng, *plan["cifar100"][:2]),
        "utkface": write_utkface(out, rng, plan["utkface"][2]),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m unlearnbench.fixtures", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="the data_dir to write (created if missing)")
    parser.add_argument("--train-per-class", type=int, default=20,
                        help="train images per class (CIFAR-100: a tenth); default 20")
    parser.add_argument("--test-per-class", type=int, default=5,
                        help="test images per class (CIFAR-100: a fifth); default 5")
    parser.add_argument("--utkface-per-class", type=int, default=30,
                        help="UTKFace images per age class (5 classes, plus the 3 names without a race field; "
                             "the loader takes 20 %% as test); default 30")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        counts = write_all(args.out, args.train_per_class, args.test_per_class, args.utkface_per_class, args.seed)
    except ValueError as err:
        parser.error(str(err))
    print(", ".join(f"{k} {a}+{b}" for k, (a, b) in counts.items()) + f" (train+test) images under {args.out} "
          f"in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
