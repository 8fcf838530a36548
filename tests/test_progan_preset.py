"""Issue 20, ProGAN: the growth share of the run, lazy R1, the logged resolution, and a checkpoint written before
these options existed (tests/data/progan-v1-run: 3 steps at 8 px by the code of 6f1fc1f) still loads, samples as
that code did, and resumes."""

import csv
import shutil
from pathlib import Path

import pytest
import torch

import ganforge
from ganforge.api import resolve_config
from ganforge.families import DataInfo, create

OLD_RUN = Path(__file__).parent / "data" / "progan-v1-run"


def build(resolution=16, **extra):
    overrides = {"model.name": "progan", "model.width": 8, "model.latent_dim": 16, "data.resolution": resolution,
                 "train.batch_size": 4, "train.device": "cpu"} | extra
    return create(resolve_config(overrides=overrides), DataInfo(1, resolution))


def test_grow_share_grows_in_its_share_of_the_run_then_trains_fully_grown():
    # 16 px: 4 px, fade-in 8, 8 px, fade-in 16, 16 px = 5 phases over 25 of the 100 steps, then fully grown
    family = build(**{"train.steps": 100, "model.options": {"grow_share": 0.25}})
    assert family.stage_steps == 5
    assert [family.schedule(s) for s in (0, 4, 5, 7, 10, 15, 19, 20, 99)] == [
        (0, 1.0), (0, 1.0), (1, 0.0), (1, 0.4), (1, 1.0), (2, 0.0), (2, 0.8), (2, 1.0), (2, 1.0)]
    # grow_share 1: the paper's equal phases over the whole run (what the family did before the option)
    assert build(**{"train.steps": 100, "model.options": {"grow_share": 1.0}}).stage_steps == 20
    # an explicit stage_steps wins
    assert build(**{"train.steps": 100, "model.options": {"grow_share": 0.25, "stage_steps": 7}}).stage_steps == 7
    with pytest.raises(Exception, match="grow_share"):
        build(**{"model.options": {"grow_share": 0.0}})


def test_lazy_r1_runs_every_r1_every_d_steps_and_gp_never_with_it():
    family = build(8, **{"model.loss": "nonsaturating", "model.penalty": "r1",
                         "model.options": {"r1_every": 4, "stage_steps": 1}})
    g = torch.Generator().manual_seed(0)
    data = {"image": torch.rand(4, 1, 8, 8, generator=g) * 2 - 1}
    due = []
    for step in range(8):
        family.on_step(step)
        _, logs = family.loss("D", data)
        assert "gp" not in logs
        due.append("r1" in logs)
    assert due == [True, False, False, False, True, False, False, False]


def test_the_logged_resolution_is_the_stage_once_per_step(tmp_path):
    """The trainer adds up the phases' logs: the resolution was logged by both D and G, i.e. twice its size."""
    run = ganforge.train(quiet=True, **{
        "model.name": "progan", "model.width": 8, "model.latent_dim": 16, "data.resolution": 8, "data.limit": 16,
        "model.options": {"stage_steps": 1}, "train.batch_size": 4, "train.steps": 3, "train.device": "cpu",
        "train.log_every": 1, "train.sample_every": 1000, "train.checkpoint_every": 1000,
        "out": str(tmp_path), "name": "run"})
    with open(run / "metrics.csv") as handle:
        logged = [float(row["resolution"]) for row in csv.DictReader(handle)]
    assert logged == [4.0, 8.0, 8.0]  # step 0 at 4 px, step 1 fading in 8 px, step 2 at 8 px


def test_a_progan_checkpoint_from_before_the_new_preset_loads_samples_and_resumes(tmp_path):
    model = ganforge.load(OLD_RUN)
    assert model.step == 3 and model.config.model.options == {} and model.config.model.penalty == "gp"
    assert model.family.options.grow_share == 1.0  # the old schedule
    samples = model.sample(4, seed=0).tensor
    assert samples.shape == (4, 1, 8, 8)
    # sum of |x| of the same 4 samples drawn by the code that wrote the checkpoint (6f1fc1f)
    assert samples.double().abs().sum().item() == pytest.approx(167.86500549316406, rel=1e-6)
    run = tmp_path / "run"
    shutil.copytree(OLD_RUN, run)
    ganforge.train(resume=run, quiet=True, **{"train.steps": 4})
    assert ganforge.load(run).step == 4


def test_default_preset_is_the_small_budget_recipe_and_paper_the_papers():
    default = build(**{"train.steps": 100})
    model, train = default.config.model, default.config.train
    assert (model.loss, model.penalty, default.r1_interval(), train.lr_g > 1e-3, train.lr_d > 1e-3) == (
        "nonsaturating", "r1", 16, True, True)
    assert default.stage_steps == 10  # fully grown after half the run
    paper = build(**{"train.steps": 100, "model.preset": "paper"})
    model, train = paper.config.model, paper.config.train
    assert (model.loss, model.penalty, train.lr_g, train.lr_d, paper.stage_steps) == ("wasserstein", "gp", 1e-3,
                                                                                      1e-3, 20)
