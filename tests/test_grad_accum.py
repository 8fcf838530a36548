"""Gradient accumulation: K micro-batches of B per optimiser step make the update of one batch of K * B."""

import csv

import pytest
import torch

import ganforge
from ganforge.errors import GanforgeError
from ganforge.training import checkpoint as ckpt

from conftest import tiny_overrides


def final_state(tmp_path, name, batch_size, accum, **extra):
    # no batch norm (its statistics are per micro-batch, so they differ from one large batch's) and two critic
    # steps, so that every phase draws its own noise in the same order whether the batch is split or not
    run = ganforge.train(quiet=True, **tiny_overrides(tmp_path, **{
        "name": name, "model.g_norm": "none", "model.d_norm": "none", "train.n_critic": 2, "train.steps": 3,
        "train.batch_size": batch_size, "train.grad_accum": accum, "train.checkpoint_every": 3, **extra}))
    tensors, meta = ckpt.load(run / "checkpoints" / "last.safetensors")
    return tensors, run


@pytest.mark.cpu_only
def test_k_micro_batches_update_like_one_large_batch(tmp_path):
    large, _ = final_state(tmp_path, "large", 16, 1)
    split, run = final_state(tmp_path, "split", 8, 2)
    changed, ema = 0, 0
    for key in (k for k in large if k.startswith(("family.", "ema."))):
        assert torch.allclose(large[key], split[key], atol=2e-5, rtol=1e-4), key
        changed += not torch.equal(large[key], split[key])
        ema += key.startswith("ema.")
    assert ema  # the EMA is blended once per optimiser step, not once per micro-batch: the same average
    assert changed  # float summation order differs: the runs are not copies of each other
    # the logged losses are means over the whole effective batch
    logged = [list(csv.DictReader((tmp_path / name / "metrics.csv").open())) for name in ("large", "split")]
    for row_large, row_split in zip(*logged):
        for key in ("d_loss", "g_loss"):
            assert float(row_large[key]) == pytest.approx(float(row_split[key]), rel=1e-4), key


def test_accumulating_differs_from_a_plain_small_batch(tmp_path):
    plain, _ = final_state(tmp_path, "plain", 8, 1)
    split, _ = final_state(tmp_path, "split", 8, 2)
    assert any(not torch.allclose(plain[k], split[k], atol=1e-4) for k in plain if k.startswith("family."))


def test_grad_accum_must_be_positive(tmp_path):
    with pytest.raises(GanforgeError, match="train.grad_accum must be at least 1"):
        ganforge.train(quiet=True, **tiny_overrides(tmp_path, **{"train.grad_accum": 0}))


# --- memory-aware defaults by resolution -------------------------------------------------------------------------

@pytest.mark.parametrize("resolution, batch, width", [(64, 64, 64), (128, 32, 64), (256, 16, 64), (512, 8, 32),
                                                      (1024, 4, 16)])
def test_batch_and_width_shrink_with_resolution_unless_given(resolution, batch, width):
    from ganforge.api import resolve_config

    config = resolve_config(overrides={"data.resolution": resolution})
    assert (config.train.batch_size, config.model.width) == (batch, width)
    given = resolve_config(overrides={"data.resolution": resolution, "train.batch_size": 48, "model.width": 96})
    assert (given.train.batch_size, given.model.width) == (48, 96)  # what the user asks for is kept
    paired = resolve_config(overrides={"data.resolution": resolution, "model.name": "pix2pix"})
    assert paired.train.batch_size == 1 and paired.model.width == 64  # the paper's batch 1; width is not per stage


@pytest.mark.parametrize("name", ["dcgan", "stylegan", "progan"])
def test_noise_families_build_and_generate_at_1024_px(name):
    from ganforge.api import resolve_config
    from ganforge.families import DataInfo, create

    config = resolve_config(overrides={"model.name": name, "data.resolution": 1024, "model.width": 2,
                                       "model.latent_dim": 8})
    family = create(config, DataInfo(channels=3, resolution=1024))
    family.on_step(10 ** 9)  # progressive growing: the full-size stage
    with torch.no_grad():
        images = family.generate(family.generator, family.sample_inputs(1, torch.Generator().manual_seed(0)))
    assert images.shape == (1, 3, 1024, 1024) and torch.isfinite(images).all()
    assert family.discriminator(images).numel() == 1
