import pytest
import torch

from ganforge.config import RunConfig
from ganforge.errors import GanforgeError
from ganforge.families import DataInfo, create


@pytest.mark.parametrize("resolution", [8, 16, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_and_range(resolution, channels):
    config = RunConfig()
    config.data.resolution = resolution
    config.model.width = 8
    family = create(config, DataInfo(channels, resolution))
    z = torch.randn(3, config.model.latent_dim)
    images = family.generator(z)
    assert images.shape == (3, channels, resolution, resolution)
    assert images.min() >= -1 and images.max() <= 1
    assert family.discriminator(images).shape == (3,)


@pytest.mark.parametrize("norm", ["batch", "instance", "none", "spectral"])
@pytest.mark.parametrize("upsample", ["transpose", "resize"])
def test_norms_and_upsampling(norm, upsample):
    config = RunConfig()
    config.model.width = 8
    config.model.g_norm = config.model.d_norm = norm
    config.model.options = {"upsample": upsample}
    family = create(config, DataInfo(1, 32))
    images = family.generator(torch.randn(4, config.model.latent_dim))
    assert images.shape == (4, 1, 32, 32)
    assert torch.isfinite(family.discriminator(images)).all()


def test_bad_model_settings_are_named():
    config = RunConfig()
    config.model.g_norm = "group"
    with pytest.raises(GanforgeError, match="model.g_norm"):
        create(config, DataInfo(1, 32))
    config = RunConfig()
    config.model.options = {"upsampel": "resize"}
    with pytest.raises(GanforgeError, match="unknown key 'upsampel'"):
        create(config, DataInfo(1, 32))
    config = RunConfig()
    config.model.name = "nonsuch"
    with pytest.raises(GanforgeError, match="unknown model 'nonsuch'"):
        create(config, DataInfo(1, 32))


def test_discriminator_step_lowers_its_loss():
    torch.manual_seed(0)
    config = RunConfig()
    config.model.width = 8
    family = create(config, DataInfo(1, 16))
    real = torch.rand(16, 1, 16, 16) * 2 - 1
    optimizer = torch.optim.Adam(family.discriminator.parameters(), lr=2e-3, betas=(0.5, 0.999))
    torch.manual_seed(1)
    before, _ = family.loss("D", {"image": real})
    for _ in range(5):
        torch.manual_seed(1)
        loss, _ = family.loss("D", {"image": real})
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    torch.manual_seed(1)
    after, _ = family.loss("D", {"image": real})
    assert after.item() < before.item()
