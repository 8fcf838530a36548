"""DiffAugment: each transform's effect, differentiability, policy parsing, and use inside a family's critic."""

import pytest
import torch

from ganforge.api import resolve_config
from ganforge.data.diffaugment import (brightness, contrast, cutout, diff_augment, parse_policy,
                                       saturation, translation)
from ganforge.errors import GanforgeError
from ganforge.families import DataInfo, create


def ramp(n=6, c=1, size=8):
    return torch.arange(size * size, dtype=torch.float32).view(1, 1, size, size).repeat(n, c, 1, 1) + 1


def test_translation_shifts_whole_images_by_at_most_an_eighth_with_zero_fill():
    torch.manual_seed(0)
    x = ramp(20)
    out = translation(x)
    for original, moved in zip(x, out):
        matches = []
        for dy in range(-1, 2):
            for dx in range(-1, 2):
                shifted = torch.zeros_like(original)
                src = original[:, max(dy, 0):8 + min(dy, 0), max(dx, 0):8 + min(dx, 0)]
                shifted[:, max(-dy, 0):8 + min(-dy, 0), max(-dx, 0):8 + min(-dx, 0)] = src
                matches.append(torch.equal(shifted, moved))
        assert any(matches)
    assert not torch.equal(out, x)


def test_cutout_zeroes_one_square_of_half_the_size():
    torch.manual_seed(0)
    x = torch.ones(50, 2, 8, 8)
    out = cutout(x)
    for image in out:
        holes = (image[0] == 0).nonzero()
        assert 0 < len(holes) <= 16
        rows, cols = holes[:, 0], holes[:, 1]
        height, width = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
        assert len(holes) == height * width and height <= 4 and width <= 4  # one axis-aligned rectangle
        assert torch.equal(image[0] == 0, image[1] == 0)  # the same hole in every channel
    assert (out == 0).float().mean().item() == pytest.approx(0.25 * 0.75, abs=0.08)


def test_colour_transforms():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 5, 5)
    shifted = brightness(x) - x
    assert torch.allclose(shifted, shifted[:, :1, :1, :1].expand_as(x), atol=1e-6)  # one offset per image
    assert shifted.abs().max() <= 0.5
    grey = x.mean(1, keepdim=True).expand_as(x)
    assert torch.allclose(saturation(grey), grey, atol=1e-6)  # grey images have no saturation to change
    assert torch.allclose(contrast(x).mean((1, 2, 3)), x.mean((1, 2, 3)), atol=1e-5)  # contrast keeps the mean


def test_augmentations_are_differentiable():
    x = torch.rand(4, 3, 8, 8, requires_grad=True)
    diff_augment(x, "color,translation,cutout").sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_policy_parsing():
    assert parse_policy("color, cutout") == ["color", "cutout"]
    assert parse_policy("") == []
    with pytest.raises(GanforgeError, match="unknown augmentation 'flip'"):
        parse_policy("color,flip")


@pytest.mark.parametrize("name", ["dcgan", "sngan", "wgan-gp", "stylegan", "cgan"])
def test_family_critic_sees_augmented_images_and_g_gets_gradients(name):
    overrides = {"model.name": name, "model.width": 8, "model.latent_dim": 16,
                 "model.options.diffaugment": "translation,cutout"}
    config = resolve_config(overrides=overrides)
    family = create(config, DataInfo(1, 16, 10 if name == "cgan" else 0))
    batch = {"image": torch.rand(8, 1, 16, 16) * 2 - 1, "label": torch.arange(8)}
    family.eval()  # spectral norm without power iterations: the same weights in every call
    without = family.discriminate  # the family's critic without DiffAugment
    torch.manual_seed(0)
    augmented = family.critic(batch["image"], batch)
    assert not torch.allclose(augmented, without(batch["image"], batch))
    torch.manual_seed(0)
    expected = without(diff_augment(batch["image"], "translation,cutout"), batch)
    assert torch.allclose(augmented, expected, atol=1e-5)
    family.train()
    family.discriminator.requires_grad_(False)
    loss, _ = family.loss("G", batch)
    loss.backward()
    assert sum(p.grad.abs().sum() for p in family.generator.parameters() if p.grad is not None) > 0


def test_unknown_policy_in_a_family_is_a_config_error():
    with pytest.raises(GanforgeError, match="model.options.diffaugment: unknown augmentation 'zoom'"):
        resolve_config(overrides={"model.name": "sngan", "model.options.diffaugment": "zoom"})  # before any build
