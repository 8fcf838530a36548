"""The registry of GAN families: `create(config, info)` builds the family named by config.model.name."""

from __future__ import annotations

import importlib

from ganforge.errors import GanforgeError
from ganforge.families.base import DataInfo, Family, NoiseGAN, Phase

REGISTRY: dict[str, type[Family]] = {}

# name -> module; a family's module is imported only when the family is used
MODULES = {
    "dcgan": "ganforge.families.dcgan",
    "cgan": "ganforge.families.cgan",
    "wgan": "ganforge.families.wgan",
    "wgan-gp": "ganforge.families.wgan",
    "sngan": "ganforge.families.sngan",
    "biggan": "ganforge.families.biggan",
    "stylegan": "ganforge.families.stylegan",
    "progan": "ganforge.families.progan",
    "vaegan": "ganforge.families.vaegan",
    "pix2pix": "ganforge.families.pix2pix",
    "cyclegan": "ganforge.families.cyclegan",
    "srresnet": "ganforge.families.srgan",
    "srgan": "ganforge.families.srgan",
    "esrgan": "ganforge.families.esrgan",
}


def available() -> list[str]:
    """Names of the families whose module is present in this install."""
    from importlib.util import find_spec

    return sorted(name for name, module in MODULES.items() if find_spec(module) is not None)


def register(cls: type[Family]) -> type[Family]:
    """Class decorator: make a family available by its `name`."""
    REGISTRY[cls.name] = cls
    return cls


def get(name: str) -> type[Family]:
    """The family class registered under `name`."""
    if name not in REGISTRY and name in available():
        importlib.import_module(MODULES[name])
    if name not in REGISTRY:
        raise GanforgeError(f"model.name: unknown model '{name}' (available: {', '.join(available())})")
    return REGISTRY[name]


def create(config, info: DataInfo) -> Family:
    """Build the family named by config.model.name for data described by `info`."""
    return get(config.model.name)(config, info)


__all__ = ["DataInfo", "Family", "NoiseGAN", "Phase", "REGISTRY", "MODULES", "create", "get", "register"]
