"""Hyperparameter search engine (docs/protocol.md §5): the four objectives, a generic resumable
Optuna study runner, the per-trial table, the method defaults moved into a search space,
and the best-trial selection. Its one user is the study runner of unlearnbench/jobs/search.py
(`run_search`, shared by the main search and U-LiRA's, jobs/ulira.py); the table of the
chosen settings is report/hyperparameters.py's write_hyperparameters_table.

The engine knows nothing about unlearning: it takes `space(trial, epoch_cap) -> hp`
and `objective(hp) -> 4 floats` (or `objective(hp, trial)` when the objective needs the
trial, e.g. its number).

Reproducibility: the sampler of trial number n is an NSGA-III sampler seeded from
(sampler_seed, n), and the search job unlearns trial n with a seed derived from
(model seed, n). A study resumed from its journal therefore never replays the random
draws of the trials it already holds, and the same config and seed give the same trials.
A trial that a kill left RUNNING is put back to WAITING and rerun as the same trial (same
number, the parameters it already drew, the same seeds), so a killed and resumed study
holds the trials of an uninterrupted one.

Failed evaluations (docs/reference.md S2): as in the reference's objectives.py, an
evaluation that fails (EvaluationFailed, e.g. a diverged model) is a COMPLETE trial with
infinite objectives that counts towards the budget; a failure of the unlearning itself
is FAIL and does not count.
"""

from __future__ import annotations

import inspect
import math
import sys
import time
import traceback
import warnings
import re
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState
from tqdm import tqdm

# The engine needs only optuna, numpy and pandas (read_trials imports io when called), so
# that importing this module (U-LiRA's search, a subprocess in the tests) stays light.

OBJECTIVES = ("retain_gap", "forget_gap", "val_gap", "mia_gap")
"""Column names of the 4 objectives, all minimised (docs/protocol.md §5)."""

ATTEMPTS_PER_TRIAL = 3
"""A study gives up after n_trials x this many trials (failed and pruned included; the
reference retries without limit)."""

PARAM_PREFIX = "params_"
DEFAULTS_NUMBER = -1
"""Trial number of the method defaults' row in a search CSV (search.include_defaults)."""
DEFAULTS_ATTR = "defaults"
START_FROM_DEFAULTS = "method defaults moved into the search space (epochs capped at E_max)"
"""user_attrs_start of trial 0 under search.start_from_defaults."""
ATTR_PREFIX = "user_attrs_"
# A study's per-trial CSV: results/{dataset}/{model}/search/{method}/seed{seed}.csv
TRIALS_PATH = re.compile(r"(?P<dataset>[^/]+)/(?P<model>[^/]+)/search/(?P<method>[^/]+)/seed(?P<seed>\d+)\.csv$")


class SearchError(RuntimeError):
    """A study could not reach its budget of complete trials."""


class EvaluationFailed(RuntimeError):
    """The objective's evaluation of an unlearned model failed (e.g. the model diverged):
    the trial is COMPLETE with infinite objectives (docs/reference.md S2)."""


# ----------------------------------------------------------------------------- objectives


def objectives(unlearned: Mapping, retrained: Mapping) -> tuple[float, float, float, float]:
    """(1/3)|RA_u - RA_R|, (1/3)|FA_u - FA_R|, (1/3)|VA_u - VA_R|, 2|MIA_val_u - 0.5|.

    `unlearned` and `retrained` are metrics dicts as the jobs write them (keys
    retain_acc, forget_acc, val_acc, val_mia). The last term is 1 - Indisc(val MIA)."""
    gaps = tuple(abs(float(unlearned[k]) - float(retrained[k])) / 3.0
                 for k in ("retain_acc", "forget_acc", "val_acc"))
    return (*gaps, 2.0 * abs(float(unlearned["val_mia"]) - 0.5))


def derived_seed(seed: int, number: int) -> int:
    """A 32-bit seed derived from (seed, trial number), independent across numbers."""
    return int(np.random.SeedSequence([int(seed), int(number)]).generate_state(1)[0])


# ----------------------------------------------------------------------------- the study


def _repair_journal(path: Path, log: Callable) -> None:
    """Drop a torn last line (a write cut by a kill) so that appending stays valid."""
    if not path.exists() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if data.endswith(b"\n"):
        return
    keep = data.rfind(b"\n") + 1
    log(f"journal {path}: dropping a torn last record ({len(data) - keep} bytes)")
    with open(path, "r+b") as fh:
        fh.truncate(keep)


def _storage(path: Path) -> optuna.storages.JournalStorage:
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))


def open_study(storage_path, study_name: str, n_objectives: int = len(OBJECTIVES),
               metric_names: Sequence[str] | None = OBJECTIVES, fingerprint: str | None = None,
               log: Callable = print) -> optuna.Study:
    """Create or resume the study `study_name` in the journal file `storage_path`.

    `fingerprint` identifies what the trials were computed from (inputs, settings): a
    journal whose study carries another fingerprint is stale and is started afresh.
    One writer per journal is assumed: a lock file left by a killed writer is removed."""
    path = Path(storage_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = Path(str(path) + ".lock")
    if lock.exists() or lock.is_symlink():
        log(f"removing the stale lock {lock}")
        lock.unlink()
    _repair_journal(path, log)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning, module="optuna")
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning, module=__name__)
    directions = ["minimize"] * n_objectives
    study = optuna.create_study(storage=_storage(path), study_name=study_name, directions=directions,
                                load_if_exists=True)
    stale = None
    if [d.name for d in study.directions] != [d.upper() for d in directions]:
        stale = "its objectives differ"
    elif fingerprint is not None and study.user_attrs.get("fingerprint", fingerprint) != fingerprint:
        stale = "its inputs or settings changed"
    if stale:
        log(f"journal {path}: {stale}; starting the study afresh")
        path.unlink()
        Path(str(path) + ".lock").unlink(missing_ok=True)
        study = optuna.create_study(storage=_storage(path), study_name=study_name, directions=directions)
    if fingerprint is not None and "fingerprint" not in study.user_attrs:
        study.set_user_attr("fingerprint", fingerprint)
    if metric_names is not None and study.metric_names is None:
        study.set_metric_names(list(metric_names))
    return study


def _requeue_interrupted(study: optuna.Study, log: Callable) -> None:
    """Trials left RUNNING by a killed run (one writer per journal) go back to WAITING, so
    the next ask() reruns each as the same trial: its number (hence its seeds) and the
    parameters it already drew (Optuna answers a suggest_* from the trial's stored
    params) are kept."""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_state_values(trial._trial_id, TrialState.WAITING)
        log(f"trial {trial.number}: interrupted by a previous run, rerun as the same trial")


def count(study: optuna.Study, state: TrialState = TrialState.COMPLETE) -> int:
    return len(study.get_trials(deepcopy=False, states=(state,)))


def _takes_trial(objective: Callable) -> bool:
    try:
        inspect.signature(objective).bind(None, None)
        return True
    except TypeError:
        return False
    except ValueError:  # no signature (builtins): call with hp only
        return False


def run_study(objective: Callable, space: Callable, n_trials: int, storage_path, study_name: str,
              sampler_seed: int, epoch_cap: int, progress: bool = True, *, max_attempts: int | None = None,
              metric_names: Sequence[str] | None = OBJECTIVES, fingerprint: str | None = None,
              enqueue: Sequence[Mapping] = (), log: Callable = print) -> optuna.Study:
    """Run (or resume) a multi-objective study until it holds `n_trials` COMPLETE trials.

    Each trial: hp = space(trial, epoch_cap); values = objective(hp) (or objective(hp,
    trial) if it takes two arguments); every value is minimised. A trial whose objective
    raises EvaluationFailed, or returns a non-finite value, is COMPLETE with infinite
    values and counts towards the budget (the reference's, docs/reference.md S2); one
    whose objective raises anything else is FAIL and optuna.TrialPruned makes it PRUNED,
    neither counted; the reason is in the user attribute "reason".
    The study lives in a JournalFileBackend at `storage_path` and is resumed from it.
    Gives up with SearchError once the study holds `max_attempts` (default n_trials x 3)
    trials without reaching the budget. `enqueue`: parameter sets (e.g. the method
    defaults) that a newly created study evaluates first, as trials 0, 1, ...; each may
    carry user attributes under the key "user_attrs". One writer per journal is assumed."""
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    max_attempts = max_attempts or n_trials * ATTEMPTS_PER_TRIAL
    n_objectives = len(metric_names) if metric_names is not None else len(OBJECTIVES)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if progress and log is print:  # keep log lines apart from the progress bar
        def log(message):
            tqdm.write(message, file=sys.stderr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = open_study(storage_path, study_name, n_objectives, metric_names, fingerprint, log)
        _requeue_interrupted(study, log)
        if not study.get_trials(deepcopy=False):
            for params in enqueue:
                params = dict(params)
                study.enqueue_trial(params, user_attrs=params.pop("user_attrs", None) or {})
        with_trial = _takes_trial(objective)
        done = count(study)
        if done:
            log(f"study {study_name}: resuming with {done} complete of {len(study.trials)} trials")
        bar = tqdm(total=n_trials, initial=min(done, n_trials), desc=study_name, file=sys.stderr,
                   disable=not progress, unit="trial", dynamic_ncols=True)
        try:
            while done < n_trials:
                trials = study.get_trials(deepcopy=False)
                waiting = [t.number for t in trials if t.state == TrialState.WAITING]
                if len(trials) - len(waiting) >= max_attempts:
                    raise SearchError(_give_up_message(study, study_name, n_trials, max_attempts, storage_path))
                number = min(waiting) if waiting else len(trials)
                state = _one_trial(study, objective, space, epoch_cap, sampler_seed, number, n_objectives,
                                   with_trial, log)
                if state == TrialState.COMPLETE:
                    done += 1
                    bar.update(1)
                bar.set_postfix(failed=count(study, TrialState.FAIL), pruned=count(study, TrialState.PRUNED))
        finally:
            bar.close()
    return study


def _one_trial(study, objective, space, epoch_cap, sampler_seed, number, n_objectives, with_trial, log):
    study.sampler = optuna.samplers.NSGAIIISampler(seed=derived_seed(sampler_seed, number))
    trial = study.ask()
    if trial.number != number:  # another writer: seeds would no longer follow numbers
        raise SearchError(f"trial number {trial.number}, expected {number}: is another process using "
                          "this journal?")
    start = time.perf_counter()
    try:
        hp = space(trial, epoch_cap)
        values = objective(hp, trial) if with_trial else objective(hp)
        values = [float(v) for v in values]
    except optuna.TrialPruned as err:
        return _finish(study, trial, TrialState.PRUNED, None, f"pruned: {err}", start, log)
    except EvaluationFailed as err:
        log(traceback.format_exc().rstrip())
        return _finish(study, trial, TrialState.COMPLETE, [math.inf] * n_objectives,
                       f"evaluation failed: {' '.join(str(err).split())}", start, log)
    except Exception as err:  # any failure of one trial is recorded, not fatal (docs/protocol.md §5);
        # KeyboardInterrupt and SystemExit leave the trial RUNNING: the next run reruns it
        log(traceback.format_exc().rstrip())
        reason = f"{type(err).__name__}: {' '.join(str(err).split())}"
        return _finish(study, trial, TrialState.FAIL, None, reason, start, log)
    if len(values) != n_objectives:
        reason = f"the objective returned {len(values)} values, expected {n_objectives}"
        return _finish(study, trial, TrialState.FAIL, None, reason, start, log)
    if not all(math.isfinite(v) for v in values):
        return _finish(study, trial, TrialState.COMPLETE, [math.inf] * n_objectives,
                       f"evaluation failed: non-finite objective values {values}", start, log)
    return _finish(study, trial, TrialState.COMPLETE, values, None, start, log)


def _finish(study, trial, state, values, reason, start, log):
    if reason is not None:
        trial.set_user_attr("reason", reason[:500])
    study.tell(trial, values, state=state)
    seconds = time.perf_counter() - start
    shown = "" if values is None else " objectives " + ", ".join(f"{v:.4f}" for v in values) + \
        f" norm {math.hypot(*values):.4f}"
    log(f"trial {trial.number} {state.name} in {seconds:.2f} s{shown} params {trial.params}"
        + (f" ({reason})" if reason else ""))
    return state


def _give_up_message(study, name, n_trials, max_attempts, storage_path) -> str:
    reasons = [str(t.user_attrs.get("reason", t.state.name))[:120] for t in study.get_trials(deepcopy=False)
               if t.state != TrialState.COMPLETE][-3:]
    return (f"study {name}: only {count(study)} of {n_trials} trials complete after {max_attempts} attempts "
            f"(last reasons: {'; '.join(reasons) or 'none'}). Fix the cause and rerun to continue, or "
            f"delete {storage_path} to start over.")


# ----------------------------------------------------------------------------- tables


def trials_frame(study: optuna.Study, n_trials: int | None = None) -> pd.DataFrame:
    """One row per trial: number, state, params_* (one column per param), the objectives
    (by the study's metric names), their Euclidean norm, seconds, and user_attrs_*.
    With `n_trials`, trials after the n-th complete one are left out, so a study that
    ran past a lowered budget reports exactly that budget."""
    names = study.metric_names or [f"values_{i}" for i in range(len(study.directions))]
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    if n_trials is not None:
        complete = [t.number for t in trials if t.state == TrialState.COMPLETE]
        if len(complete) >= n_trials:
            trials = [t for t in trials if t.number <= complete[n_trials - 1]]
    params = sorted({p for t in trials for p in t.params})
    attrs = sorted({a for t in trials for a in t.user_attrs})
    rows = []
    for t in trials:
        values = t.values if t.state == TrialState.COMPLETE and t.values else [math.nan] * len(names)
        duration = t.duration.total_seconds() if t.duration is not None else math.nan
        rows.append({"number": t.number, "state": t.state.name,
                     **{PARAM_PREFIX + p: t.params.get(p, math.nan) for p in params},
                     **dict(zip(names, values)), "norm": math.hypot(*values), "seconds": duration,
                     **{ATTR_PREFIX + a: t.user_attrs.get(a) for a in attrs}})
    columns = ["number", "state", *(PARAM_PREFIX + p for p in params), *names, "norm", "seconds",
               *(ATTR_PREFIX + a for a in attrs)]
    return pd.DataFrame(rows, columns=columns)


def _python(value):
    if isinstance(value, np.generic):
        return value.item()
    return value


def select_best(frames: Mapping[int, pd.DataFrame], method: str | None = None,
                objective_names: Sequence[str] = OBJECTIVES) -> dict:
    """Over the COMPLETE trials of every search seed's study, the one with the smallest
    Euclidean norm of its objectives; ties go to the lowest seed, then trial number.
    Returns {"method", "params", "seed", "trial", "norm", "objectives"}."""
    candidates = []
    for seed, frame in frames.items():
        missing = [c for c in ("number", "state", *objective_names) if c not in frame.columns]
        if missing:
            raise ValueError(f"trials of seed {seed} lack column(s) {', '.join(missing)}")
        done = frame[frame["state"] == "COMPLETE"]
        values = done[list(objective_names)].to_numpy(dtype=float)
        for index, number, vals in zip(done.index, done["number"], values):
            if np.all(np.isfinite(vals)):
                candidates.append((float(np.linalg.norm(vals)), int(seed), int(number), index, vals))
    if not candidates:
        raise ValueError(f"no complete trial to choose from{f' for {method}' if method else ''} "
                         f"(seeds {', '.join(map(str, frames))})")
    norm, seed, number, index, vals = min(candidates, key=lambda c: c[:3])
    frame = next(f for s, f in frames.items() if int(s) == seed)
    params = {}
    for column in frame.columns:
        value = _python(frame.at[index, column])  # the column's dtype: ints stay ints
        if column.startswith(PARAM_PREFIX) and not (isinstance(value, float) and math.isnan(value)):
            params[column[len(PARAM_PREFIX):]] = value
    return {"method": method, "params": params, "seed": seed, "trial": number, "norm": norm,
            "objectives": dict(zip(objective_names, map(float, vals)))}


# ----------------------------------------------------------------------------- files and defaults


def journal_path(out_csv) -> Path:
    """The study journal beside the trials CSV (seed{seed}.journal); not a rule output,
    so a killed or rerun job continues the study."""
    return Path(out_csv).with_suffix(".journal")


def oversized_batches(hp: Mapping, limit: int | None) -> dict:
    return {k: v for k, v in hp.items() if limit and k.endswith("batch_size") and int(v) > limit}


class _Projection:
    """Stands in for an Optuna trial in a method's search space: each suggest_* answers
    with the given value moved into the distribution (clipped into [low, high], onto the
    step, the nearest choice), so conditional spaces see the projected values of the
    parameters they depend on. `params` collects the answers; a parameter without a
    given value (or a non-numeric value outside the choices) is left out of them. A
    per-epoch list (RNI's reference fine_lr) is projected from its first entry."""

    def __init__(self, values: Mapping):
        self.values = {k: v[0] if isinstance(v, (list, tuple)) and v else v for k, v in values.items()}
        self.params: dict = {}

    def suggest_float(self, name, low, high, *, step=None, log=False):
        if self.values.get(name) is None:
            return low
        value = min(max(float(self.values[name]), low), high)
        if step:
            value = min(low + round((value - low) / step) * step, high)
        self.params[name] = value
        return value

    def suggest_int(self, name, low, high, step=1, log=False):
        if self.values.get(name) is None:
            return low
        value = min(max(int(round(float(self.values[name]))), low), high)
        value = min(low + round((value - low) / step) * step, high)
        self.params[name] = value
        return value

    def suggest_categorical(self, name, choices):
        value = self.values.get(name)
        if value not in choices:
            numeric = [c for c in choices if isinstance(c, (int, float)) and not isinstance(c, bool)]
            if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or not numeric:
                return choices[0]
            value = min(numeric, key=lambda c: abs(c - value))
        self.params[name] = value
        return value

    def __getattr__(self, name):  # only called for what the class lacks
        raise AttributeError(f"search.start_from_defaults projects the defaults through suggest_float, suggest_int "
                             f"and suggest_categorical; this search space also uses trial.{name}")


def defaults_in_space(space: Callable, hp: Mapping, epoch_cap: int) -> dict:
    """The parameters of `space` (a method's search space) set to `hp` (the method
    defaults) moved into the space: epoch counts capped at `epoch_cap`, values outside a
    range (e.g. weight decay 0 against log-uniform [1e-5, 0.1]) at its nearest end,
    values between categorical choices at the nearest one. Optuna rejects an enqueued
    value outside its distribution (0 on a log scale), which would fail that trial."""
    probe = _Projection(hp)
    space(probe, epoch_cap)
    return probe.params


def within_cap(space: Callable, hp: Mapping, epoch_cap: int) -> dict:
    """`hp` (a search's choice) with every parameter whose range the cap bounds moved
    under `epoch_cap`; the others as they were (a choice already lies in its space)."""
    capped = defaults_in_space(space, hp, epoch_cap)
    return {**hp, **{k: v for k, v in capped.items() if k in hp}}


def with_defaults_row(frame: pd.DataFrame, result: Mapping, defaults: Mapping) -> pd.DataFrame:
    """`frame` with the evaluation of the method defaults first, as trial number -1 (its
    state COMPLETE, FAIL or PRUNED, its params_* the defaults of the parameters the
    space samples)."""
    values = result["values"] or [math.nan] * len(OBJECTIVES)
    row = {"number": DEFAULTS_NUMBER, "state": result.get("state", "COMPLETE"), **dict(zip(OBJECTIVES, values)),
           "norm": math.hypot(*values), "seconds": result["seconds"],
           ATTR_PREFIX + "start": "method defaults",
           **{ATTR_PREFIX + k: v for k, v in result["user_attrs"].items()}}
    for column in frame.columns:
        value = defaults.get(column[len(PARAM_PREFIX):]) if column.startswith(PARAM_PREFIX) else None
        if value is not None and not isinstance(value, (list, tuple)):  # a list default stays a default
            row[column] = value
    head = pd.DataFrame([row])
    columns = list(frame.columns) + [c for c in head.columns if c not in frame.columns]
    return pd.concat([head, frame], ignore_index=True)[columns]


def read_trials(path) -> pd.DataFrame:
    from . import io

    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise io.CorruptFileError(f"{path}: not a trials CSV ({err})") from err
    missing = [c for c in ("number", "state", *OBJECTIVES) if c not in frame.columns]
    if missing:
        raise io.CorruptFileError(f"{path} lacks column(s) {', '.join(missing)}")
    return frame


