"""Checkpoints written before the design change (tests/data/v0-run: a 2-step dcgan saved by ganforge at commit
4f11244, without a content hash or capabilities) still load, sample and resume."""

import shutil
from pathlib import Path

import torch

import ganforge

OLD_RUN = Path(__file__).parent / "data" / "v0-run"


def test_an_old_checkpoint_loads_samples_and_resumes(tmp_path):
    model = ganforge.load(OLD_RUN)
    assert model.step == 2 and model.config.model.name == "dcgan"
    samples = model.sample(4, seed=0)
    assert samples.tensor.shape == (4, 1, 16, 16) and torch.isfinite(samples.tensor).all()
    assert torch.equal(samples.tensor, ganforge.load(OLD_RUN).sample(4, seed=0).tensor)
    run = tmp_path / "v0-run"
    shutil.copytree(OLD_RUN, run)
    ganforge.train(resume=run, quiet=True, **{"train.steps": 3})
    resumed = ganforge.load(run)
    assert resumed.step == 3
    from safetensors import safe_open

    with safe_open(str(run / "checkpoints" / "last.safetensors"), framework="pt") as handle:
        assert len(handle.metadata()["sha256"]) == 64  # what is written now carries the content hash
