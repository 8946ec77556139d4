"""Configuration: JSON-schema validation with defaults, then name checks against the
registries, so a bad config fails before any job starts with a message naming the key.
Free of torch (catalog.py, the method registry's literals): the workflow imports it to parse."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import jsonschema
import yaml

from . import catalog, methods, scenarios
from .catalog import DATASET_NAMES, MODEL_NAMES

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    pass


def _with_defaults(validator_class):
    """jsonschema's documented extension: fill `default` values while validating."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = _copy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _copy(value):
    return yaml.safe_load(yaml.safe_dump(value))


def load_schema(path: Path = SCHEMA_PATH) -> dict:
    return yaml.safe_load(Path(path).read_text())


def _where(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(top level)"


def _describe(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        hint = f"; valid keys: {', '.join(allowed)}" if allowed else ""
        return f"config error at {_where(error)}: unknown key(s) {', '.join(map(repr, extra))}{hint}"
    if error.validator == "oneOf" and error.context:  # the alternative matching the value's type
        error = jsonschema.exceptions.best_match([error])
    return f"config error at {_where(error)}: {error.message}"


def _check_names(kind: str, given, valid) -> None:
    unknown = [n for n in given if n not in valid]
    if unknown:
        raise ConfigError(f"config error at {kind}: unknown name(s) {', '.join(map(repr, unknown))}; "
                          f"valid: {', '.join(valid)}")


def validate(config: dict, schema: dict | None = None) -> dict:
    """Validate in place (filling defaults) and return the config; raise ConfigError."""
    schema = schema or load_schema()
    validator = _with_defaults(jsonschema.Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise ConfigError("\n".join(_describe(e) for e in errors))
    for key in ("method_params", "training"):  # null: no overrides (clears those of a merged-under file)
        config[key] = config[key] or {}
    _check_names("datasets", config["datasets"], DATASET_NAMES)
    _check_names("models", config["models"], MODEL_NAMES)
    if config["methods"] == "all":
        config["methods"] = methods.names()
    _check_names("methods", config["methods"], methods.names())
    _check_names("method_params", config["method_params"], methods.names())
    for name, params in config["method_params"].items():
        try:
            methods.hyperparameters(name, params)
        except KeyError as err:
            raise ConfigError(f"config error at method_params.{name}: {err.args[0]}") from None
    _check_names("training", config["training"], DATASET_NAMES)
    if isinstance(config["search"]["on_no_complete_trial"], dict):
        _check_names("search.on_no_complete_trial", config["search"]["on_no_complete_trial"], methods.names())
    check_scenarios(config)
    trials = config["search"]["trials"]
    if isinstance(trials, dict):
        _check_names("search.trials", trials, MODEL_NAMES)
        missing = [m for m in config["models"] if m not in trials]
        if missing:
            raise ConfigError(f"config error at search.trials: no budget for model(s) {', '.join(missing)}; give "
                              "every model in `models` a number of trials, or one number for all")
    return config


def check_scenarios(config: dict) -> None:
    """Complete each `scenarios` entry (scenarios.complete: name, defaults) in place and
    check it against every configured dataset and model; raise ConfigError naming the key."""
    done, names = [], set()
    for i, entry in enumerate(config["scenarios"]):
        where = f"scenarios[{i}]"
        try:
            entry = scenarios.complete(entry)
            if entry["name"] in names:
                raise scenarios.ScenarioError(f"name: {entry['name']!r} is used twice")
            names.add(entry["name"])
            for dataset in scenario_datasets(config, entry):
                scenarios.check(entry, dataset)
        except scenarios.ScenarioError as err:
            raise ConfigError(f"config error at {where}.{err}") from None
        _check_names(f"{where}.models", entry["models"] or [], config["models"])
        if entry["kind"] in scenarios.MEMORISATION_KINDS and config["ulira"]["dataset"] not in config["datasets"]:
            raise ConfigError(f"config error at {where}.kind: {entry['kind']!r} draws its forget set by the "
                              "memorisation that U-LiRA's shadow originals measure, on ulira.dataset "
                              f"({config['ulira']['dataset']!r}), which is not among datasets")
        done.append(entry)
    config["scenarios"] = done


def scenario_datasets(config: dict, entry: dict) -> list[str]:
    """The datasets a scenario runs on: every configured one; for memorised and typical,
    U-LiRA's dataset (its shadow bank measures the memorisation; built for them even
    with ulira.enabled false)."""
    if entry["kind"] in scenarios.MEMORISATION_KINDS:
        return [d for d in config["datasets"] if d == config["ulira"]["dataset"]]
    return list(config["datasets"])


def scenario_entries(config: dict) -> list[dict]:
    """The completed entries other than random (which is the main benchmark)."""
    return [e for e in config["scenarios"] if e["kind"] != "random"]


def scenario_searched(config: dict, entry: dict) -> list[str]:
    """The configured methods a scenario other than random searches in its own jobs
    (docs/protocol.md §10.8): with a search, every one applicable to its kind
    (`hyperparameters: own`), or those the random scenario does not run (`random`: the
    others borrow its choice). None without a search."""
    if not search_on(config):
        return []
    runs = [m for m in config["methods"] if methods.applies(m, entry["kind"])]
    if entry["hyperparameters"] == "own":
        return runs
    return [m for m in runs if not methods.applies(m, "random")]


def scenario_borrowed(config: dict, entry: dict) -> list[str]:
    """The configured methods a scenario takes the random scenario's search choice
    (best.json) for: with a search and `hyperparameters: random`, those applicable to
    both. None otherwise."""
    if not search_on(config) or entry["hyperparameters"] != "random":
        return []
    return [m for m in config["methods"] if methods.applies(m, entry["kind"]) and methods.applies(m, "random")]


def search_on(config: dict) -> bool:
    """Whether the hyperparameter search runs (search.trials > 0, or per model)."""
    trials = config["search"]["trials"]
    return isinstance(trials, dict) or trials > 0


def search_trials(config: dict, model: str) -> int:
    """Complete trials per study of `model` (search.trials, one number or per model)."""
    trials = config["search"]["trials"]
    return int(trials[model]) if isinstance(trials, dict) else int(trials)


class SearchSettings(NamedTuple):
    """What one study of a search needs from the config, built once here (search_settings,
    ulira_search_settings) and passed to its rule as one param. A NamedTuple, not a
    dataclass: Snakemake's params rerun trigger compares the reprs of tuples but skips
    objects it cannot represent."""
    trials: int
    epoch_cap: int
    method_params: dict
    include_defaults: bool = False
    start_from_defaults: bool = False
    on_no_complete_trial: str = "fail"
    max_batch_size: int | None = None


def search_settings(config: dict, dataset: str, model: str, method: str) -> SearchSettings:
    """The main search's settings of one (dataset, model, method)."""
    s = config["search"]
    return SearchSettings(search_trials(config, model), epoch_cap(config, dataset),
                          dict(config["method_params"].get(method) or {}), bool(s["include_defaults"]),
                          bool(s["start_from_defaults"]), on_no_complete_trial(config, method),
                          catalog.DATASETS[dataset].max_search_batch)


def ulira_search_settings(config: dict, method: str) -> SearchSettings:
    """U-LiRA's search settings of `method`: its own budget and E_max, no defaults row or
    enqueued defaults (the reference's has neither), the main search's
    on_no_complete_trial."""
    u = config["ulira"]
    return SearchSettings(int(u["search_trials"]), ulira_epoch_cap(config),
                          dict(config["method_params"].get(method) or {}), False, False,
                          on_no_complete_trial(config, method), catalog.DATASETS[u["dataset"]].max_search_batch)


# search.one_job: null fuses a method's jobs when every model's search is this small
ONE_JOB_MAX_TRIALS = 20


def search_one_job(config: dict) -> bool:
    """Whether one job per (dataset, model, method) runs its search, the choice of the
    best trial and the final unlearning runs (search.one_job; null: when every model's
    trials x search seeds <= ONE_JOB_MAX_TRIALS). False without a search."""
    if not search_on(config):
        return False
    choice = config["search"]["one_job"]
    if choice is not None:
        return bool(choice)
    seeds = len(config["search"]["seeds"])
    return all(search_trials(config, m) * seeds <= ONE_JOB_MAX_TRIALS for m in config["models"])


# ulira.one_job: null runs one job for every split when the bank is this small (splits x
# forget sets), so the paper grid keeps its per-split jobs
ULIRA_ONE_JOB_MAX_MODELS = 64


def ulira_one_job(config: dict) -> bool:
    """Whether one U-LiRA job handles every split (few start-ups) rather than one job per
    split (parallel): ulira.one_job, or when null, splits x forget sets <=
    ULIRA_ONE_JOB_MAX_MODELS."""
    u = config["ulira"]
    if u["one_job"] is not None:
        return bool(u["one_job"])
    return u["splits"] * u["forget_sets"] <= ULIRA_ONE_JOB_MAX_MODELS


def on_no_complete_trial(config: dict, method: str) -> str:
    """"fail" or "defaults": what `method` does when a study holds no complete trial."""
    policy = config["search"]["on_no_complete_trial"]
    return policy.get(method, "fail") if isinstance(policy, dict) else policy


def read_file(path) -> dict:
    """The mapping a config file holds; ConfigError naming the file (and the line of a
    YAML syntax error) when it is missing, not YAML, empty or not a mapping."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f", line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"config file {path} is not valid YAML{where}: {problem}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"config file {path} is not text: {err}") from None
    if config is None:
        raise ConfigError(f"config file {path} is empty: a config is a YAML mapping of keys to values "
                          "(see config.yaml)")
    if not isinstance(config, dict):
        raise ConfigError(f"config file {path} holds a {type(config).__name__}, not a mapping of keys to "
                          "values (see config.yaml)")
    return config


def load(path) -> dict:
    return validate(read_file(path))


def recipe(config: dict, dataset: str) -> dict:
    """The reference training recipe of `dataset`, with the config's overrides."""
    return {**catalog.recipe(dataset), **config.get("training", {}).get(dataset, {})}


def epoch_cap(config: dict, dataset: str) -> int:
    """E_max = ceil(0.2 x training epochs) (docs/protocol.md §5)."""
    return -(-recipe(config, dataset)["epochs"] // 5)


def validate_ulira(config: dict) -> dict:
    """Complete the `ulira` section (after `validate`): expand `methods: all`,
    `target_splits: all` and `search_splits: null`; check it (`check_ulira`) only when
    U-LiRA is enabled, so a switched-off section never constrains a config. The
    workflow checks a disabled section when one of its targets is asked for."""
    u = config["ulira"]
    if u["methods"] == "all":  # U-LiRA's forget sets are random: the methods defined there
        u["methods"] = [m for m in methods.names() if methods.applies(m, ULIRA_SCENARIO)]
    if u["target_splits"] == "all":
        u["target_splits"] = list(range(u["splits"]))
    if u["search_splits"] is None:
        u["search_splits"] = min(32, u["splits"])
    if u["enabled"]:
        check_ulira(config)
    return config


ULIRA_SCENARIO = "random"  # U-LiRA's forget sets (docs/protocol.md §6.1)


def check_ulira(config: dict) -> None:
    """Check the completed `ulira` section against the registries, the split design and
    the main search; raise ConfigError."""
    u = config["ulira"]
    _check_names("ulira.dataset", [u["dataset"]], DATASET_NAMES)
    _check_names("ulira.model", [u["model"]], MODEL_NAMES)
    _check_names("ulira.methods", u["methods"], methods.names())
    undefined = [methods.not_applicable_reason(m, ULIRA_SCENARIO) for m in u["methods"]
                 if not methods.applies(m, ULIRA_SCENARIO)]
    if undefined:
        raise ConfigError(f"config error at ulira.methods: U-LiRA forgets random examples; {'; '.join(undefined)}")
    bad = [k for k in u["target_splits"] if k >= u["splits"]]
    if bad:
        raise ConfigError(f"config error at ulira.target_splits: {bad} not below splits ({u['splits']})")
    if u["search_trials"] == 0 and search_on(config):  # the main search's best.json is used
        missing = [f"{key} {name!r}" for key, names in (("dataset", [u["dataset"]]), ("model", [u["model"]]),
                                                         ("method", u["methods"]))
                   for name in names if name not in config[f"{key}s"]]
        if missing:
            raise ConfigError(f"config error at ulira: with search.trials > 0 and ulira.search_trials 0, U-LiRA "
                              f"uses the main search's choices, which cover no {', '.join(missing)}; add them to "
                              "datasets/models/methods or set ulira.search_trials")
    if u["search_splits"] > u["splits"]:
        raise ConfigError(f"config error at ulira.search_splits: {u['search_splits']} > splits ({u['splits']})")


def ulira_recipe(config: dict) -> dict:
    """The shadow models' recipe: the U-LiRA dataset's training recipe with U-LiRA's
    epochs (default: half the training epochs, rounded up; 91 for cifar10)."""
    u = config["ulira"]
    base = recipe(config, u["dataset"])
    return {**base, "epochs": u["epochs"] or -(-base["epochs"] // 2)}


def ulira_epoch_cap(config: dict) -> int:
    """E_max of U-LiRA's unlearning: ceil(0.2 x the shadow models' epochs) (19 for 91),
    as the reference's search with lira=True (docs/reference.md, U6)."""
    return -(-ulira_recipe(config)["epochs"] // 5)


def main(argv=None) -> int:
    """`python -m unlearnbench.config FILE...`: check config files as the workflow does
    (a --configfile is read by Snakemake's command line before the Snakefile, whose
    message for a file that is not YAML names neither the file nor the line)."""
    import sys

    status = 0
    for path in (sys.argv[1:] if argv is None else argv):
        try:
            validate_ulira(load(path))
            print(f"{path}: ok")
        except ConfigError as err:
            print(err, file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    raise SystemExit(main())
