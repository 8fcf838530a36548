"""Hyperparameter search: space validation, every sampler end to end, resume, reproducible best config, CLI."""

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import ganforge
from ganforge.api import resolve_config
from ganforge.errors import GanforgeError
from ganforge.tune import load_space, parse_space, tune

optuna = pytest.importorskip("optuna")  # the 'tune' extra

SPACE = {
    "train.lr_g": {"type": "float", "low": 1e-4, "high": 1e-3, "log": True},
    "model.loss": {"type": "categorical", "choices": ["nonsaturating", "hinge"]},
    "train.n_critic": {"type": "int", "low": 1, "high": 2},
}


def base(**extra) -> dict:
    """Digits at 8 px, width 8, 6 steps, evaluated at steps 3 and 6 on 64 samples."""
    return {"data.source": "digits", "data.resolution": 8, "model.width": 8, "model.latent_dim": 16,
            "train.batch_size": 16, "train.steps": 6, "train.eval_every": 3, "train.eval_n": 64, "train.log_every": 3,
            "train.sample_every": 100, "train.checkpoint_every": 100, "train.device": "cpu", **extra}


def final_score(run_dir: Path, metric: str = "fid") -> float:
    last = sorted((run_dir / "eval").glob("step_*.json"))[-1]
    return json.loads(last.read_text())["scores"][metric]


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("spec, needle", [
    ({"train.lr_gg": {"type": "float", "low": 0.1, "high": 1}}, "train.lr_gg"),
    ({"optim.lr": {"type": "float", "low": 0.1, "high": 1}}, "optim.lr"),
    ({"train.lr_g": {"type": "float", "low": 1e-3, "high": 1e-3}}, "empty range"),
    ({"train.n_critic": {"type": "int", "low": 5, "high": 1}}, "empty range"),
    ({"model.loss": {"type": "categorical", "choices": []}}, "non-empty list"),
    ({"train.lr_g": {"type": "uniform", "low": 0.1, "high": 1}}, "unknown type"),
    ({"train.n_critic": {"type": "float", "low": 1, "high": 3}}, "use type int"),
    ({"train.n_critic": {"type": "categorical", "choices": [1, "two"]}}, "expected an integer"),
    ({"train.lr_g": {"type": "float", "low": 0, "high": 1, "log": True}}, "log range needs low > 0"),
    ({"train.lr_g": {"type": "float", "low": 0.1, "hgh": 1}}, "unknown field"),
])
def test_space_errors_name_the_key(spec, needle):
    with pytest.raises(GanforgeError) as caught:
        parse_space(spec)
    message = str(caught.value)
    assert needle in message and "\n" not in message
    assert next(iter(spec)) in message


def test_space_parsing_and_grid_values(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("train.lr_g: {type: float, low: 1.0e-4, high: 3.0e-4, step: 1.0e-4}\n"
                    "model.options.diffaugment: [true, false]\n"
                    "train.batch_size: {type: int, low: 8, high: 32, step: 8}\n")
    params = {p.key: p for p in load_space(path)}
    assert params["train.lr_g"].grid_values() == [1e-4, 2e-4, 3e-4]
    assert params["model.options.diffaugment"].grid_values() == [True, False]
    assert params["train.batch_size"].grid_values() == [8, 16, 24, 32]
    with pytest.raises(GanforgeError, match="train.lr_g.*grid sampler needs discrete values"):
        parse_space({"train.lr_g": {"type": "float", "low": 1e-4, "high": 1e-3}})[0].grid_values()


@pytest.mark.parametrize("sampler", ["random", "tpe", "cmaes"])
def test_single_objective_samplers_complete(sampler, tmp_path):
    if sampler == "cmaes":
        pytest.importorskip("cmaes")
    result = tune(SPACE, base(), trials=3, sampler=sampler, out=tmp_path / "t", plots=sampler == "tpe", quiet=True)
    assert result.counts["complete"] == 3
    rows = read_csv(result.trials_csv)
    assert [int(r["number"]) for r in rows] == [0, 1, 2]
    values = [float(r["fid"]) for r in rows]
    assert all(math.isfinite(v) and v > 0 for v in values)
    assert result.best_value == min(values) and result.best_number == values.index(min(values))
    for row in rows:  # each trial trained with its own sampled settings
        saved = resolve_config(tmp_path / "t" / f"trial_{int(row['number']):04d}" / "config.yaml")
        assert saved.model.loss == row["model.loss"] and saved.train.n_critic == int(row["train.n_critic"])
        assert math.isclose(saved.train.lr_g, float(row["train.lr_g"]), rel_tol=1e-12)
    trial = result.study.trials[0]
    assert sorted(trial.intermediate_values) == [3, 6]  # the step-3 evaluation for pruning, then the final one
    if sampler == "tpe":
        names = {p.name for p in result.plots}
        assert {"history.html", "history.png", "importance.png", "parallel.html", "parallel.png"} <= names


def test_grid_search_through_the_cli(tmp_path, cli_env):
    space = tmp_path / "space.yaml"
    space.write_text("model.loss: {type: categorical, choices: [nonsaturating, hinge]}\n"
                     "train.n_critic: {type: int, low: 1, high: 2}\n")
    out = tmp_path / "grid"
    command = [sys.executable, "-m", "ganforge", "tune", "--space", str(space), "--trials", "10", "--sampler", "grid",
               "--out", str(tmp_path), "--name", "grid", "--no-plots", "--pruner", "none", "--data", "digits", "--resolution", "8", "--width", "8",
               "--latent-dim", "16", "--batch-size", "16", "--steps", "4", "--eval-every", "2", "--eval-n", "64",
               "--sample-every", "100", "--checkpoint-every", "100", "--device", "cpu", "--seed", "3"]
    done = subprocess.run(command, capture_output=True, text=True, env=cli_env, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = read_csv(out / "trials.csv")
    visited = {(r["model.loss"], r["train.n_critic"]) for r in rows}
    assert len(rows) == 4 and visited == {("nonsaturating", "1"), ("nonsaturating", "2"), ("hinge", "1"), ("hinge", "2")}
    assert all(r["state"] == "complete" for r in rows)
    assert "best trial" in done.stdout and (out / "best.yaml").exists()
    best = resolve_config(out / "best.yaml")
    assert best.train.seed == 3 and best.train.steps == 4 and best.name is None
    assert best.train.eval_every == 4 and best.train.eval_n == 64  # scored once, at the end, as the trial was
    assert done.stdout.startswith(f"tune folder {out}:")


def test_nsga2_two_objectives(tmp_path):
    space = {"model.width": {"type": "int", "low": 4, "high": 12, "step": 4},
             "train.lr_d": {"type": "float", "low": 1e-4, "high": 1e-3, "log": True}}
    result = tune(space, base(), trials=3, sampler="nsga2", out=tmp_path / "n", second_objective="params",
                  plots=False, quiet=True)
    assert result.counts["complete"] == 3
    assert [d.name for d in result.study.directions] == ["MINIMIZE", "MINIMIZE"]
    rows = read_csv(result.trials_csv)
    for row in rows:  # the second objective is the generator's parameter count, which grows with the width
        run = ganforge.load(tmp_path / "n" / f"trial_{int(row['number']):04d}")
        assert float(row["g_params"]) == sum(p.numel() for p in run.generator.parameters())
    by_width = {int(r["model.width"]): float(r["g_params"]) for r in rows}
    assert sorted(by_width.values()) == [by_width[w] for w in sorted(by_width)]
    assert any(r["pareto"] == "True" for r in rows)


def test_interrupted_study_resumes_without_repeating(tmp_path):
    out = tmp_path / "r"
    started = []

    def interrupt_third(trainer):
        if trainer.step == 1:
            started.append(trainer.run_dir.name)
        if trainer.run_dir.name == "trial_0002" and trainer.step == 3:
            raise KeyboardInterrupt

    # no pruning: every finished trial completes, whatever the family's recipe scores at step 3
    with pytest.raises(KeyboardInterrupt):
        tune(SPACE, base(), trials=4, sampler="random", out=out, plots=False, quiet=True, callbacks=[interrupt_third],
             pruner="none")
    assert started == ["trial_0000", "trial_0001", "trial_0002"]
    stamps = {n: (out / n / "eval" / "step_000006.json").stat().st_mtime_ns for n in ("trial_0000", "trial_0001")}
    stored = optuna.load_study(study_name="ganforge", storage=f"sqlite:///{out / 'study.db'}").trials
    assert [t.state.name for t in stored] == ["COMPLETE", "COMPLETE", "FAIL"] and stored[2].user_attrs["interrupted"]

    started.clear()
    result = tune(SPACE, base(), trials=4, sampler="random", out=out, plots=False, quiet=True,
                  callbacks=[interrupt_third], pruner="none")
    assert started == ["trial_0003", "trial_0004"]  # only the missing trials ran, the cut-short one first
    trials = {t.number: t for t in result.study.trials}
    assert result.counts["complete"] == 4 and trials[3].params == trials[2].params
    assert trials[3].user_attrs["retry_of"] == 2
    assert {n: (out / n / "eval" / "step_000006.json").stat().st_mtime_ns for n in stamps} == stamps
    finished = [tuple(sorted(t.params.items())) for t in trials.values() if t.state.name == "COMPLETE"]
    assert len(set(finished)) == 4
    with pytest.raises(GanforgeError, match="different space"):
        tune({"train.lr_g": SPACE["train.lr_g"]}, base(), trials=5, sampler="random", out=out, quiet=True)


def test_best_config_reproduces_the_trial_score(tmp_path, monkeypatch):
    result = tune(SPACE, base(**{"train.seed": 7}), trials=2, sampler="random", out=tmp_path / "b", plots=False,
                  quiet=True)
    monkeypatch.chdir(tmp_path)
    run = ganforge.train(resolve_config(result.best_config), quiet=True)
    assert run.parent == Path("runs")  # out/name left to the defaults: a new run folder
    assert final_score(tmp_path / run) == result.best_value  # bit-exact: same seed, deterministic CPU training
    # scored once, at the end: the trial's step-3 evaluation (for pruning) did not change its training
    assert [p.name for p in (tmp_path / run / "eval").glob("step_*.json")] == ["step_000006.json"]
    assert final_score(tmp_path / "b" / f"trial_{result.best_number:04d}") == result.best_value


def test_diverged_trial_is_pruned_and_intermediate_scores_reported(tmp_path):
    def poison(trainer):  # NaN weights every step: rollbacks cannot help, the trainer gives up ("diverged")
        if trainer.run_dir.name == "trial_0000":
            with torch.no_grad():
                next(trainer.family.generator.parameters()).fill_(float("nan"))

    result = tune({"train.lr_g": SPACE["train.lr_g"]}, base(**{"train.max_rollbacks": 0, "train.checkpoint_every": 2}),
                  trials=2, sampler="random", out=tmp_path / "d", pruner="hyperband", plots=False, quiet=True,
                  callbacks=[poison])
    states = {t.number: t.state.name for t in result.study.trials}
    assert states == {0: "PRUNED", 1: "COMPLETE"}
    assert result.study.trials[0].user_attrs["pruned"] == "diverged"
    assert result.best_number == 1
    assert sorted(result.study.trials[1].intermediate_values) == [3, 6]


def test_cli_space_errors_are_one_line(tmp_path, cli_env):
    cases = {"unknown": ("train.lr_gen: {type: float, low: 1.0e-4, high: 1.0e-3}\n", "train.lr_gen"),
             "empty": ("train.lr_g: {type: float, low: 1.0e-3, high: 1.0e-4}\n", "empty range")}
    running = {}
    for name, (text, _) in cases.items():  # both at once: most of the time is the interpreter's start-up
        space = tmp_path / f"{name}.yaml"
        space.write_text(text)
        running[name] = subprocess.Popen([sys.executable, "-m", "ganforge", "tune", "--space", str(space),
                                          "--trials", "2", "--out", str(tmp_path / name), "--steps", "4"],
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env)
    for name, process in running.items():
        _, stderr = process.communicate(timeout=120)
        lines = stderr.strip().splitlines()
        assert process.returncode == 2
        assert len(lines) == 1 and lines[0].startswith("error:") and cases[name][1] in lines[0]
        assert "train.lr_g" in lines[0]
        assert not (tmp_path / name).exists()
