"""The dataset and model registries' names, free of torch: the workflow checks a config
against them while it parses, before any job (and torch) starts. data.py and models.py
hold the registries themselves and check at import that they define exactly these."""

DATASET_NAMES = ("digits", "mnist", "fashion_mnist", "cifar10", "cifar100", "utkface")
MODEL_NAMES = ("resnet18", "tinyvit11m", "smallcnn")


def check_registry(kind: str, defined, listed) -> None:
    """Raise when a registry and its list of names here disagree."""
    if set(defined) != set(listed):
        raise ImportError(f"the {kind} registry defines {sorted(defined)} but unlearnbench/names.py lists "
                          f"{sorted(listed)}: add a new {kind}'s name to names.py")
