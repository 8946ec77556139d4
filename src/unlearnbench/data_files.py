"""What each dataset's files look like under `data_dir`, checked without torch.

The workflow checks them before any job starts (workflow/rules/common.smk), so a
missing dataset is named with its folder, the layout expected and the way to get it,
instead of a torchvision traceback from the first job that reads it.
"""

from __future__ import annotations

from pathlib import Path

from .catalog import FILES, TORCHVISION, UTKFACE_URL

UTKFACE_SOURCE = ("UTKFace has no download: get 'Aligned&Cropped Faces' (UTKFace.tar.gz, 23,708 images) "
                  "from {url} and extract it so that {folder} holds the "
                  "{{age}}_{{gender}}_{{race}}_{{date}}.jpg.chip.jpg files")


def _present(folder: Path, pattern: str) -> bool:
    return any(folder.glob(pattern)) if "*" in pattern else (folder / pattern).is_file()


def expected(name: str, data_dir) -> str:
    folder, files = FILES[name]
    return f"{Path(data_dir) / folder}/{{{','.join(files)}}}" if len(files) > 1 else f"{Path(data_dir) / folder}/{files[0]}"


def how_to_get(name: str, data_dir) -> str:
    if name == "utkface":
        return UTKFACE_SOURCE.format(url=UTKFACE_URL, folder=Path(data_dir) / FILES[name][0])
    return "set `download: true` (e.g. --config download=true) to let torchvision download it there"


def problem(name: str, data_dir, download: bool) -> str | None:
    """Why `name` cannot be read from `data_dir`, or None. A downloadable dataset with
    `download: true` is fetched by its `fetch_data` job."""
    if name not in FILES or (download and name in TORCHVISION):
        return None
    folder, files = FILES[name]
    where = Path(data_dir) / folder
    missing = [f for f in files if not _present(where, f)]
    if not missing:
        return None
    found = "it does not exist" if not where.is_dir() else f"{where} lacks {', '.join(missing)}"
    return f"dataset '{name}': expected {expected(name, data_dir)}, but {found}; {how_to_get(name, data_dir)}"


def problems(names, data_dir, download: bool) -> list[str]:
    return [p for p in (problem(n, data_dir, download) for n in dict.fromkeys(names)) if p]
