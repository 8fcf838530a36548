"""Latent projection (`ganforge project`): the search lowers its loss and reconstructs a training image better than
random latents do, StyleGAN projects in W, `sample --latents` regenerates the reconstruction, and bad inputs are
one line."""

import json

import numpy as np
import pytest
import torch

import ganforge
from ganforge.media.images import write_image
from ganforge.projection import project

from conftest import tiny_overrides
from test_sampling_commands import cli, one_line_error  # the CLI entry point run in this process


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    torch.manual_seed(0)
    return ganforge.train(quiet=True, **tiny_overrides(tmp_path_factory.mktemp("runs"), **{"train.steps": 30}))


def test_projection_beats_random_latents(run):
    model = ganforge.load(run)
    target = model.real_images()[:1]
    result = project(model, target, steps=40, starts=4)
    assert result.losses[-1] < result.losses[0]
    assert result.latent.shape == (1, model.config.model.latent_dim)  # z for a DCGAN
    randoms = model.sample(16, seed=5).tensor
    error = (result.reconstruction - target).pow(2).mean()
    assert error < (randoms - target).pow(2).flatten(1).mean(1).min()  # better than the best of 16 random latents
    assert len(result.frames) > 2 and result.animation().tensor.shape[:2] == (2, len(result.frames))


def test_stylegan_projects_in_w(tmp_path):
    torch.manual_seed(0)
    overrides = tiny_overrides(tmp_path, **{"model.name": "stylegan", "train.steps": 2,
                                            "model.options": {"n_mapping": 2}})
    model = ganforge.load(ganforge.train(quiet=True, **overrides))
    family, generator = model.family, model.generator
    z = torch.randn(3, model.config.model.latent_dim)
    with torch.no_grad():
        w = family.latent_inputs(generator, {"noise": z})
        assert torch.allclose(family.generate(generator, w), family.generate(generator, {"noise": z}), atol=1e-6)
    result = project(model, model.real_images()[:1], steps=5, starts=2, features="none")
    assert family.capabilities.latent == "w" and result.latent.shape == w["w"][:1].shape
    assert result.losses[-1] < result.losses[0]


def test_cli_project_and_sample_latents(run, tmp_path, monkeypatch, capsys):
    image = tmp_path / "digit.png"
    write_image(ganforge.load(run).real_images()[3], image)
    out = tmp_path / "proj"
    code, stdout, err = cli(monkeypatch, capsys, "project", run, image, "--out", out, "--steps", 20, "--starts", 2)
    assert code == 0, err
    record = json.loads((out / "projection.json").read_text())
    assert record["loss_end"] < record["loss_start"] and record["latent_space"] == "noise"
    assert {p.name for p in out.iterdir()} >= {"latent.npy", "target.png", "reconstruction.png", "projection.gif"}
    code, _, err = cli(monkeypatch, capsys, "sample", run, "--latents", out / "latent.npy", "--out", tmp_path / "a.png")
    assert code == 0, err
    assert (tmp_path / "a.png").read_bytes() == (out / "reconstruction.png").read_bytes()
    np.save(tmp_path / "bad.npy", np.zeros((2, 5), np.float32))
    one_line_error(cli(monkeypatch, capsys, "sample", run, "--latents", tmp_path / "bad.npy"), "--latents", "shape")
    one_line_error(cli(monkeypatch, capsys, "project", run, tmp_path / "none.png"), "no such image")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no VGG weights there
    one_line_error(cli(monkeypatch, capsys, "project", run, image, "--features", "vgg", "--out", tmp_path / "v"),
                   "VGG16", "--features auto")
