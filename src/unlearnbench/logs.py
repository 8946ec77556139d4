"""A job's log file. Kept free of torch and scikit-learn so that light jobs (selection,
tables, figures) start in a fraction of a second instead of ~3 s."""

from __future__ import annotations

import contextlib
import time
import traceback
from pathlib import Path


def _stamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


@contextlib.contextmanager
def logging_to(path):
    """Send stdout and stderr (tqdm progress included) of the job to its log file. A
    failure writes its traceback into the log, last, before it propagates (so that
    `snakemake --show-failed-logs` shows the error)."""
    if path is None:
        yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", buffering=1) as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        print(f"[{_stamp()}] start", flush=True)
        try:
            yield
        except BaseException:
            print(f"[{_stamp()}] failed", flush=True)
            traceback.print_exc(file=log)
            log.flush()
            raise
        print(f"[{_stamp()}] done", flush=True)
