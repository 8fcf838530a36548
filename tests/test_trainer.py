import pytest
import torch

import ganforge
from ganforge.errors import GanforgeError
from ganforge.training import checkpoint as ckpt

from conftest import tiny_overrides


def _weights(run_dir):
    tensors, meta = ckpt.load(run_dir / "checkpoints" / "last.safetensors")
    return {k: v for k, v in tensors.items() if k.startswith(("family.", "ema.", "optim."))}, meta


def test_run_folder_contents(tmp_path):
    run = ganforge.train(quiet=True, **tiny_overrides(tmp_path))
    assert (run / "config.yaml").exists()
    assert (run / "metrics.csv").read_text().splitlines()[0].startswith("step,d_loss")
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_000003.png", "step_000006.png"]
    assert any((run / "tb").iterdir())
    _, meta = _weights(run)
    assert meta["step"] == 6 and meta["config"]["model"]["width"] == 8


def test_checkpoint_round_trip_gives_identical_samples(tmp_path):
    run = ganforge.train(quiet=True, **tiny_overrides(tmp_path))
    first = ganforge.load(run).sample(10, seed=3).tensor
    second = ganforge.load(run).sample(10, seed=3).tensor
    assert torch.equal(first, second)
    assert first.shape == (10, 1, 16, 16) and first.min() >= -1 and first.max() <= 1
    assert not torch.equal(first, ganforge.load(run).sample(10, seed=4).tensor)


@pytest.mark.cpu_only
def test_resume_equals_uninterrupted(tmp_path):
    straight = ganforge.train(quiet=True, **tiny_overrides(tmp_path / "a", **{"train.steps": 8}))
    ganforge.train(quiet=True, **tiny_overrides(tmp_path / "b", **{"train.steps": 4}))
    resumed = ganforge.train(resume=tmp_path / "b" / "run", quiet=True, **{"train.steps": 8})
    a, meta_a = _weights(straight)
    b, meta_b = _weights(resumed)
    assert meta_a["step"] == meta_b["step"] == 8
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_short_digits_run_moves_samples_toward_the_data(tmp_path):
    torch.manual_seed(0)
    real = ganforge.data.load_images("digits", 16).as_float()

    def distance(images):
        return ((images.mean(0) - real.mean(0)).abs().mean() + (images.std() - real.std()).abs()).item()

    run = ganforge.train(quiet=True, **tiny_overrides(tmp_path, **{
        "train.steps": 150, "train.batch_size": 32, "train.sample_every": 150, "train.checkpoint_every": 150,
        "train.log_every": 50, "train.ema": 0.0, "model.width": 16, "train.lr_g": 1e-3, "train.lr_d": 1e-3}))
    before = ganforge.load(run / "checkpoints" / "step_000150.safetensors")  # trained
    untrained = ganforge.train(quiet=True, **tiny_overrides(tmp_path, **{
        "name": "untrained", "train.steps": 1, "train.lr_g": 1e-9, "train.lr_d": 1e-9, "model.width": 16,
        "train.ema": 0.0}))
    d_trained = distance(before.sample(256).tensor)
    d_untrained = distance(ganforge.load(untrained).sample(256).tensor)
    assert d_trained < 0.6 * d_untrained


def test_nan_rolls_back_and_lowers_learning_rate(tmp_path):
    poisoned = []

    def poison_once(trainer):
        if trainer.step == 5 and not poisoned:
            poisoned.append(trainer.step)
            with torch.no_grad():
                next(trainer.family.discriminator.parameters()).fill_(float("nan"))

    run = ganforge.train(quiet=True, callbacks=[poison_once], **tiny_overrides(tmp_path, **{"train.steps": 9}))
    weights, meta = _weights(run)
    assert poisoned and meta["step"] == 9 and meta["rollbacks"] == 1 and meta["lr_scale"] == 0.5
    assert all(torch.isfinite(v).all() for k, v in weights.items() if v.is_floating_point())


def test_persistent_nan_stops_with_clear_error_and_keeps_good_checkpoint(tmp_path):
    def poison(trainer):
        if trainer.step >= 4:
            with torch.no_grad():
                next(trainer.family.discriminator.parameters()).fill_(float("nan"))

    with pytest.raises(GanforgeError, match="diverged"):
        ganforge.train(quiet=True, callbacks=[poison], **tiny_overrides(tmp_path, **{"train.steps": 50}))
    weights, meta = _weights(tmp_path / "run")
    assert meta["step"] == 3
    assert all(torch.isfinite(v).all() for k, v in weights.items() if v.is_floating_point())


def test_bad_inputs(tmp_path):
    with pytest.raises(GanforgeError, match="batch_size 16 is larger than the data set"):
        ganforge.train(quiet=True, **tiny_overrides(tmp_path, **{"data.limit": 10}))
    with pytest.raises(GanforgeError, match="power of two"):
        ganforge.train(quiet=True, **tiny_overrides(tmp_path, **{"data.resolution": 24}))
    (tmp_path / "file").write_text("")
    with pytest.raises(GanforgeError, match="cannot write to the output folder"):
        ganforge.train(quiet=True, **tiny_overrides(tmp_path / "file"))
    with pytest.raises(GanforgeError, match="unknown key 'train.stepz'"):
        ganforge.train(quiet=True, **tiny_overrides(tmp_path, **{"train.stepz": 3}))
    run = ganforge.train(quiet=True, **tiny_overrides(tmp_path))
    with pytest.raises(GanforgeError, match="already holds a run"):
        ganforge.train(quiet=True, **tiny_overrides(tmp_path))
    with pytest.raises(GanforgeError, match="model.width=8, not 16"):
        ganforge.train(resume=run, quiet=True, **{"model.width": 16, "train.steps": 9})
    (tmp_path / "fake.safetensors").write_bytes(b"garbage")
    with pytest.raises(GanforgeError, match="not a readable ganforge checkpoint"):
        ganforge.load(tmp_path / "fake.safetensors")
    with pytest.raises(GanforgeError, match="not a ganforge run folder"):
        ganforge.load(tmp_path)


def test_family_learning_rate_schedule_reaches_the_optimisers(tmp_path):
    from ganforge.api import resolve_config
    from ganforge.training.trainer import Trainer

    config = resolve_config(overrides=tiny_overrides(tmp_path))
    trainer = Trainer(config, tmp_path / "run", quiet=True)
    trainer.family.lr_factor = lambda step: 0.25 if step >= 1 else 1.0
    trainer.train_step()
    assert trainer.optimizers["G"].param_groups[0]["lr"] == config.train.lr_g
    trainer.step += 1
    trainer.train_step()
    assert trainer.optimizers["G"].param_groups[0]["lr"] == config.train.lr_g * 0.25
    assert trainer.optimizers["D"].param_groups[0]["lr"] == config.train.lr_d * 0.25


def test_periodic_evaluation_keeps_the_best_checkpoint(tmp_path):
    run = ganforge.train(quiet=True, **tiny_overrides(tmp_path, **{
        "train.steps": 6, "train.eval_every": 3, "train.eval_n": 64, "train.eval_metrics": "fid,kid"}))
    rows = (run / "eval.csv").read_text().splitlines()
    assert rows[0] == "step,eval/fid,eval/kid,eval/kid_std" and [r.split(",")[0] for r in rows[1:]] == ["3", "6"]
    fids = {int(r.split(",")[0]): float(r.split(",")[1]) for r in rows[1:]}
    _, meta = ckpt.load(run / "checkpoints" / "best.safetensors")
    best_step = min(fids, key=fids.get)
    assert meta["step"] == best_step and meta["best"]["metric"] == "fid"
    assert abs(meta["best"]["value"] - fids[best_step]) < 1e-9
    assert sorted(p.name for p in (run / "eval").iterdir()) == ["step_000003.json", "step_000006.json"]
