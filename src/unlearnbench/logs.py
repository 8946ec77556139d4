"""A job's log file. Kept free of torch and scikit-learn so that light jobs (selection,
tables, figures) start in a fraction of a second instead of ~3 s."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path


@contextlib.contextmanager
def logging_to(path):
    """Send stdout and stderr (tqdm progress included) of the job to its log file."""
    if path is None:
        yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", buffering=1) as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        print(f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] start", flush=True)
        yield
        print(f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] done", flush=True)
