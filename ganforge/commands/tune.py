"""`ganforge tune`: hyperparameter search over a YAML space, taking the same training flags as `ganforge train`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from ganforge.errors import GanforgeError
from ganforge.flags import config_overrides, with_config_flags

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
    eval_every: Optional[int] = typer.Option(None, "--eval-every", help="evaluate every N steps (default steps/4); "
                                             "with --trial-cpu-seconds every N CPU seconds (default a quarter)"),
    trial_cpu_seconds: Optional[float] = typer.Option(
        None, "--trial-cpu-seconds", help="CPU budget per trial: each trial trains until it has used N process CPU "
        "seconds (evaluations not counted) or reaches --steps, and is scored there"),
    eval_n: Optional[int] = typer.Option(None, "--eval-n", help="samples per evaluation"),
    eval_extractor: Optional[str] = typer.Option(None, "--eval-extractor", help="feature extractor for the scores"),
    sampler_seed: int = typer.Option(0, "--sampler-seed", help="seed of the sampler (train's --seed seeds each trial)"),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="write Optuna plots as HTML and PNG"),
    opt: list[str] = typer.Option([], help="family option key=value (model.options.KEY), repeatable"),
    assignments: list[str] = typer.Option([], "--set", help="any setting section.key=value, repeatable"),
    config: Optional[Path] = typer.Option(None, help="YAML config file of the trials' fixed settings; flags "
                                          "override it"),
    quiet: bool = typer.Option(False, help="no progress output"),
    **train_flags: Any,
) -> None:
    """Search hyperparameters with Optuna; writes best.yaml (for `ganforge train --config`), trials.csv and plots."""
    from rich.console import Console
    from rich.table import Table

    from ganforge import tune as tuning
    overrides = config_overrides(train_flags, opt, assignments)
    for key, value in (("train.eval_n", eval_n), ("train.eval_extractor", eval_extractor)):
        if value is not None:
            overrides[key] = value
    if sampler not in tuning.SAMPLERS:
        raise GanforgeError(f"--sampler: unknown sampler '{sampler}' (expected one of: {', '.join(tuning.SAMPLERS)})")
    study = study or space.stem
    result = tuning.tune(space, overrides, trials, sampler, storage=storage, study_name=study, n_jobs=n_jobs,
                         out=tune_folder(out, name, study), objective=objective, config_file=config,
                         pruner=pruner, second_objective=second_objective, eval_every=eval_every, seed=sampler_seed,
                         plots=plots, quiet=quiet, trial_cpu_seconds=trial_cpu_seconds)
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


def register(app: typer.Typer) -> None:
    app.command("tune")(with_config_flags(tune_command, exclude=_NOT_FOR_TUNE))
