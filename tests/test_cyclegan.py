"""CycleGAN: ResNet generator shapes, the image pool, cycle loss falling, exact resume with pool and decay."""

import pytest
import torch
from PIL import Image

import ganforge
from ganforge.config import RunConfig, apply_overrides
from ganforge.data.paired import load_unpaired
from ganforge.families import DataInfo, get
from ganforge.families.cyclegan import ImagePool
from ganforge.nn.resnet_generator import ResnetGenerator
from ganforge.training import checkpoint as ckpt


@pytest.mark.parametrize("size", [(13, 21), (16, 16), (7, 30)])
def test_resnet_generator_keeps_odd_sizes(size):
    torch.manual_seed(0)
    for upsample in ("transpose", "resize"):
        net = ResnetGenerator(3, 3, n_blocks=2, width=4, upsample=upsample)
        out = net(torch.randn(1, 3, *size))
        assert out.shape == (1, 3, *size) and out.abs().max() <= 1


def test_image_pool_returns_old_images_half_the_time():
    torch.manual_seed(0)
    pool = ImagePool(50, (1, 1, 1))
    first = pool.query(torch.arange(50.0).view(50, 1, 1, 1))
    assert torch.equal(first.flatten(), torch.arange(50.0))  # filling: every image comes straight back
    n, old = 4000, 0
    for i in range(n):
        new = torch.full((1, 1, 1, 1), 1000.0 + i)
        old += int(pool.query(new).item() != new.item())
    assert 0.46 < old / n < 0.54
    assert pool.images.min() >= 0 and int(pool.count) == 50


def test_image_pool_of_size_zero_passes_through():
    pool = ImagePool(0, (1, 2, 2))
    x = torch.randn(3, 1, 2, 2)
    assert torch.equal(pool.query(x), x)


def small_config(**overrides):
    tree = {"model": {"name": "cyclegan", "width": 4, "options": {"n_blocks": 1, "d_layers": 1, "pool_size": 4}},
            "data": {"resolution": 16}}
    config = apply_overrides(RunConfig(), get("cyclegan").preset)
    return apply_overrides(apply_overrides(config, tree), overrides)


def test_generator_steps_lower_the_cycle_loss():
    torch.manual_seed(0)
    family = get("cyclegan")(small_config(), DataInfo(channels=3, resolution=16))
    smooth = torch.nn.functional.interpolate(torch.rand(4, 3, 4, 4) * 2 - 1, size=16, mode="bilinear")
    batch = {"a": smooth[:2], "b": smooth[2:]}
    optimizer = torch.optim.Adam(family.generator.parameters(), lr=2e-3, betas=(0.5, 0.999))
    history = []
    for _ in range(10):
        loss, logs = family.loss("G", batch)
        history.append(float(logs["cycle_a"] + logs["cycle_b"]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert history[-1] < 0.8 * history[0] and all(b < a for a, b in zip(history, history[1:])), history
    d_loss, d_logs = family.loss("D", batch)
    assert d_loss.item() > 0 and set(d_logs) == {"d_a", "d_b"}


def _domains(root):
    rng = torch.Generator().manual_seed(0)
    for domain, count in (("trainA", 5), ("trainB", 3)):
        (root / domain).mkdir(parents=True)
        for i in range(count):
            array = torch.randint(0, 256, (18 + i, 20, 3), generator=rng, dtype=torch.uint8).numpy()
            Image.fromarray(array).save(root / domain / f"{i}.png")


def test_unpaired_crops_are_independent(tmp_path):
    _domains(tmp_path)
    data = load_unpaired(str(tmp_path), 16)
    assert len(data) == 5 and len(data.b) == 3 and not data.paired
    batch = data.batches(2, torch.device("cpu"), 0, flip=True).next()
    assert batch["a"].shape == batch["b"].shape == (2, 3, 16, 16)
    assert data.as_float().shape == (3, 3, 16, 16)


@pytest.mark.cpu_only
def test_resume_is_exact_including_pool_and_decay(tmp_path):
    _domains(tmp_path / "data")
    common = dict(data={"source": str(tmp_path / "data"), "resolution": 16},
                  model={"name": "cyclegan", "width": 4, "options": {"n_blocks": 1, "d_layers": 1, "pool_size": 3}},
                  train={"batch_size": 2, "log_every": 1, "sample_every": 100, "checkpoint_every": 100},
                  out=str(tmp_path / "runs"))
    straight = ganforge.train(name="straight", quiet=True, **{**common, "train": {**common["train"], "steps": 4}})

    def interrupt(trainer):
        if trainer.step == 2:
            trainer.stop_reason = "interrupted"

    # the learning-rate decay (second half of 4 steps) spans the interruption
    ganforge.train(name="split", quiet=True, callbacks=[interrupt], **{**common, "train": {**common["train"], "steps": 4}})
    split = ganforge.train(resume=tmp_path / "runs" / "split", quiet=True, train={"steps": 4})
    a, _ = ckpt.load(straight / "checkpoints" / "last.safetensors", "cpu")
    b, _ = ckpt.load(split / "checkpoints" / "last.safetensors", "cpu")
    assert any(k.startswith("family.pool_b.images") for k in a)
    for key in a:
        if key.startswith("family."):
            torch.testing.assert_close(a[key], b[key], msg=key)
