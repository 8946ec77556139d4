"""A method's whole stage in one job (search.one_job, for small grids): its studies of
every search seed, the choice of the best trial, and the final unlearning runs of every
seed; each part writes the same files as its own job would (jobs/search.py,
jobs/unlearn.py), so only the number of process start-ups differs."""

from __future__ import annotations

from typing import Mapping, Sequence

from ..config import SearchSettings
from ..search import SearchError
from .search import search_job, select_best_job
from .unlearn import unlearn_job


def search_unlearn_job(ctx, model: str, method: str, search_seeds: Sequence[int], seeds: Sequence[int],
                       settings: SearchSettings, originals: Mapping[int, str], retrained_metrics: Sequence,
                       out_trials: Sequence, out_best, out_metrics: Sequence,
                       out_models: Sequence | None = None) -> list[dict]:
    """search_job for each search seed (in order, each with its seed's original and
    retrained metrics), select_best_job over their trials CSVs, then unlearn_job on
    every seed's original with the chosen trial. `originals` maps each seed (search
    seeds and final seeds) to its original's path."""
    if not len(search_seeds) == len(retrained_metrics) == len(out_trials):
        raise ValueError(f"{len(search_seeds)} search seeds need as many retrained metrics and trials paths")
    for seed, retrained, out_csv in zip(search_seeds, retrained_metrics, out_trials):
        print(f"search seed {seed}:", flush=True)
        search_job(ctx, model, method, int(seed), settings, originals[int(seed)], retrained, out_csv)
    try:
        select_best_job(out_trials, out_best, method, on_no_complete_trial=settings.on_no_complete_trial)
    except SearchError as err:
        raise SearchError(f"{err} In one job (search.one_job) the failed job's trials CSVs are removed with "
                          "its other outputs; the study journals beside them keep every trial, and this log "
                          "lists each trial's outcome above.") from None
    return unlearn_job(ctx, model, method, seeds, settings.method_params, [originals[int(s)] for s in seeds], out_metrics,
                       out_models, out_best)
