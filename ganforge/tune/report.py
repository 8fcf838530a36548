"""What a search shows and leaves behind besides best.yaml: the trial table (trials.csv), the live progress and
the Optuna plots."""

from __future__ import annotations

import csv
import threading
import warnings
from pathlib import Path
from typing import Any, Callable

from ganforge.tune.samplers import INSTALL, require_optuna

FINISHED = ("COMPLETE", "PRUNED")  # the trial states that count towards --trials


def _value_names(objective: str, second: str | None) -> list[str]:
    return [objective] + ([{"time": "seconds", "params": "g_params"}[second]] if second else [])


def trial_rows(study, objective: str, second: str | None) -> tuple[list[str], list[dict[str, Any]]]:
    """All trials as flat rows: number, state, objective value(s), params, wall and CPU seconds, steps, note."""
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
        row["seconds"] = t.user_attrs.get("seconds")  # wall time
        row["cpu_seconds"] = t.user_attrs.get("cpu_seconds")  # process CPU time, evaluations included
        row["train_cpu_seconds"] = t.user_attrs.get("train_cpu_seconds")  # without them: what a CPU budget counts
        row["steps"] = t.user_attrs.get("step")
        row["note"] = t.user_attrs.get("pruned") or t.user_attrs.get("error") or (
            "interrupted" if t.user_attrs.get("interrupted") else "")
        rows.append(row)
    columns = ["number", "state", *names, *(["pareto"] if second else []), *keys, "seconds", "cpu_seconds",
               "train_cpu_seconds", "steps", "note"]
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
