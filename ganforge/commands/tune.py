"""`ganforge tune`: hyperparameter search over a YAML space, taking the same training flags as `ganforge train`."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Optional, get_type_hints

import typer

from ganforge.errors import GanforgeError

# train's flags that tune defines itself: --out/--name place the tune folder as train's place the run folder
_NOT_FOR_TUNE = {"out", "name"}


def tune_command(
    space: Path = typer.Option(..., help="YAML search space: {config.key: {type, low, high, log, step} | {type: categorical, choices}}"),
    trials: int = typer.Option(20, help="finished trials wanted in the study (those of earlier runs count)"),
    sampler: str = typer.Option("tpe", help="grid | random | tpe | cmaes | nsga2"),
    storage: Optional[str] = typer.Option(None, help="SQLAlchemy URL shared by workers (default: study.db in the "
                                                     "tune folder)"),
    study: Optional[str] = typer.Option(None, help="study name (default: the space file's name)"),
    n_jobs: int = typer.Option(1, "--n-jobs", help="trials run in parallel threads of this process"),
    out: Optional[Path] = typer.Option(None, help="folder holding tune folders, as for train (default runs/)"),
    name: Optional[str] = typer.Option(None, help="tune folder name (default tune-STUDY): holds study.db, "
                                                  "trial_NNNN/, best.yaml, trials.csv, plots/"),
    objective: str = typer.Option("fid", help="fid | kid (minimised) or is (maximised), scored at the trial's end"),
    second_objective: Optional[str] = typer.Option(None, "--second-objective",
                                                   help="time | params: a second objective to minimise (multi-objective)"),
    pruner: str = typer.Option("median", help="median | hyperband | none (pruning on intermediate scores)"),
    eval_every: Optional[int] = typer.Option(None, "--eval-every", help="evaluate every N steps (default steps/4)"),
    eval_n: Optional[int] = typer.Option(None, "--eval-n", help="samples per evaluation"),
    eval_extractor: Optional[str] = typer.Option(None, "--eval-extractor", help="feature extractor for the scores"),
    sampler_seed: int = typer.Option(0, "--sampler-seed", help="seed of the sampler (train's --seed seeds each trial)"),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="write Optuna plots as HTML and PNG"),
    **train_flags: Any,
) -> None:
    """Search hyperparameters with Optuna; writes best.yaml (for `ganforge train --config`), trials.csv and plots."""
    from rich.console import Console
    from rich.table import Table

    from ganforge import tune as tuning
    from ganforge.cli import TRAIN_FLAGS, parse_options

    overrides = {field: train_flags[flag] for flag, field in TRAIN_FLAGS.items()
                 if flag not in _NOT_FOR_TUNE and train_flags.get(flag) is not None}
    overrides |= parse_options(train_flags.get("opt") or [])
    for key, value in (("train.eval_n", eval_n), ("train.eval_extractor", eval_extractor)):
        if value is not None:
            overrides[key] = value
    if sampler not in tuning.SAMPLERS:
        raise GanforgeError(f"--sampler: unknown sampler '{sampler}' (expected one of: {', '.join(tuning.SAMPLERS)})")
    study = study or space.stem
    result = tuning.tune(space, overrides, trials, sampler, storage=storage, study_name=study, n_jobs=n_jobs,
                         out=tune_folder(out, name, study), objective=objective, config_file=train_flags.get("config"),
                         pruner=pruner, second_objective=second_objective, eval_every=eval_every, seed=sampler_seed,
                         plots=plots, quiet=bool(train_flags.get("quiet")))
    console = Console()
    columns, rows = tuning.trial_rows(result.study, objective, second_objective)
    table = Table(title=f"study {result.study.study_name}: {len(rows)} trials")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if row[c] is None else tuning._short(row[c]) for c in columns),
                      style="bold green" if row["number"] == result.best_number else None)
    console.print(table)
    counts = ", ".join(f"{n} {state}" for state, n in result.counts.items() if n)
    console.print(f"trials: {counts}; table: {result.trials_csv}", markup=False)
    if result.best_config is None:
        console.print("no trial completed: no best config", markup=False)
        return
    params = " ".join(f"{k}={tuning._short(v)}" for k, v in result.best_params.items())
    console.print(f"best trial {result.best_number}: {objective} {result.best_value:.4g} [{params}]", markup=False)
    console.print(f"best config: {result.best_config} (ganforge train --config {result.best_config})", markup=False)
    if result.plots:
        console.print(f"plots: {result.plots[0].parent}", markup=False)


def tune_folder(out: Optional[Path], name: Optional[str], study: str) -> Path:
    """OUT/NAME (default runs/tune-STUDY); an OUT that already holds a study.db (the old meaning of --out) is used
    as the tune folder itself, so that earlier searches resume."""
    if name is not None and (not name or Path(name).name != name or name in (".", "..")):
        raise GanforgeError(f"--name {name!r}: expected a folder name, not a path (use --out for the parent)")
    if out is not None and name is None and (out / "study.db").is_file():
        return out
    return (out or Path("runs")) / (name or f"tune-{study}")


def _with_train_flags(function):
    """Give `function` every `ganforge train` flag (less --out/--name, which tune defines itself, plus --config,
    --opt, --quiet) as options."""
    from ganforge.cli import TRAIN_FLAGS, train

    train_signature = inspect.signature(train)
    train_hints = get_type_hints(train)
    wanted = (set(TRAIN_FLAGS) - _NOT_FOR_TUNE) | {"config", "opt", "quiet"}
    own = inspect.signature(function)
    hints = get_type_hints(function)
    parameters = [p for p in own.parameters.values() if p.kind != inspect.Parameter.VAR_KEYWORD]
    taken = {p.name for p in parameters}
    for name, parameter in train_signature.parameters.items():
        if name in wanted and name not in taken:
            parameters.append(parameter.replace(annotation=train_hints[name], kind=inspect.Parameter.KEYWORD_ONLY))
            hints[name] = train_hints[name]
    hints.pop("train_flags", None)

    def command(**kwargs: Any) -> None:
        mine = {name: kwargs.pop(name) for name in list(kwargs) if name in own.parameters}
        function(**mine, **kwargs)

    command.__signature__ = own.replace(parameters=[p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
                                                    for p in parameters])
    command.__annotations__ = hints
    command.__doc__ = function.__doc__
    command.__name__ = function.__name__
    return command


def register(app: typer.Typer) -> None:
    app.command("tune")(_with_train_flags(tune_command))
