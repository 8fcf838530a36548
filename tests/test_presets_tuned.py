"""Issue 20: presets tuned for small budgets are the defaults; the recipe they replaced stays as `--preset paper`
and resolves to exactly the config the family resolved to before."""

import pytest
import torch.nn as nn

from ganforge.api import resolve_config
from ganforge.config import RunConfig, apply_overrides
from ganforge.families import DataInfo, create

# each retuned family's default preset before issue 20, copied from the code it replaced (dcgan.py at 726fc47)
BEFORE = {
    "dcgan": {"train": {"channels_last": True, "steps": 10000}},
}


@pytest.mark.parametrize("name", sorted(BEFORE))
def test_paper_preset_resolves_to_the_recipe_it_replaced(name):
    paper = resolve_config(overrides={"model.name": name, "model.preset": "paper"})
    before = apply_overrides(RunConfig(), BEFORE[name])
    before = apply_overrides(before, {"model.name": name, "model.preset": "paper"})
    assert paper.to_dict() == before.to_dict()
    default = resolve_config(overrides={"model.name": name})
    assert default.to_dict() != apply_overrides(before, {"model.preset": "default"}).to_dict()  # it was retuned
    # flags still win over either preset
    flagged = resolve_config(overrides={"model.name": name, "model.preset": "paper", "train.lr_g": 1e-3})
    assert flagged.train.lr_g == 1e-3


def test_dcgan_paper_preset_builds_the_old_networks_and_default_the_tuned_ones():
    def discriminator_layers(preset):
        config = resolve_config(overrides={"model.preset": preset, "model.width": 8, "data.resolution": 16})
        family = create(config, DataInfo(1, 16))
        return config, [type(m) for m in family.discriminator.modules()], family.discriminator

    paper, kinds, _ = discriminator_layers("paper")
    recipe = (paper.model.loss, paper.model.d_norm, paper.train.beta1, paper.train.lr_g, paper.train.lr_d)
    assert recipe == ("nonsaturating", "batch", 0.5, 2e-4, 2e-4)
    assert nn.BatchNorm2d in kinds
    default, kinds, net = discriminator_layers("default")
    assert default.model.loss == "hinge" and default.train.beta1 == 0.0 and default.train.lr_g > default.train.lr_d
    assert nn.BatchNorm2d not in kinds
    assert all(hasattr(m, "parametrizations") for m in net.modules() if isinstance(m, nn.Conv2d))  # spectral norm
