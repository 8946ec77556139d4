"""Every dataset and model fact, once, free of torch: the workflow reads it while it parses
(names, cost and memory hints), before any job (and torch) starts; config.py (names, the
reference recipe), search.py (the batch-size limit), data.py (the specs) and models.py read
it too. data.py and models.py check at import that their registries hold exactly these
names (`check_registry`). Adding a dataset or a model: one entry here, one loader or
builder there."""

from __future__ import annotations

from dataclasses import dataclass

# CIFAR-100's 20 coarse classes: coarse class of each fine label 0..99 (the dataset's
# `coarse_labels`, as github.com/ryanchankh/cifar100coarse lists them).
CIFAR100_COARSE = (
    4, 1, 14, 8, 0, 6, 7, 7, 18, 3, 3, 14, 9, 18, 7, 11, 3, 9, 7, 11,
    6, 11, 5, 10, 7, 6, 13, 15, 3, 15, 0, 11, 1, 10, 12, 14, 16, 9, 11, 5,
    5, 19, 8, 8, 15, 13, 14, 17, 18, 10, 16, 4, 17, 4, 2, 0, 17, 4, 18, 17,
    10, 3, 2, 12, 12, 16, 12, 1, 9, 19, 2, 10, 0, 1, 16, 12, 9, 13, 15, 13,
    16, 19, 2, 4, 6, 19, 5, 5, 8, 19, 18, 1, 2, 15, 6, 0, 17, 8, 14, 13,
)

# docs/protocol.md §3: the reference recipe's settings shared by every dataset (config
# `training` overrides any of them per dataset).
RECIPE = {"lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4, "augment": True}


@dataclass(frozen=True)
class Dataset:
    name: str
    num_classes: int
    superclasses: tuple[int, ...] | None  # coarse class of each class (cifar100), else None
    image_size: int  # default square input size (config `training.<dataset>.image_size` replaces it)
    channels: int  # of the decoded pool (grey images are repeated to RGB)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    augmentation: str  # "flip", "crop_flip" or "none"
    source: str  # what the data directory must hold, for error messages
    pool_size: int  # official train + test (utkface: the Aligned & Cropped set)
    test_size: int  # the official test part (digits, utkface: the loader's 20 %)
    epochs: int  # reference training epochs (docs/protocol.md §3)
    batch_size: int  # reference training batch size
    max_search_batch: int | None  # search trials sampling a larger batch size are pruned (docs/protocol.md §5)
    cost: float  # run-time factor of its jobs (workflow/rules/common.smk, cluster resources)
    mem_mb: int  # memory of one of its jobs: the decoded pool is held in memory


@dataclass(frozen=True)
class Model:
    name: str
    cost: float  # run-time factor of its jobs (workflow/rules/common.smk, cluster resources)


_MNIST_NORM = ((0.1307,) * 3, (0.3081,) * 3)

DATASETS: dict[str, Dataset] = {d.name: d for d in (
    Dataset("digits", 10, None, 32, 3, *_MNIST_NORM, "flip", "scikit-learn", 1797, 359,
            epochs=50, batch_size=256, max_search_batch=None, cost=0.05, mem_mb=8000),
    Dataset("mnist", 10, None, 32, 3, *_MNIST_NORM, "flip", "MNIST", 70000, 10000,
            epochs=50, batch_size=256, max_search_batch=None, cost=0.4, mem_mb=8000),
    Dataset("fashion_mnist", 10, None, 32, 3, (0.2860,) * 3, (0.3530,) * 3, "flip", "FashionMNIST", 70000, 10000,
            epochs=50, batch_size=256, max_search_batch=None, cost=0.4, mem_mb=8000),
    Dataset("cifar10", 10, None, 32, 3, (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010), "crop_flip",
            "cifar-10-batches-py", 60000, 10000, epochs=182, batch_size=256, max_search_batch=None, cost=1.0,
            mem_mb=8000),
    Dataset("cifar100", 100, CIFAR100_COARSE, 32, 3, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762),
            "crop_flip", "cifar-100-python", 60000, 10000, epochs=182, batch_size=256, max_search_batch=None,
            cost=1.0, mem_mb=8000),
    # 224x224 images: the largest pool in memory
    Dataset("utkface", 5, None, 224, 3, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), "none", "UTKFace",
            23708, 4741, epochs=50, batch_size=128, max_search_batch=128, cost=2.0, mem_mb=24000),
)}

MODELS: dict[str, Model] = {m.name: m for m in (
    Model("resnet18", cost=1.0),
    Model("tinyvit11m", cost=3.0),
    Model("smallcnn", cost=0.2),
)}

# Where each dataset's files lie under data_dir: (folder, the files it must hold: names or
# one glob pattern), as torchvision's classes read them (UTKFace: its archive's folder).
_MNIST_FILES = tuple(f"{p}-{k}" for p in ("train", "t10k") for k in ("images-idx3-ubyte", "labels-idx1-ubyte"))
FILES: dict[str, tuple[str, tuple[str, ...]]] = {
    "mnist": ("MNIST/raw", _MNIST_FILES),
    "fashion_mnist": ("FashionMNIST/raw", _MNIST_FILES),
    "cifar10": ("cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta")),
    "cifar100": ("cifar-100-python", ("train", "test", "meta")),
    "utkface": ("UTKFace", ("*.jpg",)),
}
# torchvision's class of each dataset it downloads (`download: true`); utkface has none
TORCHVISION = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "cifar10": "CIFAR10", "cifar100": "CIFAR100"}
UTKFACE_URL = "https://susanqq.github.io/UTKFace/"

DATASET_NAMES = tuple(DATASETS)
MODEL_NAMES = tuple(MODELS)


def recipe(dataset: str) -> dict:
    """The reference training recipe of `dataset` (docs/protocol.md §3), before the config's overrides."""
    d = DATASETS[dataset]
    return {"epochs": d.epochs, "batch_size": d.batch_size, **RECIPE}


def check_registry(kind: str, defined, listed) -> None:
    """Raise when a registry and its list of names here disagree."""
    if set(defined) != set(listed):
        raise ImportError(f"the {kind} registry defines {sorted(defined)} but unlearnbench/catalog.py lists "
                          f"{sorted(listed)}: add a new {kind} to catalog.py")
