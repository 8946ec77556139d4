"""Dataset registry, decoding to an in-memory uint8 pool, and the fixed splits.

"Pool" = the official train set followed by the official test set (docs/protocol.md §1); every
split index points into it. Each dataset is decoded once per job into a uint8 tensor
of shape (N, 3, H, W); normalisation and augmentation happen batched (batches.py).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from . import catalog, data_files
from .catalog import DATASET_NAMES, check_registry

SPLIT_SEED = 123
SPLIT_NAMES = ("retain", "forget", "val", "test")


@dataclass(frozen=True)
class Pool:
    images: torch.Tensor  # uint8 (N, 3, H, W)
    labels: torch.Tensor  # int64 (N,)
    n_train: int  # the first n_train examples are the official train set


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    num_classes: int
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    augmentation: str  # "flip", "crop_flip" or "none"
    load: Callable[..., Pool]  # (root, download, image size, verify_checksums)
    source: str  # what the data directory must hold, for error messages


class DatasetMissingError(FileNotFoundError):
    pass


def _missing(name: str, root: Path, err: Exception | None = None) -> DatasetMissingError:
    return DatasetMissingError(
        f"dataset '{name}' not found: expected {data_files.expected(name, root)}. Put the files there, "
        f"or {data_files.how_to_get(name, root)}" + (f" ({err})" if err else "")
    )


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, H, W) uint8 -> (N, C, size, size) uint8, bilinear like torchvision's Resize."""
    if images.shape[-2:] == (size, size):
        return images
    x = F.interpolate(images.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x.round().clamp(0, 255).to(torch.uint8)


def _grey_to_rgb(images: torch.Tensor, size: int = 32) -> torch.Tensor:
    """(N, H, W) uint8 grey -> (N, 3, size, size) uint8, resized once from the native size."""
    return _resize(images.unsqueeze(1), size).expand(-1, 3, -1, -1).contiguous()


@functools.cache
def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits (images 0..16, targets), parsed once per process
    (the warm-start server parses them before it forks its jobs); read-only."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    for array in (bunch.images, bunch.target):
        array.setflags(write=False)
    return bunch.images, bunch.target


def load_digits(root: Path, download: bool, size: int = 32, verify_checksums: bool = True) -> Pool:
    """scikit-learn's bundled 8x8 digits: 0..16 grey levels, own 20 % test split."""
    images, target = digits_arrays()
    grey = torch.from_numpy(images * (255.0 / 16.0)).round().to(torch.uint8)
    labels = torch.from_numpy(target.astype(np.int64))
    order = np.random.RandomState(SPLIT_SEED).permutation(len(labels))
    n_test = int(0.2 * len(labels))
    order = np.concatenate([order[n_test:], order[:n_test]])  # train first, then test
    return Pool(_grey_to_rgb(grey[order], size), labels[order], n_train=len(labels) - n_test)


def _unchecked(cls):
    """`cls` (torchvision's CIFAR10 or CIFAR100) reading the same files without their
    MD5s (`verify_checksums: false`, for stand-in data: python -m unlearnbench.fixtures):
    torchvision's check_integrity accepts any existing file when the MD5 is None."""
    return type(f"Unchecked{cls.__name__}", (cls,), {
        "train_list": [[f, None] for f, _ in cls.train_list],
        "test_list": [[f, None] for f, _ in cls.test_list],
        "meta": {**cls.meta, "md5": None},
    })


def _torchvision_sets(cls_name: str, name: str, root: Path, download: bool, verify_checksums: bool = True) -> list:
    """The torchvision dataset's official [train, test] parts."""
    # Imported here: torchvision takes over a second to import, which digits jobs skip.
    from torchvision import datasets

    cls = getattr(datasets, cls_name)
    if not verify_checksums and hasattr(cls, "train_list"):
        cls = _unchecked(cls)
    parts = []
    for train in (True, False):
        try:
            ds = cls(root=str(root), train=train, download=download)
        except RuntimeError as err:
            raise _missing(name, root, err) from err
        parts.append(ds)
    return parts


def _mnist_like(cls_name: str, name: str) -> Callable[[Path, bool, int], Pool]:
    def load(root: Path, download: bool, size: int = 32, verify_checksums: bool = True) -> Pool:
        train, test = _torchvision_sets(cls_name, name, root, download)
        images = torch.cat([train.data, test.data])
        labels = torch.cat([train.targets, test.targets]).long()
        return Pool(_grey_to_rgb(images, size), labels, n_train=len(train.targets))

    return load


def _cifar(cls_name: str, name: str) -> Callable[[Path, bool, int], Pool]:
    def load(root: Path, download: bool, size: int = 32, verify_checksums: bool = True) -> Pool:
        train, test = _torchvision_sets(cls_name, name, root, download, verify_checksums)
        images = torch.from_numpy(np.concatenate([train.data, test.data])).permute(0, 3, 1, 2)
        labels = torch.tensor(list(train.targets) + list(test.targets), dtype=torch.int64)
        return Pool(_resize(images, size).contiguous(), labels, n_train=len(train.targets))

    return load


# The reference keeps every *.jpg and reads the age before the first "_": the real
# archive's 3 names without a race field (e.g. 39_1_20170116174525125.jpg.chip.jpg) count.
UTKFACE_NAME = re.compile(r"^(\d+)_.*\.jpg$")


def utkface_label(file_name: str) -> int:
    age = int(file_name.split("_", 1)[0])
    return min(max(age // 20, 0), 4)


def utkface_files(folder: Path) -> list[str]:
    """The image names, sorted: the reference lists the folder in the file system's
    order (Path.iterdir), which differs between machines; sorted names make the
    partition a function of the file set (docs/reference.md)."""
    names = sorted(p.name for p in folder.glob("*.jpg")) if folder.is_dir() else []
    bad = [n for n in names if not UTKFACE_NAME.match(n)]
    if bad:
        raise ValueError(f"{folder}: {len(bad)} file(s) without a leading age, e.g. {bad[0]} "
                         "(UTKFace names are {age}_{gender}_{race}_{date}.jpg.chip.jpg)")
    return names


def utkface_order(n: int) -> np.ndarray:
    """Train positions then test positions, as the reference's split: a permutation by
    NumPy's default_rng(123), the first 20 % of it the test part."""
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    n_test = int(0.2 * n)
    return np.concatenate([order[n_test:], order[:n_test]])


def load_utkface(root: Path, download: bool, size: int = 224, verify_checksums: bool = True) -> Pool:
    """UTKFace 'Aligned & Cropped Faces': {age}_{gender}_{race}_{date}.jpg.chip.jpg."""
    from PIL import Image, UnidentifiedImageError

    folder = root / "UTKFace"
    names = utkface_files(folder)
    if not names:
        raise _missing("utkface", root)
    images = np.empty((len(names), size, size, 3), dtype=np.uint8)
    for i, name in enumerate(names):
        try:
            with Image.open(folder / name) as img:
                images[i] = np.asarray(img.convert("RGB").resize((size, size), Image.BILINEAR))
        except (OSError, UnidentifiedImageError) as err:
            raise RuntimeError(f"cannot decode UTKFace image {folder / name}: {err}") from err
    labels = torch.tensor([utkface_label(n) for n in names], dtype=torch.int64)
    order = torch.from_numpy(utkface_order(len(names)))
    return Pool(torch.from_numpy(images).permute(0, 3, 1, 2)[order].contiguous(), labels[order],
                n_train=len(names) - int(0.2 * len(names)))


# each dataset's loader; its other facts are in catalog.py
LOADERS: dict[str, Callable[..., Pool]] = {
    "digits": load_digits,
    "mnist": _mnist_like("MNIST", "mnist"),
    "fashion_mnist": _mnist_like("FashionMNIST", "fashion_mnist"),
    "cifar10": _cifar("CIFAR10", "cifar10"),
    "cifar100": _cifar("CIFAR100", "cifar100"),
    "utkface": load_utkface,
}


def _registry() -> dict[str, DatasetSpec]:
    return {name: DatasetSpec(name, d.num_classes, d.image_size, d.mean, d.std, d.augmentation, LOADERS[name],
                              d.source) for name, d in catalog.DATASETS.items() if name in LOADERS}


check_registry("dataset", LOADERS, DATASET_NAMES)


def get_spec(name: str, image_size: int | None = None) -> DatasetSpec:
    """The dataset's spec; `image_size` (config `training.<dataset>.image_size`) replaces
    its input size (docs/protocol.md §1 gives the default)."""
    specs = _registry()
    if name not in specs:
        raise KeyError(f"unknown dataset '{name}'; valid: {', '.join(specs)}")
    if image_size is not None and int(image_size) < 1:
        raise ValueError(f"image_size must be a positive number of pixels, got {image_size}")
    return specs[name] if image_size is None else dataclasses.replace(specs[name], image_size=int(image_size))


def load_pool(name: str, data_dir: str | Path = "data", download: bool = False, image_size: int | None = None,
              verify_checksums: bool = True) -> Pool:
    """The decoded pool, resized once from the native images to the spec's (or the
    given) square input size. `verify_checksums: false` reads CIFAR files whose MD5s are
    not the real archive's (stand-in data); every other dataset has no checksum to skip."""
    spec = get_spec(name, image_size)
    return spec.load(Path(data_dir), download, spec.image_size, verify_checksums)


def fetch(name: str, data_dir: str | Path = "data", download: bool = False, verify_checksums: bool = True) -> dict:
    """Download `name` into `data_dir` where needed (the workflow's one fetch_data job per
    dataset; no other job downloads) and check it can be opened; returns what was found."""
    root = Path(data_dir)
    if name in catalog.TORCHVISION:
        train, test = _torchvision_sets(catalog.TORCHVISION[name], name, root, download, verify_checksums)
        sizes = {"train": len(train), "test": len(test)}
    elif name == "utkface":
        names = utkface_files(root / "UTKFace")
        if not names:
            raise _missing(name, root)
        sizes = {"images": len(names), "without_race_field": sum(n.count("_") < 3 for n in names)}
    else:
        sizes = {}
    folder = catalog.FILES.get(name, ("", ()))[0]
    return {"dataset": name, "folder": str(root / folder) if folder else None, "download": download,
            "verify_checksums": verify_checksums, **sizes}


def make_splits(n_train: int, n_pool: int, val_fraction: float = 0.15, forget_fraction: float = 0.1,
                seed: int = SPLIT_SEED) -> dict[str, np.ndarray]:
    """docs/protocol.md §2: test = official test; 15 % of train is val; 10 % of the rest is forget."""
    from sklearn.model_selection import train_test_split

    train_idx = np.arange(n_train, dtype=np.int64)
    d_idx, val = train_test_split(train_idx, test_size=val_fraction, random_state=seed, shuffle=True)
    retain, forget = train_test_split(d_idx, test_size=forget_fraction, random_state=seed, shuffle=True)
    test = np.arange(n_train, n_pool, dtype=np.int64)
    return {"retain": np.sort(retain), "forget": np.sort(forget), "val": np.sort(val), "test": test}


def read_splits(path, n_train: int | None = None, n_pool: int | None = None) -> dict[str, np.ndarray]:
    """The split file's index arrays, validated (`check_splits`); give the dataset's
    sizes where it is loaded."""
    from .io import load_npz

    arrays = load_npz(path)
    check_splits(arrays, path, n_train, n_pool)
    return arrays


def check_splits(arrays: dict, path, n_train: int | None = None, n_pool: int | None = None) -> None:
    """Raise CorruptFileError naming `path` unless every role is a 1-D array of distinct
    integer indices, the roles are pairwise disjoint, retain/forget/val index the
    training part [0, n_train) and test the rest [n_train, n_pool), and the sizes the
    file records (n_train, n_pool; files written before they were recorded have none)
    equal the dataset's when those are given."""
    from .io import CorruptFileError

    missing = [k for k in SPLIT_NAMES if k not in arrays]
    if missing:
        raise CorruptFileError(f"{path}: split file lacks {', '.join(missing)}")
    for key, given in (("n_train", n_train), ("n_pool", n_pool)):
        if key in arrays and given is not None and int(arrays[key]) != given:
            raise CorruptFileError(f"{path} records {key} {int(arrays[key])}, but the dataset has {given}: "
                                   "it was made for other data; delete it to redraw")
    n_train = int(arrays["n_train"]) if "n_train" in arrays else n_train
    n_pool = int(arrays["n_pool"]) if "n_pool" in arrays else n_pool
    for role in SPLIT_NAMES:
        a = arrays[role]
        if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
            raise CorruptFileError(f"{path}: {role} is not a 1-D array of indices ({a.dtype}, shape {a.shape})")
        values, counts = np.unique(a, return_counts=True)
        if (counts > 1).any():
            raise CorruptFileError(f"{path}: {role} repeats {int((counts > 1).sum())} index(es), e.g. "
                                   f"{values[counts > 1][:5].tolist()}")
        low, high = (n_train, n_pool) if role == "test" else (0, n_train)
        low = 0 if low is None else low
        outside = a[(a < low) | ((a >= high) if high is not None else False)]
        if len(outside):
            raise CorruptFileError(f"{path}: {len(outside)} {role} index(es) outside [{low}, {high}), e.g. "
                                   f"{np.sort(outside)[:5].tolist()}")
    for i, first in enumerate(SPLIT_NAMES):
        for second in SPLIT_NAMES[i + 1:]:
            both = np.intersect1d(arrays[first], arrays[second])
            if len(both):
                raise CorruptFileError(f"{path}: {len(both)} index(es) are in both {first} and {second}, e.g. "
                                       f"{both[:5].tolist()}; the roles must be disjoint")
