"""CycleGAN (Zhu et al. 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks").

Two ResNet generators G: A->B and F: B->A, two PatchGAN discriminators, least-squares adversarial loss,
cycle-consistency lambda * (|F(G(a)) - a| + |G(F(b)) - b|) with lambda = 10 (eq. 2-3), identity loss weighted
0.5 * lambda (section 5.2), discriminators trained on a pool of 50 past fakes (Shrivastava et al. 2017), and
learning rates decaying linearly to zero over the second half of training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge.config import option
from ganforge.errors import GanforgeError
from ganforge.families import register
from ganforge.families.base import Batch, Capabilities, Phase
from ganforge.families.kinds.image_to_image import ImageToImage, adversarial_losses
from ganforge.nn import init_dcgan_weights
from ganforge.nn.patchgan import PatchDiscriminator, min_input_size
from ganforge.nn.resnet_generator import ResnetGenerator


class ImagePool(nn.Module):
    """A history of generated images: once full, each query returns an old image (swapping in the new one) with
    probability 0.5, else the new image. Its contents are buffers, so they are saved with checkpoints."""

    def __init__(self, size: int, shape: tuple[int, int, int]):
        super().__init__()
        self.size = size
        self.register_buffer("images", torch.zeros(size, *shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            count = int(self.count)
            if count < self.size:
                self.images[count] = image
                self.count += 1
                out.append(image)
            elif float(torch.rand(())) < 0.5:
                slot = int(torch.randint(0, self.size, ()))
                out.append(self.images[slot].clone())
                self.images[slot] = image
            else:
                out.append(image)
        return torch.stack(out)


@dataclass
class CycleGANOptions:
    cycle_weight: float = 10.0  # lambda of eq. 3
    identity_weight: float = 0.5  # identity loss weight, as a fraction of cycle_weight
    pool_size: int = 50
    n_blocks: int = 0  # residual blocks: 0 picks the paper's 6 up to 128 px, 9 above
    d_layers: int = 3  # strided PatchGAN layers: 3 -> 70x70 patches
    upsample: str = option("transpose", choices=("transpose", "resize"))  # resize: nearest resize + conv, avoids
    # checkerboard artefacts
    direction: str = option("AtoB", choices=("AtoB", "BtoA"))  # the direction shown in sample grids
    load_size: int = 0  # shorter side images are held at before random crops; 0: resolution * 1.125
    decay_start: float = option(0.5, interval="[0, 1]")  # fraction of train.steps after which learning rates decay linearly to 0


@register
class CycleGAN(ImageToImage):
    """Unpaired translation both ways with cycle consistency."""

    name = "cyclegan"
    data_kind = "unpaired"
    Options = CycleGANOptions
    capabilities = Capabilities(from_noise=False, translate=("AtoB", "BtoA"))
    tiny = {"model": {"options": {"d_layers": 1, "n_blocks": 1}}}
    stride = ResnetGenerator.stride
    preset = {
        "data": {"flip": True},  # resolution from the data: the largest power of two that fits, up to 256
        "model": {"width": 64, "g_norm": "instance", "d_norm": "instance", "loss": "least-squares"},
        "train": {"batch_size": 1, "lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.5, "beta2": 0.999, "ema": 0.0},
    }

    def __init__(self, config, info):
        super().__init__(config, info)
        o, m = self.options, config.model
        if o.pool_size < 0 or o.n_blocks < 0:
            raise GanforgeError("model.options.pool_size and n_blocks must not be negative")
        if o.d_layers < 1 or min_input_size(o.d_layers) > info.resolution:
            raise GanforgeError(f"model.options.d_layers {o.d_layers} needs crops of at least "
                                f"{min_input_size(max(o.d_layers, 1))} px, data.resolution is {info.resolution}")
        blocks = o.n_blocks or (6 if info.resolution <= 128 else 9)
        c = info.channels
        self.generator = nn.ModuleDict({
            "a2b": ResnetGenerator(c, c, blocks, m.width, m.g_norm, o.upsample),
            "b2a": ResnetGenerator(c, c, blocks, m.width, m.g_norm, o.upsample),
        })
        self.discriminator = nn.ModuleDict({
            "a": PatchDiscriminator(c, m.width, o.d_layers, m.d_norm),
            "b": PatchDiscriminator(c, m.width, o.d_layers, m.d_norm),
        })
        init_dcgan_weights(self)  # N(0, 0.02): the small init gain that keeps early colour inversions away
        shape = (c, info.resolution, info.resolution)
        self.pool_a, self.pool_b = ImagePool(o.pool_size, shape), ImagePool(o.pool_size, shape)
        self._fakes: tuple[torch.Tensor, torch.Tensor] | None = None

    def phases(self) -> list[Phase]:
        t = self.config.train
        return [Phase("G", "generator", t.lr_g, (t.beta1, t.beta2)),
                Phase("D", "discriminator", t.lr_d, (t.beta1, t.beta2))]

    def translate(self, generator: nn.Module, images: torch.Tensor, direction: str = "AtoB") -> torch.Tensor:
        if direction not in ("AtoB", "BtoA"):
            raise GanforgeError(f"--direction must be AtoB or BtoA, got '{direction}'")
        return generator["a2b" if direction == "AtoB" else "b2a"](images)

    def generate(self, generator: nn.Module, inputs: Batch) -> torch.Tensor:
        """Translations; with a target, input | translation | reconstruction (the cycle) side by side."""
        direction = self.options.direction
        out = self.translate(generator, inputs["source"], direction)
        if "target" not in inputs:
            return out
        back = self.translate(generator, out, "BtoA" if direction == "AtoB" else "AtoB")
        return torch.cat([inputs["source"], out, back], -1)

    def loss(self, phase: str, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        real_a, real_b = batch["a"], batch["b"]
        kind = self.config.model.loss
        if phase == "G":
            g, f = self.generator["a2b"], self.generator["b2a"]
            fake_b, fake_a = g(real_a), f(real_b)
            self._fakes = (fake_a.detach(), fake_b.detach())
            adv_a = adversarial_losses(kind, None, self.discriminator["b"](fake_b), "G")
            adv_b = adversarial_losses(kind, None, self.discriminator["a"](fake_a), "G")
            cycle_a = F.l1_loss(f(fake_b), real_a)
            cycle_b = F.l1_loss(g(fake_a), real_b)
            o = self.options
            loss = adv_a + adv_b + o.cycle_weight * (cycle_a + cycle_b)
            logs = {"g_adv": (adv_a + adv_b).detach(), "cycle_a": cycle_a.detach(), "cycle_b": cycle_b.detach()}
            if o.identity_weight > 0:
                identity = F.l1_loss(g(real_b), real_b) + F.l1_loss(f(real_a), real_a)
                loss = loss + o.identity_weight * o.cycle_weight * identity
                logs["identity"] = identity.detach()
            return loss, logs
        if self._fakes is None:
            with torch.no_grad():
                self._fakes = (self.generator["b2a"](real_b), self.generator["a2b"](real_a))
        fake_a, fake_b = self._fakes
        self._fakes = None
        fake_a, fake_b = self.pool_a.query(fake_a), self.pool_b.query(fake_b)
        d_a = adversarial_losses(kind, self.discriminator["a"](real_a), self.discriminator["a"](fake_a), "D")
        d_b = adversarial_losses(kind, self.discriminator["b"](real_b), self.discriminator["b"](fake_b), "D")
        return d_a + d_b, {"d_a": d_a.detach(), "d_b": d_b.detach()}
