"""`ganforge tune --trial-cpu-seconds`: each trial trains until a budget of process CPU seconds (its evaluations
not counted) or its step budget, and is scored by the model at that point."""

import csv
import json
from pathlib import Path

import pytest

import ganforge
from ganforge.api import resolve_config
from ganforge.errors import GanforgeError
from ganforge.training.trainer import Trainer

optuna = pytest.importorskip("optuna")  # the 'tune' extra

from ganforge.tune import search, tune  # noqa: E402

SPACE = {"train.n_critic": [1, 2]}


def base(**extra) -> dict:
    """Digits at 8 px, width 8, a step budget far beyond what the CPU budget buys, 64 evaluation samples."""
    return {"data.source": "digits", "data.resolution": 8, "model.width": 8, "model.latent_dim": 16,
            "train.batch_size": 16, "train.steps": 10 ** 6, "train.eval_n": 64, "train.log_every": 5,
            "train.sample_every": 10 ** 6, "train.checkpoint_every": 10 ** 6, "train.device": "cpu", **extra}


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def scores(run_dir: Path) -> dict[int, float]:
    return {json.loads(p.read_text())["step"]: json.loads(p.read_text())["scores"]["fid"]
            for p in (run_dir / "eval").glob("step_*.json")}


def test_a_small_cpu_budget_ends_the_trial_before_its_step_budget(tmp_path):
    result = tune(SPACE, base(), trials=1, sampler="grid", out=tmp_path / "t", pruner="none", plots=False,
                  quiet=True, trial_cpu_seconds=1.0)
    trial = result.study.trials[0]
    assert trial.state.name == "COMPLETE"
    assert 0 < trial.user_attrs["step"] < 10 ** 6
    assert trial.user_attrs["train_cpu_seconds"] >= 1.0
    assert trial.user_attrs["cpu_seconds"] >= trial.user_attrs["train_cpu_seconds"]  # evaluations on top
    rows = read_csv(result.trials_csv)
    assert {"seconds", "cpu_seconds", "train_cpu_seconds", "steps"} <= set(rows[0])
    assert float(rows[0]["train_cpu_seconds"]) == trial.user_attrs["train_cpu_seconds"]
    assert int(rows[0]["steps"]) == trial.user_attrs["step"]


class FakeCpu:
    """A process CPU clock that a trial's steps advance by n_critic x 0.5 s and every evaluation by 100 s."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def after_step(self, trainer) -> None:  # a tune callback: runs after the budget's check of the step
        self.now += 0.5 * trainer.config.train.n_critic


def test_trials_stop_at_equal_cpu_scored_by_the_model_at_the_stop(tmp_path, monkeypatch):
    clock = FakeCpu()
    monkeypatch.setattr(search, "cpu_clock", clock)
    evaluate = Trainer.evaluate

    def costly_evaluate(self):
        clock.now += 100.0  # must not count against the training budget
        return evaluate(self)

    monkeypatch.setattr(Trainer, "evaluate", costly_evaluate)
    result = tune(SPACE, base(**{"train.seed": 3, "train.ema": 0.9}), trials=2, sampler="grid",
                  out=tmp_path / "t", pruner="none", plots=False, quiet=True, trial_cpu_seconds=6.0, eval_every=3,
                  callbacks=[clock.after_step])
    trials = {t.params["train.n_critic"]: t for t in result.study.trials}
    # the budget is checked after each step: n_critic 1 spends 0.5 per step, so it stops at step 13 (6.0 spent
    # before it), n_critic 2 at step 7: the same CPU, half the steps
    assert trials[1].user_attrs["step"] == 13 and trials[2].user_attrs["step"] == 7
    for n_critic, trial in trials.items():
        assert trial.user_attrs["train_cpu_seconds"] == 6.0  # the evaluations' 100 s each left out
        assert sorted(trial.intermediate_values) == [3, 6]  # reported at CPU marks 3 and 6, not at steps
        run = Path(trial.user_attrs["run_dir"])
        stop = trial.user_attrs["step"]
        evaluated = scores(run)
        assert max(evaluated) == stop and trial.value == evaluated[stop]  # the score is of the model at the stop
        assert trial.intermediate_values[6] == trial.value
        assert (run / "checkpoints" / "last.safetensors").exists()
        assert trial.user_attrs["config"]["train"]["steps"] == stop
    # best.yaml trains exactly as far as the budget went, and retraining it gives the trial's score
    best = resolve_config(result.best_config)
    assert best.train.steps == trials[result.best_params["train.n_critic"]].user_attrs["step"]
    assert best.train.eval_every == best.train.steps and "CPU budget" in result.best_config.read_text()
    monkeypatch.chdir(tmp_path)
    run = ganforge.train(best, quiet=True)
    assert scores(tmp_path / run) == {best.train.steps: result.best_value}


def test_the_step_budget_still_ends_a_trial_first(tmp_path, monkeypatch):
    monkeypatch.setattr(search, "cpu_clock", lambda: 0.0)  # no CPU spent at all
    result = tune(SPACE, base(**{"train.steps": 4}), trials=1, sampler="grid", out=tmp_path / "t", plots=False,
                  quiet=True, trial_cpu_seconds=60.0)
    trial = result.study.trials[0]
    assert trial.user_attrs["step"] == 4 and trial.value == scores(Path(trial.user_attrs["run_dir"]))[4]


def test_cpu_budget_errors_and_resume_check(tmp_path):
    with pytest.raises(GanforgeError, match="trial-cpu-seconds"):
        tune(SPACE, base(), trials=1, out=tmp_path / "a", quiet=True, trial_cpu_seconds=0)
    with pytest.raises(GanforgeError, match="n-jobs"):
        tune(SPACE, base(), trials=1, out=tmp_path / "a", quiet=True, trial_cpu_seconds=5, n_jobs=2)
    tune(SPACE, base(**{"train.steps": 2}), trials=1, sampler="grid", out=tmp_path / "b", plots=False, quiet=True,
         trial_cpu_seconds=60.0)
    with pytest.raises(GanforgeError, match="CPU budget"):  # resuming with another budget is refused
        tune(SPACE, base(**{"train.steps": 2}), trials=2, sampler="grid", out=tmp_path / "b", plots=False,
             quiet=True, trial_cpu_seconds=30.0)
