"""Adaptive discriminator augmentation: the p controller, the differentiable pipeline, training and resume."""

import csv

import pytest
import torch

import ganforge
from ganforge.data.ada import INTERVAL, AdaptiveAugment, translate
from ganforge.errors import GanforgeError
from ganforge.training import checkpoint as ckpt

from conftest import tiny_overrides


def test_p_follows_the_sign_of_r_t_minus_the_target():
    ada = AdaptiveAugment(target=0.6, kimg=0.128)  # INTERVAL calls of 8 images move p by 32 / 128 = 0.25
    for call in range(2 * INTERVAL):
        r_t = ada.observe(torch.full((8, 1), 3.0))  # D calls every real image real: r_t = 1 > 0.6, overfitting
        assert float(r_t) == 1.0 and float(ada.p) == 0.25 * ((call + 1) // INTERVAL)
    half = torch.tensor([1.0, 2.0, 0.5, 3.0, -1.0, -2.0, -0.5, -3.0]).view(8, 1)
    for _ in range(INTERVAL):  # r_t = 0 < 0.6: less augmentation
        ada.observe(half)
    assert float(ada.p) == 0.25
    for _ in range(20 * INTERVAL):
        ada.observe(-torch.ones(8, 1))
    assert float(ada.p) == 0.0  # never below 0
    for _ in range(20 * INTERVAL):
        ada.observe(torch.ones(8, 1))
    assert float(ada.p) == 1.0  # nor above 1


def test_pipeline_is_identity_at_p_0_and_differentiable_at_p_1():
    ada = AdaptiveAugment()
    x = (torch.rand(6, 3, 16, 16) * 2 - 1).requires_grad_(True)
    assert torch.equal(ada(x), x)
    ada.p.fill_(1.0)
    torch.manual_seed(0)
    y = ada(x)
    assert y.shape == x.shape and all(not torch.equal(a, b) for a, b in zip(y, x))  # every image changed
    (y * torch.randn_like(y)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # gradients reach the generator's images
    rgba = torch.rand(4, 4, 8, 8) * 2 - 1
    assert ada(rgba).shape == rgba.shape and ada(torch.rand(4, 1, 8, 8)).shape == (4, 1, 8, 8)


def test_translation_shifts_whole_pixels_reflecting_at_the_edges():
    x = torch.rand(5, 3, 16, 16)
    torch.manual_seed(1)
    shifted = translate(x, 0.125)
    for before, after in zip(x, shifted):  # every output pixel is one of the image's own (no interpolation)
        assert torch.isin(after, before).all()
    assert any(not torch.equal(a, b) for a, b in zip(x, shifted))


def settings(tmp_path, name, steps, **extra):
    # 16 digits, a fast D and a G that barely learns: D soon tells every real image apart (overfits)
    return tiny_overrides(tmp_path, **{"name": name, "data.limit": 16, "train.steps": steps, "train.lr_d": 2e-3,
                                       "train.lr_g": 1e-6, "train.log_every": 4, "train.checkpoint_every": 4,
                                       "model.options": {"ada": True, "ada_kimg": 0.5}, **extra})


@pytest.mark.cpu_only
def test_p_rises_when_d_overfits_is_logged_saved_and_restored(tmp_path):
    straight = ganforge.train(quiet=True, **settings(tmp_path, "straight", 12))
    rows = list(csv.DictReader((straight / "metrics.csv").open()))
    p = [float(row["ada_p"]) for row in rows]
    assert p[-1] > p[0] and p[-1] > 0, p  # r_t near 1 > 0.6: the augmentation probability went up
    tensors, _ = ckpt.load(straight / "checkpoints" / "last.safetensors")
    assert float(tensors["family.ada.p"]) > 0

    ganforge.train(quiet=True, **settings(tmp_path, "part", 8))
    resumed = ganforge.train(resume=tmp_path / "part", quiet=True, **{"train.steps": 12})
    again, _ = ckpt.load(resumed / "checkpoints" / "last.safetensors")
    for key in tensors:  # p, its running sums and every weight: bit-exact
        assert torch.equal(tensors[key], again[key]), key


def test_ada_is_one_augmentation_at_a_time(tmp_path):
    with pytest.raises(GanforgeError, match="choose one"):
        ganforge.train(quiet=True, **tiny_overrides(tmp_path, **{"model.options": {"ada": True,
                                                                                   "diffaugment": "color"}}))
    with pytest.raises(GanforgeError, match="ada_target"):
        ganforge.train(quiet=True, **tiny_overrides(tmp_path, **{"model.options": {"ada_target": 1.5}}))
