"""Optuna as an optional dependency: importing it, and its samplers and pruners by name."""

from __future__ import annotations

from ganforge.errors import GanforgeError
from ganforge.tune.space import Param

SAMPLERS = ("grid", "random", "tpe", "cmaes", "nsga2")
PRUNERS = ("median", "hyperband", "none")
INSTALL = "pip install 'ganforge[tune]'"


def require_optuna():
    """The optuna module, or a one-line error naming the extra that installs it."""
    try:
        import optuna
    except ImportError:
        raise GanforgeError(f"tune needs optuna: {INSTALL}") from None
    return optuna


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
