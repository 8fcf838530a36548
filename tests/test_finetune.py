"""Fine-tuning (`train --init RUN`): the new run starts from the source run's G, D and EMA weights with fresh
optimisers at step 0 (its first samples equal the source's last ones), FreezeD keeps the first discriminator layers,
and weights that do not fit are refused with one line naming the tensor."""

import pytest
import torch
import yaml

import ganforge
from ganforge.api import resolve_config
from ganforge.finetune import layers
from ganforge.training import checkpoint as ckpt
from ganforge.training.trainer import Trainer

from conftest import tiny_overrides
from test_sampling_commands import cli, one_line_error  # the CLI entry point run in this process


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    torch.manual_seed(0)
    return ganforge.train(quiet=True, **tiny_overrides(tmp_path_factory.mktemp("src"), **{"train.steps": 2}))


@pytest.mark.cpu_only
def test_init_loads_weights_and_first_samples_equal_the_source(source, tmp_path):
    config = resolve_config(overrides=tiny_overrides(tmp_path, **{"train.init": str(source), "data.limit": 300}))
    trainer = Trainer(config, tmp_path / "run", quiet=True)
    try:
        tensors, meta = ckpt.load(source / "checkpoints" / "last.safetensors")
        for key, value in trainer.family.state_dict().items():
            assert torch.equal(value, tensors[f"family.{key}"]), key
        for key, value in trainer.ema.module.state_dict().items():
            assert torch.equal(value, tensors[f"ema.{key}"]), key
        assert trainer.step == 0 and all(not opt.state for opt in trainer.optimizers.values())  # fresh optimisers
        assert config.train.init == str((source / "checkpoints" / "last.safetensors").resolve())
        trainer.save_samples()  # the new run's first samples: same grid latents, same weights
        first = (tmp_path / "run" / "samples" / "step_000000.png").read_bytes()
        assert first == (source / "samples" / f"step_{meta['step']:06d}.png").read_bytes()
    finally:
        trainer.release()
    inputs = ganforge.load(source).sample_inputs(8, seed=3)
    with torch.no_grad():
        expected = ganforge.load(source).generate(inputs).tensor
        trainer.ema.module.eval()
        assert torch.equal(trainer.family.generate(trainer.ema.module, inputs).clamp(-1, 1), expected)


def test_cli_fine_tune_with_freeze_d(source, tmp_path, monkeypatch, capsys):
    args = [f"--{k.split('.')[-1].replace('_', '-')}={v}" for k, v in tiny_overrides(tmp_path).items()
            if k not in ("out", "name")]
    code, out, err = cli(monkeypatch, capsys, "train", *args, "--out", tmp_path, "--name", "ft", "--init", source,
                         "--freeze-d", 2, "--steps", 3)
    assert code == 0, err
    run = tmp_path / "ft"
    saved = yaml.safe_load((run / "config.yaml").read_text())["train"]
    assert saved["init"].endswith("last.safetensors") and saved["freeze_d"] == 2
    tensors, meta = ckpt.load(run / "checkpoints" / "last.safetensors")
    assert meta["step"] == 3  # a new run: counted from 0, not from the source's step
    before, _ = ckpt.load(source / "checkpoints" / "last.safetensors")
    model = ganforge.load(run).family
    frozen, trained = layers(model.discriminator)[:2], layers(model.discriminator)[2:]
    named = dict(model.discriminator.named_parameters())
    key = {id(p): n for n, p in named.items()}
    for _, params in frozen:
        for p in params:
            name = f"family.discriminator.{key[id(p)]}"
            assert torch.equal(tensors[name], before[name]), name
    assert any(not torch.equal(tensors[f"family.discriminator.{key[id(p)]}"],
                               before[f"family.discriminator.{key[id(p)]}"]) for _, ps in trained for p in ps)
    assert "FreezeD" in out


def test_mismatches_are_one_line(source, tmp_path, monkeypatch, capsys):
    base = ["--resolution", 16, "--latent-dim", 16, "--batch-size", 16, "--steps", 2, "--out", tmp_path]
    one_line_error(cli(monkeypatch, capsys, "train", *base, "--width", 16, "--init", source, "--name", "a"),
                   "train.init", "tensor", "has shape", "expected")
    one_line_error(cli(monkeypatch, capsys, "train", *base, "--width", 8, "--model", "wgan", "--init", source,
                       "--name", "b"), "train.init", "dcgan")
    one_line_error(cli(monkeypatch, capsys, "train", *base, "--width", 8, "--init", tmp_path / "nothing",
                       "--name", "c"), "train.init")
    one_line_error(cli(monkeypatch, capsys, "train", *base, "--width", 8, "--init", source, "--freeze-d", 99,
                       "--name", "d"), "train.freeze_d", "layers")
    assert not (tmp_path / "a").exists()  # a refused start leaves no run folder behind
