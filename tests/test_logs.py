"""A failing job's log ends with its traceback (what `snakemake --show-failed-logs` shows)."""

from __future__ import annotations

import pytest

from unlearnbench.logs import logging_to


def job_that_fails():
    print("working")
    raise ValueError("the data file is corrupt")


def test_traceback_is_the_last_thing_in_the_log(tmp_path):
    log = tmp_path / "logs" / "job.log"
    with pytest.raises(ValueError, match="corrupt"):
        with logging_to(log):
            job_that_fails()
    lines = log.read_text().rstrip("\n").splitlines()
    assert lines[0].endswith("start") and "working" in lines
    assert lines[-1] == "ValueError: the data file is corrupt"
    tb = lines.index("Traceback (most recent call last):")
    assert lines[tb - 1].endswith("failed") and any("job_that_fails" in line for line in lines[tb:])


def test_a_successful_job_ends_with_done(tmp_path):
    log = tmp_path / "job.log"
    with logging_to(log):
        print("working")
    lines = log.read_text().splitlines()
    assert lines[1] == "working" and lines[-1].endswith("done") and "Traceback" not in log.read_text()
