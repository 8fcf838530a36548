"""pix2pix: U-Net and PatchGAN shapes, one step lowering L1, paired data layouts, the linear LR decay."""

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge.api

from ganforge.config import apply_overrides, RunConfig
from ganforge.data.paired import load_paired
from ganforge.errors import GanforgeError
from ganforge.families import DataInfo, get
from ganforge.families.kinds.image_to_image import linear_decay
from ganforge.nn.patchgan import PatchDiscriminator, output_size, receptive_field
from ganforge.nn.unet import UNetGenerator


@pytest.mark.parametrize("size", [(13, 21), (16, 16), (9, 30)])
def test_unet_keeps_odd_sizes(size):
    torch.manual_seed(0)
    net = UNetGenerator(3, 2, depth=3, width=4)
    out = net(torch.randn(2, 3, *size))
    assert out.shape == (2, 2, *size)
    assert out.abs().max() <= 1


@pytest.mark.parametrize("depth,size", [(1, 20), (2, 33), (3, 70), (3, 100), (4, 150)])
def test_patchgan_output_size_matches_arithmetic(depth, size):
    net = PatchDiscriminator(3, width=4, depth=depth)
    out = net(torch.randn(1, 3, size, size))
    assert out.shape[-2:] == (output_size(size, depth),) * 2
    # hand-computed: three stride-2 4x4 convs then two stride-1 ones give 256 -> 30 logits, 70 px patches
    assert output_size(256, 3) == 30 and receptive_field(3) == 70 and receptive_field(1) == 16


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_patchgan_receptive_field_is_the_gradient_support(depth):
    torch.manual_seed(0)
    net = PatchDiscriminator(1, width=4, depth=depth, norm="none")
    size = receptive_field(depth) + 40
    x = torch.randn(1, 1, size, size, dtype=torch.float64, requires_grad=True)
    out = net.double()(x)
    centre = out.shape[-1] // 2
    out[0, 0, centre, centre].backward()
    rows = x.grad[0, 0].abs().sum(1).nonzero().flatten()
    cols = x.grad[0, 0].abs().sum(0).nonzero().flatten()
    field = receptive_field(depth)
    assert rows[-1] - rows[0] + 1 <= field and cols[-1] - cols[0] + 1 <= field
    assert rows[-1] - rows[0] + 1 >= field - 2  # padding aside, the whole patch is seen


def config(**overrides):
    tree = {"model": {"name": "pix2pix", "width": 8, "options": {"dropout": 0.0, "d_layers": 1}},
            "data": {"resolution": 16}}
    config = apply_overrides(RunConfig(), get("pix2pix").preset)
    config = apply_overrides(config, tree)
    return apply_overrides(config, overrides)


@pytest.mark.parametrize("pixel_loss", ["l1", "mse"])
def test_one_step_lowers_the_pixel_loss(pixel_loss):
    torch.manual_seed(0)
    family = get("pix2pix")(config(**{"model.options.pixel_loss": pixel_loss}), DataInfo(channels=3, resolution=16))
    batch = {"a": torch.rand(4, 3, 16, 16) * 2 - 1, "b": torch.rand(4, 3, 16, 16) * 2 - 1}
    optimizer = torch.optim.Adam(family.generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    loss, logs = family.loss("G", batch)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    _, after = family.loss("G", batch)
    assert after[pixel_loss] < logs[pixel_loss] - 1e-4
    family.eval()  # no dropout: the logged value is the distance of this very translation
    with torch.no_grad():
        _, logged = family.loss("G", batch)
        out = family.translate(family.generator, batch["a"])
    reference = (out - batch["b"]).abs().mean() if pixel_loss == "l1" else ((out - batch["b"]) ** 2).mean()
    torch.testing.assert_close(logged[pixel_loss], reference)
    family.train()
    d_loss, d_logs = family.loss("D", batch)
    assert d_loss.ndim == 0 and {"d_real", "d_fake"} <= set(d_logs)


def test_unknown_pixel_loss_is_a_clear_error():
    with pytest.raises(GanforgeError, match="model.options.pixel_loss must be one of l1, mse; got 'l2'"):
        get("pix2pix")(config(**{"model.options.pixel_loss": "l2"}), DataInfo(channels=3, resolution=16))


def test_linear_decay_schedule():
    # constant for the first half, then linearly towards zero (the trainer applies it: test_trainer)
    assert [linear_decay(step, 0.5, 4) for step in range(4)] == [1.0, 1.0, pytest.approx(2 / 3), pytest.approx(1 / 3)]
    assert linear_decay(9, 1.0, 10) == 1.0


def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_paired_folders_share_the_crop_and_flip(tmp_path):
    rng = torch.Generator().manual_seed(0)
    for i in range(3):
        image = torch.randint(0, 256, (20 + i, 25, 3), generator=rng, dtype=torch.uint8).numpy()
        _save(tmp_path / "A" / f"{i}.png", image)
        _save(tmp_path / "B" / f"{i}.png", image)
    data = load_paired(str(tmp_path), 16, load_size=20)
    batches = data.batches(2, torch.device("cpu"), seed=1, flip=True)
    for _ in range(4):
        batch = batches.next()
        assert batch["a"].shape == (2, 3, 16, 16)
        torch.testing.assert_close(batch["a"], batch["b"])


def test_paired_batches_resume_exactly(tmp_path):
    for i in range(5):
        _save(tmp_path / "A" / f"{i}.png", torch.full((24, 30, 3), 40 * i, dtype=torch.uint8).numpy())
        _save(tmp_path / "B" / f"{i}.jpg", torch.full((24, 30, 3), 40 * i + 1, dtype=torch.uint8).numpy())
    data = load_paired(str(tmp_path), 16)
    first = data.batches(2, torch.device("cpu"), seed=3, flip=True)
    for _ in range(3):
        first.next()
    state = first.state_dict()
    expected = [first.next() for _ in range(4)]
    second = data.batches(2, torch.device("cpu"), seed=99, flip=True)
    second.load_state_dict(state)
    for want in expected:
        got = second.next()
        torch.testing.assert_close(got["a"], want["a"])
        torch.testing.assert_close(got["b"], want["b"])


def test_side_by_side_layout_is_split(tmp_path):
    left = torch.zeros(20, 20, 3, dtype=torch.uint8)
    right = torch.full((20, 20, 3), 255, dtype=torch.uint8)
    _save(tmp_path / "train" / "x.png", torch.cat([left, right], 1).numpy())
    data = load_paired(str(tmp_path), 16, load_size=20)
    assert len(data) == 1 and data.a[0].max() == 0 and data.b[0].min() == 255


def test_layout_errors_are_clear(tmp_path):
    _save(tmp_path / "A" / "one.png", torch.zeros(20, 20, 3, dtype=torch.uint8).numpy())
    _save(tmp_path / "B" / "two.png", torch.zeros(20, 20, 3, dtype=torch.uint8).numpy())
    with pytest.raises(GanforgeError, match="'one' is in A/ but not in B/"):
        load_paired(str(tmp_path), 16)
    (tmp_path / "B" / "two.png").rename(tmp_path / "B" / "one.png")
    with pytest.raises(GanforgeError, match="smaller than data.resolution"):
        load_paired(str(tmp_path), 32, load_size=20)
    (tmp_path / "empty" / "A").mkdir(parents=True)
    with pytest.raises(GanforgeError, match="found A/ but not B/"):
        load_paired(str(tmp_path / "empty"), 16)


def test_residual_option_starts_from_the_input():
    torch.manual_seed(0)
    family = get("pix2pix")(config(**{"model.options.residual": True}), DataInfo(channels=3, resolution=16))
    last = family.generator.up[-1][1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    torch.testing.assert_close(family.translate(family.generator.eval(), x), x)


def test_family_options_are_typed():
    # "1e4" is a string to YAML 1.1 (as --opt parses it); a float option takes it as the number
    family = get("pix2pix")(config(**{"model.options.pixel_weight": "1e4", "model.options.residual": "true"}),
                            DataInfo(channels=3, resolution=16))
    assert family.options.pixel_weight == 1e4 and family.options.residual is True
    with pytest.raises(GanforgeError, match="model.options.pixel_weight: expected a number, got 'abc'"):
        get("pix2pix")(config(**{"model.options.pixel_weight": "abc"}), DataInfo(channels=3, resolution=16))


@pytest.mark.parametrize("size,expected", [(20, 16), (40, 32), (300, 256)])
def test_default_resolution_comes_from_the_images(tmp_path, size, expected):
    """pix2pix/CycleGAN at default settings crop the largest power of two the images hold (was always 256 px)."""
    from ganforge.data.paired import load_unpaired

    for side in ("A", "B"):
        (tmp_path / side).mkdir()
        for i in range(2):
            _save(tmp_path / side / f"{i}.png", np.full((size, size + 7, 3), 40 * i, np.uint8))
    config = ganforge.api.resolve_config(overrides={"model.name": "pix2pix", "data.source": str(tmp_path)})
    assert config.data.resolution is None
    assert get("pix2pix").load_data(config).resolution == expected
    assert load_unpaired(str(tmp_path), None).resolution == expected
