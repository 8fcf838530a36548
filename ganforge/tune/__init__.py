"""Hyperparameter search on Optuna: a YAML search space over any config key, FID/KID/IS objective from the
trainer's periodic evaluation, pruning, resumable storage, and the best config, trial table and plots as output."""

from ganforge.tune.report import FINISHED, TrialProgress, describe_trial, save_plots, trial_rows, write_trials_csv
from ganforge.tune.report import _short  # noqa: F401  (the CLI's trial table formats values as the progress lines do)
from ganforge.tune.samplers import INSTALL, PRUNERS, SAMPLERS, make_pruner, make_sampler, require_optuna
from ganforge.tune.search import OBJECTIVES, SECOND_OBJECTIVES, TuneResult, tune
from ganforge.tune.space import SPEC_KEYS, Param, load_space, parse_space

__all__ = ["FINISHED", "INSTALL", "OBJECTIVES", "PRUNERS", "SAMPLERS", "SECOND_OBJECTIVES", "SPEC_KEYS", "Param",
           "TrialProgress", "TuneResult", "describe_trial", "load_space", "make_pruner", "make_sampler",
           "parse_space", "require_optuna", "save_plots", "trial_rows", "tune", "write_trials_csv"]
