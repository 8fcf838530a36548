"""Hyperparameter search on Optuna: a YAML search space over any config key, FID/KID/IS objective from the
trainer's periodic evaluation, pruning, resumable storage, and the best config, trial table and plots as output."""

from __future__ import annotations

import csv
import json
import math
import shutil
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, get_type_hints

import yaml

from ganforge.config import SECTIONS, RunConfig, apply_overrides, load_yaml, validate
from ganforge.errors import GanforgeError

SAMPLERS = ("grid", "random", "tpe", "cmaes", "nsga2")
PRUNERS = ("median", "hyperband", "none")
OBJECTIVES = {"fid": "minimize", "kid": "minimize", "is": "maximize"}
SECOND_OBJECTIVES = ("time", "params")
SPEC_KEYS = {"type", "low", "high", "log", "step", "choices"}
FINISHED = ("COMPLETE", "PRUNED")
INSTALL = "pip install 'ganforge[tune]'"


def require_optuna():
    """The optuna module, or a one-line error naming the extra that installs it."""
    try:
        import optuna
    except ImportError:
        raise GanforgeError(f"tune needs optuna: {INSTALL}") from None
    return optuna


@dataclass
class Param:
    """One searchable setting: a dotted config key and its range or choices."""

    key: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] | None = None

    def suggest(self, trial) -> Any:
        if self.type == "categorical":
            return trial.suggest_categorical(self.key, self.choices)
        if self.type == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)

    def grid_values(self) -> list[Any]:
        """The values a grid search visits: the choices, or low..high in steps (ints step by 1 by default)."""
        if self.type == "categorical":
            return list(self.choices)
        if self.type == "int":
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.step is None:
            raise GanforgeError(f"search space key '{self.key}': the grid sampler needs discrete values; give "
                                "'choices' or a 'step' for this float range")
        count = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        return [round(self.low + i * self.step, 12) for i in range(count)]

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "key" and v not in (None, False)}


def _field_hint(key: str) -> Any:
    """The type hint of a dotted config key (None for model.options.*); unknown keys are an error."""
    section, _, name = key.partition(".")
    if section not in SECTIONS or not name:
        raise GanforgeError(f"search space key '{key}': not a config key (expected data.*, model.*, train.* "
                            "or model.options.*)")
    if section == "model" and name.startswith("options.") and len(name) > len("options."):
        return None
    hints = get_type_hints(SECTIONS[section])
    if name not in hints or name == "options":
        known = ", ".join(h for h in hints if h != "options")
        raise GanforgeError(f"search space key '{key}': unknown {section} setting (known: {known})")
    return hints[name]


def parse_space(tree: dict[str, Any], origin: str = "search space") -> list[Param]:
    """Validate a search space ({dotted key: {type, low, high, log, step} | {type: categorical, choices} | [choices]})."""
    if not isinstance(tree, dict) or not tree:
        raise GanforgeError(f"{origin}: expected a mapping of config keys to ranges, got {tree!r}")
    params = []
    for key, spec in tree.items():
        key = str(key)
        hint = _field_hint(key)
        where = f"{origin}, key '{key}'"
        if isinstance(spec, list):
            spec = {"type": "categorical", "choices": spec}
        if not isinstance(spec, dict):
            raise GanforgeError(f"{where}: expected {{type: ..., low/high or choices}}, got {spec!r}")
        unknown = set(spec) - SPEC_KEYS
        if unknown:
            raise GanforgeError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))} "
                                f"(expected {', '.join(sorted(SPEC_KEYS))})")
        kind = spec.get("type")
        if kind not in ("float", "int", "categorical"):
            raise GanforgeError(f"{where}: unknown type {kind!r} (expected float, int or categorical)")
        if kind == "categorical":
            choices = spec.get("choices")
            if not isinstance(choices, list) or not choices:
                raise GanforgeError(f"{where}: 'choices' must be a non-empty list, got {choices!r}")
            if any(not isinstance(c, (str, int, float, bool)) and c is not None for c in choices):
                raise GanforgeError(f"{where}: choices must be plain values (text, numbers, true/false, null)")
            if hint is not None:
                for choice in choices:  # the config's own type check, e.g. a text choice for an int setting
                    apply_overrides(RunConfig(), {key: choice}, where)
            params.append(Param(key, kind, choices=list(choices)))
            continue
        if "choices" in spec:
            raise GanforgeError(f"{where}: 'choices' belongs to type categorical, not {kind}")
        text = str(hint)
        if hint is not None and kind == "float" and not (hint is float or text.startswith("float")):
            raise GanforgeError(f"{where}: the setting is {text}, not a number range; use type "
                                f"{'int' if hint is int or text.startswith('int') else 'categorical'}")
        if hint is not None and kind == "int" and not (hint in (int, float) or text.startswith(("int", "float"))):
            raise GanforgeError(f"{where}: the setting is {text}, not a number range; use type categorical")
        low, high, step, log = spec.get("low"), spec.get("high"), spec.get("step"), spec.get("log", False)
        for name, value in (("low", low), ("high", high)) + ((("step", step),) if step is not None else ()):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise GanforgeError(f"{where}: '{name}' must be a number, got {value!r}")
            if kind == "int" and not float(value).is_integer():
                raise GanforgeError(f"{where}: '{name}' must be an integer for type int, got {value!r}")
        if not isinstance(log, bool):
            raise GanforgeError(f"{where}: 'log' must be true or false, got {log!r}")
        if not low < high:
            raise GanforgeError(f"{where}: empty range, low ({low}) must be below high ({high})")
        if log and low <= 0:
            raise GanforgeError(f"{where}: a log range needs low > 0, got {low}")
        if step is not None and step <= 0:
            raise GanforgeError(f"{where}: 'step' must be positive, got {step}")
        if step is not None and log and kind == "float":
            raise GanforgeError(f"{where}: a float range takes 'step' or 'log', not both")
        params.append(Param(key, kind, float(low) if kind == "float" else int(low),
                            float(high) if kind == "float" else int(high), log,
                            None if step is None else (float(step) if kind == "float" else int(step))))
    return params


def load_space(space: str | Path | dict[str, Any]) -> list[Param]:
    """A search space from a YAML file or a dict."""
    if isinstance(space, dict):
        return parse_space(space)
    return parse_space(load_yaml(space), f"search space {space}")


@dataclass
class TuneResult:
    """What a search leaves behind; `study` is the Optuna study for further analysis."""

    study: Any
    out: Path
    best_number: int | None
    best_values: list[float] | None
    best_params: dict[str, Any]
    best_config: Path | None
    trials_csv: Path
    plots: list[Path] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def best_value(self) -> float | None:
        return None if self.best_values is None else self.best_values[0]


def make_sampler(name: str, params: list[Param], trials: int, seed: int, multi: bool):
    """The Optuna sampler for `name`, sized for a search of `trials` trials."""
    optuna = require_optuna()

    if name == "grid":
        return optuna.samplers.GridSampler({p.key: p.grid_values() for p in params}, seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":  # a third of the budget (2..10 trials) explores at random before TPE models the results
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(2, min(10, trials // 3)))
    if name == "cmaes":
        if multi:
            raise GanforgeError("sampler cmaes optimises one objective; use nsga2 or tpe with --second-objective")
        try:
            import cmaes  # noqa: F401
        except ImportError:
            raise GanforgeError(f"sampler cmaes needs the 'cmaes' package: {INSTALL}") from None
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if name == "nsga2":  # generations of a third of the budget (4..50) so that small searches still evolve
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(4, min(50, trials // 3)))
    raise GanforgeError(f"unknown sampler '{name}' (expected one of: {', '.join(SAMPLERS)})")


def make_pruner(name: str, steps: int, eval_every: int):
    """The Optuna pruner for `name` over a trial of `steps` steps evaluated every `eval_every`."""
    optuna = require_optuna()

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=eval_every, max_resource=steps, reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise GanforgeError(f"unknown pruner '{name}' (expected one of: {', '.join(PRUNERS)})")


def _base_config(config_file: str | Path | None, overrides: dict[str, Any], objective: str,
                 eval_every: int | None) -> dict[str, Any]:
    """The trial-independent overrides: the user's, plus evaluation settings that make the objective exist."""
    from ganforge.api import resolve_config

    base = dict(overrides)
    probe = resolve_config(config_file, base)
    metrics = [m.strip() for m in probe.train.eval_metrics.split(",") if m.strip()]
    base["train.eval_metrics"] = ",".join([objective] + [m for m in metrics if m != objective])
    every = eval_every if eval_every is not None else probe.train.eval_every or max(1, probe.train.steps // 4)
    if every < 1:
        raise GanforgeError(f"--eval-every must be at least 1, got {every}")
    base["train.eval_every"] = every
    validate(resolve_config(config_file, base))
    return base


class _Objective:
    """Trains one trial's config and returns its final score (and second objective); prunes on the way."""

    def __init__(self, params: list[Param], config_file, base: dict[str, Any], out: Path, objective: str,
                 second: str | None, callbacks: list[Callable] | None, quiet: bool):
        self.params, self.config_file, self.base, self.out = params, config_file, base, out
        self.objective, self.second, self.callbacks, self.quiet = objective, second, callbacks or [], quiet
        self._data: dict[str, Any] = {}

    def config_for(self, values: dict[str, Any], number: int) -> RunConfig:
        from ganforge.api import resolve_config

        return resolve_config(self.config_file, self.base | values | {"out": str(self.out), "name": f"trial_{number:04d}"})

    def load_data(self, config: RunConfig):
        """Training data, loaded once per distinct data setting and family loader rather than once per trial."""
        from ganforge.families import get

        loader = get(config.model.name).load_data
        key = json.dumps([loader.__module__, loader.__qualname__, config.to_dict()["data"], config.model.options],
                         default=str, sort_keys=True)
        if key not in self._data:
            self._data[key] = loader(config)
        return self._data[key]

    def __call__(self, trial) -> float | tuple[float, float]:
        optuna = require_optuna()

        from ganforge.api import prepare_run
        from ganforge.training.trainer import Trainer

        values = {p.key: p.suggest(trial) for p in self.params}
        config = self.config_for(values, trial.number)
        run_dir = self.out / config.name
        trial.set_user_attr("run_dir", str(run_dir))
        if run_dir.exists():  # left by an interrupted attempt with this number: start it afresh
            shutil.rmtree(run_dir)
        multi = self.second is not None
        reported: set[int] = set()
        holder: dict[str, Any] = {}

        def report(trainer) -> None:
            holder["trainer"] = trainer
            latest = trainer.last_eval
            step = latest.get("step")
            if multi or step is None or step in reported:
                return
            reported.add(step)
            value = latest.get(self.objective)
            if value is None or not math.isfinite(value):
                raise optuna.TrialPruned(f"{self.objective} is {value} at step {step}")
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"{self.objective} {value:.4g} at step {step}")

        start = time.perf_counter()
        trainer = None
        try:
            try:
                data = self.load_data(config)
                trainer = Trainer(config, prepare_run(config), quiet=True, data=data,
                                  callbacks=[report, *self.callbacks])
                holder["trainer"] = trainer
                trainer.fit()
            finally:
                trainer = holder.get("trainer", trainer)
                if trainer is not None:
                    trainer.logger.close()
                trial.set_user_attr("config", {**_plain(config.to_dict()), "out": None, "name": None})
                trial.set_user_attr("seconds", round(time.perf_counter() - start, 2))
                if trainer is not None:
                    trial.set_user_attr("step", trainer.step)
        except optuna.TrialPruned as pruned:
            trial.set_user_attr("pruned", str(pruned) or "pruned")
            raise
        except GanforgeError as error:
            if "diverged" in str(error):
                trial.set_user_attr("pruned", "diverged")
                raise optuna.TrialPruned("diverged") from None
            trial.set_user_attr("error", str(error))
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)
            raise
        if trainer.stop_reason is not None:  # Ctrl-C / SIGTERM reached the trainer: stop the whole search
            trial.set_user_attr("interrupted", True)
            raise KeyboardInterrupt(trainer.stop_reason)
        score = trainer.last_eval.get(self.objective)
        if score is None or not math.isfinite(score):
            trial.set_user_attr("pruned", f"{self.objective} is {score}")
            raise optuna.TrialPruned(f"final {self.objective} is {score}")
        step = trainer.last_eval.get("step")
        trial.set_user_attr("eval_step", step)
        if not multi:
            if step not in reported:
                trial.report(score, step)
            return score
        if self.second == "time":
            return score, time.perf_counter() - start
        return score, float(sum(p.numel() for p in trainer.family.generator.parameters()))


def _plain(value: Any) -> Any:
    """JSON-safe copy of a config dict (tuples to lists)."""
    return json.loads(json.dumps(value, default=str))


def _prepare_resume(study) -> int:
    """Queue again the parameters of trials cut short by an interruption (once each); returns how many."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    queued = 0
    for t in trials:
        cut_short = t.state == TrialState.FAIL and "error" not in t.user_attrs
        if cut_short and t.number not in retried and t.params:
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number}, skip_if_exists=False)
            queued += 1
    return queued


def _check_same_study(study, signature: dict[str, Any], directions: list[str]) -> None:
    stored = study.user_attrs.get("ganforge")
    if stored is None:
        study.set_user_attr("ganforge", signature)
        return
    if [d.name.lower() for d in study.directions] != directions:
        raise GanforgeError(f"study '{study.study_name}' optimises {[d.name.lower() for d in study.directions]}, "
                            f"not {directions}; pick another --study or the same objectives")
    for key in ("space", "base"):
        if stored.get(key) != signature[key]:
            changed = sorted(set(map(str, stored.get(key, {}).items())) ^ set(map(str, signature[key].items())))
            raise GanforgeError(f"study '{study.study_name}' was created with a different {key} "
                                f"(differs in {', '.join(changed)[:200]}); resume with the same settings or pick "
                                "another --study")


def tune(space: str | Path | dict[str, Any], base_overrides: dict[str, Any] | None = None, trials: int = 20,
         sampler: str = "tpe", storage: str | None = None, study_name: str | None = None, n_jobs: int = 1,
         out: str | Path | None = None, objective: str = "fid", *, config_file: str | Path | None = None,
         pruner: str = "median", second_objective: str | None = None, eval_every: int | None = None,
         seed: int = 0, plots: bool = True, quiet: bool = False,
         callbacks: list[Callable] | None = None) -> TuneResult:
    """Search `space` with Optuna over `trials` finished trials (resuming a stored study) and write the results
    to the tune folder `out` (default runs/tune-STUDY)."""
    optuna = require_optuna()

    if objective not in OBJECTIVES:
        raise GanforgeError(f"unknown objective '{objective}' (expected one of: {', '.join(OBJECTIVES)})")
    if second_objective is not None and second_objective not in SECOND_OBJECTIVES:
        raise GanforgeError(f"unknown second objective '{second_objective}' (expected {' or '.join(SECOND_OBJECTIVES)})")
    if trials < 1 or n_jobs < 1:
        raise GanforgeError(f"--trials and --n-jobs must be at least 1, got {trials} and {n_jobs}")
    params = load_space(space)
    base = _base_config(config_file, base_overrides or {}, objective, eval_every)
    study_name = study_name or "ganforge"
    out = Path(out) if out is not None else Path("runs") / f"tune-{study_name}"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise GanforgeError(f"cannot write to the output folder {out}: {error.strerror or error}") from None
    multi = second_objective is not None
    directions = [OBJECTIVES[objective]] + (["minimize"] if multi else [])
    budget = trials
    if sampler == "grid":
        budget = min(trials, math.prod(len(p.grid_values()) for p in params))
    from ganforge.api import resolve_config

    probe = resolve_config(config_file, base)
    make_sampler(sampler, params, trials, seed, multi)  # reject a bad sampler before touching the storage
    chosen_pruner = make_pruner(pruner if not multi else "none", probe.train.steps, base["train.eval_every"])
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # trial failures are reported as one line each below
    storage_url = storage or f"sqlite:///{(out / 'study.db').resolve()}"
    try:
        with warnings.catch_warnings():  # heartbeats (experimental) fail trials of workers that died
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            rdb = optuna.storages.RDBStorage(storage_url, heartbeat_interval=60, grace_period=180)
    except Exception as error:  # SQLAlchemy raises many kinds (bad URL, missing driver, refused connection)
        raise GanforgeError(f"--storage {storage_url}: cannot open ({type(error).__name__}: "
                            f"{str(error).splitlines()[0] if str(error) else ''})") from None
    study = optuna.create_study(storage=rdb, study_name=study_name, pruner=chosen_pruner, directions=directions,
                                load_if_exists=True)
    # a resumed study continues the sampler's random stream rather than replaying the first draws
    study.sampler = make_sampler(sampler, params, trials, seed + len(study.get_trials(deepcopy=False)), multi)
    signature = {"space": {p.key: p.to_dict() for p in params},
                 "base": _plain({k: v for k, v in base.items() if k not in ("out", "name")}),
                 "config_file": str(config_file) if config_file else None, "objective": objective,
                 "second_objective": second_objective}
    _check_same_study(study, signature, directions)
    from optuna.trial import TrialState

    states = tuple(getattr(TrialState, s) for s in FINISHED)
    done = len(study.get_trials(deepcopy=False, states=states))
    remaining = max(0, budget - done)
    if remaining:
        _prepare_resume(study)
    say = (lambda *_: None) if quiet else (lambda text: print(text, flush=True))
    say(f"tune folder {out}: study '{study_name}' in {storage_url}: {done} finished trial(s), running {remaining} "
        f"more ({sampler} sampler, {'no pruning' if multi else pruner + ' pruner'})")
    progress = TrialProgress(budget, done, objective, second_objective, quiet)
    objective_fn = _Objective(params, config_file, base, out, objective, second_objective,
                              [progress.on_step, *(callbacks or [])], quiet)
    csv_path = out / "trials.csv"

    def after_trial(study_, trial) -> None:
        write_trials_csv(study_, csv_path, objective, second_objective)
        progress.on_trial_end(trial)

    if remaining:
        objective_fn.load_data(probe)  # a bad --data fails here once, not in every trial
        try:
            with warnings.catch_warnings(), progress:
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.optimize(objective_fn, n_trials=remaining, n_jobs=n_jobs, catch=(GanforgeError,),
                               callbacks=[optuna.study.MaxTrialsCallback(budget, states=states), after_trial])
        except KeyboardInterrupt:
            write_trials_csv(study, csv_path, objective, second_objective)
            say(f"search interrupted: finished trials are kept in {storage_url}; run the same command again to "
                "resume (the cut-short trial is retried with its parameters)")
            raise
    write_trials_csv(study, csv_path, objective, second_objective)
    result = _result(study, out, csv_path, multi)
    if plots:
        result.plots = save_plots(study, out / "plots", objective, second_objective, say)
    return result


def _result(study, out: Path, csv_path: Path, multi: bool) -> TuneResult:
    from optuna.trial import TrialState

    counts = {s.name.lower(): len(study.get_trials(deepcopy=False, states=(s,))) for s in TrialState}
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return TuneResult(study, out, None, None, {}, None, csv_path, counts=counts)
    best = min(study.best_trials, key=lambda t: t.values[0] if study.directions[0].name == "MINIMIZE"
               else -t.values[0]) if multi else study.best_trial
    path = out / "best.yaml"
    config = {k: v for k, v in best.user_attrs["config"].items() if k not in ("out", "name")}
    train = config["train"] = dict(config["train"])
    search_every, train["eval_every"] = train["eval_every"], train["steps"]
    scores = ", ".join(f"{v:.6g}" for v in best.values)
    header = (f"# best trial {best.number} of study '{study.study_name}' ({scores}); params: "
              f"{json.dumps(best.params)}\n# reproduce: ganforge train --config {path}\n"
              f"# evaluation: train.eval_every is the trial's steps ({train['steps']}; the search evaluated every "
              f"{search_every} for pruning), so a run of the same length is scored once, at its end, like the trial; "
              f"eval_n {train['eval_n']} is the search's, so that score compares with the trial's\n")
    path.write_text(header + yaml.safe_dump(config, sort_keys=False))
    return TuneResult(study, out, best.number, list(best.values), dict(best.params), path, csv_path, counts=counts)


def _value_names(objective: str, second: str | None) -> list[str]:
    return [objective] + ([{"time": "seconds", "params": "g_params"}[second]] if second else [])


def trial_rows(study, objective: str, second: str | None) -> tuple[list[str], list[dict[str, Any]]]:
    """All trials as flat rows: number, state, objective value(s), params, seconds, steps, note."""
    names = _value_names(objective, second)
    keys = sorted({k for t in study.trials for k in t.params})
    pareto = {t.number for t in study.best_trials} if second and any(
        t.state.name == "COMPLETE" for t in study.trials) else set()
    rows = []
    for t in study.trials:
        row: dict[str, Any] = {"number": t.number, "state": t.state.name.lower()}
        for i, name in enumerate(names):  # a pruned trial's value is only its last intermediate score: see note
            row[name] = t.values[i] if t.values and t.state.name == "COMPLETE" else None
        if second:
            row["pareto"] = t.number in pareto
        row |= {k: t.params.get(k) for k in keys}
        row["seconds"] = t.user_attrs.get("seconds")
        row["steps"] = t.user_attrs.get("step")
        row["note"] = t.user_attrs.get("pruned") or t.user_attrs.get("error") or (
            "interrupted" if t.user_attrs.get("interrupted") else "")
        rows.append(row)
    columns = ["number", "state", *names, *(["pareto"] if second else []), *keys, "seconds", "steps", "note"]
    return columns, rows


def write_trials_csv(study, path: Path, objective: str, second: str | None) -> None:
    columns, rows = trial_rows(study, objective, second)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


class TrialProgress:
    """A rich bar per running trial (its steps and latest score) and one line per ended trial ('[k/N] trial ...',
    k counting finished trials); off a terminal only the lines, printed plainly; nothing when quiet."""

    def __init__(self, total: int, finished: int, objective: str, second: str | None, quiet: bool):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        console = Console(quiet=quiet)
        self.live = console.is_terminal and not quiet
        self.quiet, self.total, self.finished, self.objective, self.second = quiet, total, finished, objective, second
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[score]}"), console=console, disable=not self.live)
        self.tasks: dict[str, Any] = {}
        self.lock = threading.Lock()  # trials of --n-jobs threads report concurrently

    def __enter__(self) -> TrialProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def on_step(self, trainer) -> None:
        """Trainer callback: advance the trial's bar and show its latest score."""
        if not self.live:
            return
        name, latest = trainer.run_dir.name, trainer.last_eval
        score = f"{self.objective} {latest[self.objective]:.4g} at step {latest['step']}" if (
            self.objective in latest) else ""
        with self.lock:
            if name not in self.tasks:
                self.tasks[name] = self.progress.add_task(name.replace("_", " "), total=trainer.config.train.steps,
                                                          score="")
        self.progress.update(self.tasks[name], completed=trainer.step, score=score)

    def on_trial_end(self, trial) -> None:
        """Optuna callback: drop the trial's bar and print its line."""
        with self.lock:
            task = self.tasks.pop(f"trial_{trial.number:04d}", None)
            if task is not None:
                self.progress.remove_task(task)
            self.finished += trial.state.name in FINISHED
            line = f"[{self.finished}/{self.total}] {describe_trial(trial, self.objective, self.second)}"
        if self.live:
            self.progress.console.print(line, markup=False, highlight=False)
        elif not self.quiet:
            print(line, flush=True)


def describe_trial(trial, objective: str, second: str | None) -> str:
    done = trial.state.name == "COMPLETE"
    values = ", ".join(f"{n} {v:.4g}" for n, v in zip(_value_names(objective, second), trial.values if done else []))
    params = " ".join(f"{k}={_short(v)}" for k, v in trial.params.items())
    note = trial.user_attrs.get("pruned") or trial.user_attrs.get("error") or ""
    return f"trial {trial.number} {trial.state.name.lower()}{': ' + values if values else ''} [{params}]" + (
        f" ({note})" if note and not values else "")


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def save_plots(study, folder: Path, objective: str, second: str | None,
               say: Callable[[str], None] = print) -> list[Path]:
    """Optuna's history, parameter-importance, parallel-coordinate (and Pareto-front) plots as HTML and PNG."""
    optuna = require_optuna()
    try:
        import matplotlib
        import plotly  # noqa: F401  (the HTML plots)
    except ImportError as error:
        say(f"plots skipped: {error.name} is not installed ({INSTALL})")
        return []
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization as vis
    import optuna.visualization.matplotlib as vismpl
    from optuna.importance import FanovaImportanceEvaluator
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        say("plots skipped: no completed trial")
        return []
    folder.mkdir(parents=True, exist_ok=True)
    target = (lambda t: t.values[0]) if second else None
    kwargs = {"target": target, "target_name": objective} if second else {"target_name": objective}
    n_params = len({k for t in complete for k in t.params})
    plots: list[tuple[str, str, dict]] = [("history", "plot_optimization_history", kwargs)]
    if len(complete) >= 2 and n_params > 1:
        plots.append(("importance", "plot_param_importances",
                      kwargs | {"evaluator": FanovaImportanceEvaluator(seed=0)}))
    plots.append(("parallel", "plot_parallel_coordinate", kwargs))
    if second:
        plots.append(("pareto", "plot_pareto_front", {"target_names": _value_names(objective, second)}))
    written = []
    for name, function, options in plots:
        for kind, module in (("html", vis), ("png", vismpl)):
            path = folder / f"{name}.{kind}"
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    figure = getattr(module, function)(study, **options)
                    if kind == "html":  # plotly.js once, next to the pages: they open offline
                        figure.write_html(path, include_plotlyjs="directory")
                    else:
                        axes = figure.flat[0] if hasattr(figure, "flat") else figure
                        axes.figure.set_size_inches(10, 5)
                        axes.figure.savefig(path, dpi=100, bbox_inches="tight")
                        plt.close(axes.figure)
                written.append(path)
            except (ValueError, RuntimeError, TypeError, ImportError, optuna.exceptions.OptunaError) as error:
                say(f"warning: plot {path.name} not written ({type(error).__name__}: {str(error).splitlines()[0]})")
    return written
