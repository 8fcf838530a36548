"""The search itself: one trial trains a config drawn from the space and returns its score; `tune` runs the
study (resuming a stored one) and writes best.yaml, trials.csv and the plots."""

from __future__ import annotations

import json
import math
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from ganforge.config import RunConfig, validate
from ganforge.errors import GanforgeError
from ganforge.tune.report import FINISHED, TrialProgress, save_plots, write_trials_csv
from ganforge.tune.samplers import make_pruner, make_sampler, require_optuna
from ganforge.tune.space import Param, load_space

OBJECTIVES = {"fid": "minimize", "kid": "minimize", "is": "maximize"}
cpu_clock = time.process_time  # process CPU seconds (a module attribute so that tests can drive it)
SECOND_OBJECTIVES = ("time", "params")


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


def _base_config(config_file: str | Path | None, overrides: dict[str, Any], objective: str,
                 eval_every: int | None, cpu_budget: bool = False) -> dict[str, Any]:
    """The trial-independent overrides: the user's, plus evaluation settings that make the objective exist. With a
    per-trial CPU budget the trainer itself never evaluates (train.eval_every 0): the search evaluates at CPU marks."""
    from ganforge.api import resolve_config

    base = dict(overrides)
    probe = resolve_config(config_file, base)
    metrics = [m.strip() for m in probe.train.eval_metrics.split(",") if m.strip()]
    base["train.eval_metrics"] = ",".join([objective] + [m for m in metrics if m != objective])
    if cpu_budget:
        if probe.train.eval_n < 2:
            raise GanforgeError(f"train.eval_n must be at least 2 to score trials, got {probe.train.eval_n}")
        base["train.eval_every"] = 0
    else:
        every = eval_every if eval_every is not None else probe.train.eval_every or max(1, probe.train.steps // 4)
        if every < 1:
            raise GanforgeError(f"--eval-every must be at least 1, got {every}")
        base["train.eval_every"] = every
    validate(resolve_config(config_file, base))
    return base


class _BudgetSpent(Exception):
    """Raised by the CPU-budget callback after the trial's final evaluation and checkpoint: ends trainer.fit()."""


@dataclass
class CpuBudget:
    """A per-trial budget of process CPU seconds: the trial trains until `seconds` of CPU (evaluations not
    counted) or its step budget, whichever comes first, and is scored at that point; intermediate scores (for
    pruning) come every `every` CPU seconds and are reported at those CPU marks, so that trials of different cost
    per step are compared at equal CPU."""

    seconds: float
    every: float

    def marks(self) -> list[float]:
        count = max(1, math.ceil(self.seconds / self.every - 1e-9))
        return [min(self.seconds, self.every * (i + 1)) for i in range(count)]


class _Objective:
    """Trains one trial's config and returns its final score (and second objective); prunes on the way."""

    def __init__(self, params: list[Param], config_file, base: dict[str, Any], out: Path, objective: str,
                 second: str | None, callbacks: list[Callable] | None, quiet: bool,
                 budget: CpuBudget | None = None):
        self.params, self.config_file, self.base, self.out = params, config_file, base, out
        self.objective, self.second, self.callbacks, self.quiet = objective, second, callbacks or [], quiet
        self.budget = budget
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
        cpu = {"start": cpu_clock(), "eval": 0.0, "train": None}  # process CPU seconds

        def train_cpu() -> float:
            return cpu_clock() - cpu["start"] - cpu["eval"]

        def check(value, step: int) -> None:
            """Report an intermediate score at `step` (a step, or a CPU mark in seconds) and prune if due."""
            if multi or step in reported:
                return
            reported.add(step)
            if value is None or not math.isfinite(value):
                raise optuna.TrialPruned(f"{self.objective} is {value} at {step_name} {step}")
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"{self.objective} {value:.4g} at {step_name} {step}")

        step_name = "step" if self.budget is None else "CPU second"

        def report(trainer) -> None:
            holder["trainer"] = trainer
            latest = trainer.last_eval
            step = latest.get("step")
            if step is not None:
                check(latest.get(self.objective), step)

        marks = self.budget.marks() if self.budget is not None else []

        def spend(trainer) -> None:
            """CPU-budget mode: evaluate at each CPU mark; at the budget (or the step budget) score the model as it
            is now, checkpoint it and end training."""
            holder["trainer"] = trainer
            used = train_cpu()
            final = used >= self.budget.seconds or trainer.step >= trainer.config.train.steps
            if not final and (not marks or used < marks[0]):
                return
            trainer.evaluate()
            value = trainer.last_eval.get(self.objective)
            while marks and used >= marks[0]:
                mark = marks.pop(0)
                if not marks or used < marks[0]:  # several marks passed in one step: report the latest only
                    check(value, int(round(mark)))
            if final:
                cpu["train"] = used
                trainer.checkpoint_if_finite()
                trainer.save_samples()
                raise _BudgetSpent()

        def timed_evaluate(evaluate):
            def wrapper(*args, **kwargs):
                begin = cpu_clock()
                try:
                    return evaluate(*args, **kwargs)
                finally:
                    cpu["eval"] += cpu_clock() - begin
            return wrapper

        start = time.perf_counter()
        trainer = None
        try:
            try:
                data = self.load_data(config)
                trainer = Trainer(config, prepare_run(config), quiet=True, data=data,
                                  callbacks=[spend if self.budget is not None else report, *self.callbacks])
                trainer.evaluate = timed_evaluate(trainer.evaluate)  # evaluations do not count as training CPU
                holder["trainer"] = trainer
                trainer.fit()
            except _BudgetSpent:
                pass
            finally:
                trainer = holder.get("trainer", trainer)
                if trainer is not None:
                    trainer.logger.close()
                stored = _plain(config.to_dict())
                if self.budget is not None and trainer is not None and cpu["train"] is not None:
                    stored["train"]["steps"] = trainer.step  # best.yaml trains as far as the budget went
                trial.set_user_attr("config", {**stored, "out": None, "name": None})
                trial.set_user_attr("seconds", round(time.perf_counter() - start, 2))
                trial.set_user_attr("cpu_seconds", round(cpu_clock() - cpu["start"], 2))
                trial.set_user_attr("train_cpu_seconds", round(cpu["train"] if cpu["train"] is not None
                                                               else train_cpu(), 2))
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
            if self.budget is None and step not in reported:
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
    if stored.get("cpu_budget") != signature["cpu_budget"]:
        raise GanforgeError(f"study '{study.study_name}' was created with CPU budget {stored.get('cpu_budget')}, not "
                            f"{signature['cpu_budget']} (--trial-cpu-seconds / --eval-every); resume with the same "
                            "settings or pick another --study")
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
         callbacks: list[Callable] | None = None, trial_cpu_seconds: float | None = None) -> TuneResult:
    """Search `space` with Optuna over `trials` finished trials (resuming a stored study) and write the results
    to the tune folder `out` (default runs/tune-STUDY).

    `trial_cpu_seconds`: every trial trains until it has used this many process CPU seconds (its evaluations not
    counted) or reaches train.steps, and is scored there; `eval_every` then counts CPU seconds (default a quarter of
    the budget) and intermediate scores are compared at those CPU marks."""
    optuna = require_optuna()

    if objective not in OBJECTIVES:
        raise GanforgeError(f"unknown objective '{objective}' (expected one of: {', '.join(OBJECTIVES)})")
    if second_objective is not None and second_objective not in SECOND_OBJECTIVES:
        raise GanforgeError(f"unknown second objective '{second_objective}' (expected {' or '.join(SECOND_OBJECTIVES)})")
    if trials < 1 or n_jobs < 1:
        raise GanforgeError(f"--trials and --n-jobs must be at least 1, got {trials} and {n_jobs}")
    budget = None
    if trial_cpu_seconds is not None:
        if not (trial_cpu_seconds > 0 and math.isfinite(trial_cpu_seconds)):
            raise GanforgeError(f"--trial-cpu-seconds must be a positive number of seconds, got {trial_cpu_seconds}")
        quarter = trial_cpu_seconds / 4 if trial_cpu_seconds >= 4 else trial_cpu_seconds  # marks in whole seconds
        every = float(eval_every) if eval_every is not None else quarter
        if not every >= min(1.0, trial_cpu_seconds):
            raise GanforgeError(f"--eval-every (CPU seconds with --trial-cpu-seconds) must be at least 1, got {every}")
        if n_jobs > 1:  # the process CPU clock would count every thread's trial
            raise GanforgeError("--trial-cpu-seconds measures the process's CPU clock: use --n-jobs 1 (or several "
                                "worker processes on one --storage)")
        budget = CpuBudget(float(trial_cpu_seconds), every)
    params = load_space(space)
    base = _base_config(config_file, base_overrides or {}, objective, eval_every, cpu_budget=budget is not None)
    study_name = study_name or "ganforge"
    out = Path(out) if out is not None else Path("runs") / f"tune-{study_name}"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise GanforgeError(f"cannot write to the output folder {out}: {error.strerror or error}") from None
    multi = second_objective is not None
    directions = [OBJECTIVES[objective]] + (["minimize"] if multi else [])
    wanted = trials
    if sampler == "grid":
        wanted = min(trials, math.prod(len(p.grid_values()) for p in params))
    from ganforge.api import resolve_config

    probe = resolve_config(config_file, base)
    make_sampler(sampler, params, trials, seed, multi)  # reject a bad sampler before touching the storage
    if budget is None:
        chosen_pruner = make_pruner(pruner if not multi else "none", probe.train.steps, base["train.eval_every"])
    else:  # intermediate scores are keyed by CPU seconds
        chosen_pruner = make_pruner(pruner if not multi else "none", max(1, round(budget.seconds)),
                                    max(1, round(budget.every)))
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
                 "second_objective": second_objective,
                 "cpu_budget": None if budget is None else {"seconds": budget.seconds, "every": budget.every}}
    _check_same_study(study, signature, directions)
    from optuna.trial import TrialState

    states = tuple(getattr(TrialState, s) for s in FINISHED)
    done = len(study.get_trials(deepcopy=False, states=states))
    remaining = max(0, wanted - done)
    if remaining:
        _prepare_resume(study)
    say = (lambda *_: None) if quiet else (lambda text: print(text, flush=True))
    say(f"tune folder {out}: study '{study_name}' in {storage_url}: {done} finished trial(s), running {remaining} "
        f"more ({sampler} sampler, {'no pruning' if multi else pruner + ' pruner'}"
        + (")" if budget is None else f", {budget.seconds:g} CPU seconds per trial, scored every {budget.every:g})"))
    progress = TrialProgress(wanted, done, objective, second_objective, quiet)
    objective_fn = _Objective(params, config_file, base, out, objective, second_objective,
                              [progress.on_step, *(callbacks or [])], quiet, budget)
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
                               callbacks=[optuna.study.MaxTrialsCallback(wanted, states=states), after_trial])
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
    budget = (study.user_attrs.get("ganforge") or {}).get("cpu_budget")
    used = best.user_attrs.get("train_cpu_seconds")
    searched = (f"the search evaluated every {search_every} for pruning" if budget is None else
                f"the trial stopped there, at its {'CPU' if used is not None and used >= budget['seconds'] else 'step'}"
                f" budget, after {used} CPU seconds of training (budget {budget['seconds']:g}); a family schedule "
                "that follows train.steps would differ from the trial's")
    header = (f"# best trial {best.number} of study '{study.study_name}' ({scores}); params: "
              f"{json.dumps(best.params)}\n# reproduce: ganforge train --config {path}\n"
              f"# evaluation: train.eval_every is the trial's steps ({train['steps']}; {searched}), so a run of the "
              f"same length is scored once, at its end, like the trial; eval_n {train['eval_n']} is the search's, so "
              f"that score compares with the trial's\n")
    path.write_text(header + yaml.safe_dump(config, sort_keys=False))
    return TuneResult(study, out, best.number, list(best.values), dict(best.params), path, csv_path, counts=counts)
