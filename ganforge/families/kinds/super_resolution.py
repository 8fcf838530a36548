"""The super-resolution kind of family (SRResNet, SRGAN, ESRGAN): random high-resolution crops degraded on the
fly (ganforge.data.degrade) into (lr, hr) pairs, a pixel loss, optionally perceptual and adversarial ones, and
pixel-loss pre-training; the scale is `model.options.scale` (2 or 4, also 3 or 8)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge import losses
from ganforge.data.degrade import Degradation
from ganforge.config import option
from ganforge.errors import GanforgeError
from ganforge.families.base import Capabilities, Family, Phase
from ganforge.nn.layers import check_norm
from ganforge.nn.srresnet import SRResNet, BicubicResidual, VGGDiscriminator

NOT_COMPUTED = torch.tensor(float("nan"))  # logged for losses that are off during pixel-loss pre-training


@dataclass
class SROptions:
    scale: int = 4
    blocks: int = 16  # residual blocks of the generator
    pixel_loss: str = option("mse", choices=("mse", "l1"))
    pixel_weight: float = 1.0
    perceptual: str = option("none", choices=("vgg", "ganforge", "none"))  # see ganforge.nn.perceptual
    perceptual_layer: str = "relu5_4"  # VGG19 layer whose features are compared
    perceptual_weight: float = 0.0
    perceptual_criterion: str = option("mse", choices=("mse", "l1"))
    vgg_weights: str | None = None  # torchvision VGG19 weights file; default: the torch hub cache
    adversarial_weight: float = 0.0  # 0: no discriminator (SRResNet)
    residual: bool = False  # learn only the residual over bicubic upscaling (VDSR-style): fast early training
    pretrained: str | None = None  # run folder or checkpoint whose generator initialises this one
    pretrain_steps: int = 0  # steps of pixel-loss-only training before the perceptual and adversarial losses
    blur: float = 0.0  # degradation settings, see ganforge.data.degrade.Degradation
    noise: float = 0.0
    jpeg: int = 0
    second_order: bool = False

    def degradation(self) -> Degradation:
        return Degradation(self.scale, self.blur, self.noise, self.jpeg, self.second_order)


class SuperResolution(Family):
    """Image -> image family upscaling `lr` to `hr`: a pixel loss, optionally perceptual and adversarial ones."""

    Options = SROptions
    capabilities = Capabilities(from_noise=False, upscale=True)
    tiny = {"model": {"options": {"blocks": 1, "scale": 2, "perceptual": "none"}}}

    @classmethod
    def load_data(cls, config):
        from ganforge.data.sr_stream import open_hr
        from ganforge.nn.perceptual import check_available

        options = cls.parse_options(config.model.options)  # also run at build time; here for the scale
        data = open_hr(config.data, options.degradation())
        if options.perceptual_weight > 0:  # training needs it: fail now, not after the first checkpoint
            check_available(options.perceptual, data.channels, options.vgg_weights)
        return data

    def __init__(self, config, info):
        super().__init__(config, info)
        o = self.options
        o.degradation().check()
        if info.resolution % o.scale:
            raise GanforgeError(f"data.resolution {info.resolution} is not a multiple of the scale {o.scale}")
        check_norm(config.model.g_norm, "model.g_norm")
        check_norm(config.model.d_norm, "model.d_norm")
        losses.check_loss(config.model.loss)
        self.scale = o.scale
        self.generator = self.build_generator()
        if o.residual:
            self.generator = BicubicResidual(self.generator, o.scale)
        self.discriminator = self.build_discriminator() if o.adversarial_weight > 0 else nn.Identity()
        self.step = 0
        self.__dict__["_perceptual"] = None  # built on first use; kept out of sub-modules and checkpoints

    def build_generator(self) -> nn.Module:
        m = self.config.model
        return SRResNet(self.info.channels, m.width, self.options.blocks, self.options.scale, m.g_norm)

    def build_discriminator(self) -> nn.Module:
        return VGGDiscriminator(self.info.channels, self.config.model.width, self.config.model.d_norm)

    @property
    def adversarial(self) -> bool:
        """Whether the adversarial game runs at the current step (not during pixel-loss pre-training)."""
        return self.options.adversarial_weight > 0 and self.step >= self.options.pretrain_steps

    def phases(self) -> list[Phase]:
        t = self.config.train
        g = Phase("G", "generator", t.lr_g, (t.beta1, t.beta2))
        if self.options.adversarial_weight <= 0:
            return [g]
        return [Phase("D", "discriminator", t.lr_d, (t.beta1, t.beta2), repeat=t.n_critic), g]

    def on_step(self, step: int) -> None:
        self.step = step

    def pretrained_generator(self) -> str | None:
        return self.options.pretrained

    def perceptual(self):
        if self._perceptual is None:
            from ganforge.nn.perceptual import perceptual_loss

            o = self.options
            built = perceptual_loss(o.perceptual, self.info.channels, o.perceptual_layer, o.vgg_weights,
                                    o.perceptual_criterion)
            self.__dict__["_perceptual"] = built if built is None else built.to(next(self.generator.parameters()).device)
        return self._perceptual

    def pixel(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(sr, hr) if self.options.pixel_loss == "mse" else F.l1_loss(sr, hr)

    def generator_adversarial(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return losses.generator_loss(self.config.model.loss, fake_logits)

    def discriminator_adversarial(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return losses.discriminator_loss(self.config.model.loss, real_logits, fake_logits)

    def loss(self, phase, batch):
        lr, hr = batch["lr"], batch["hr"]
        o = self.options
        if phase == "D":
            if not self.adversarial:  # pixel-loss pre-training: a zero loss leaves Adam's update at zero
                zero = sum(p.sum() for p in self.discriminator.parameters()) * 0.0
                return zero, dict.fromkeys(("d_loss", "d_real", "d_fake"), NOT_COMPUTED.to(lr.device))
            with torch.no_grad():
                sr = self.generator(lr)
            real_logits, fake_logits = self.discriminator(hr), self.discriminator(sr)
            loss = self.discriminator_adversarial(real_logits, fake_logits)
            return loss, {"d_loss": loss.detach(), "d_real": real_logits.detach().mean(),
                          "d_fake": fake_logits.detach().mean()}
        sr = self.generator(lr)
        pixel = self.pixel(sr, hr)
        logs = {"pixel": pixel.detach()}
        if not self.adversarial and self.step < o.pretrain_steps:
            # the same columns as later steps (the CSV header is fixed by the first row), NaN while not computed
            later = (["perceptual"] if o.perceptual_weight > 0 and o.perceptual != "none" else []) + (
                ["adversarial"] if o.adversarial_weight > 0 else [])
            return pixel, logs | dict.fromkeys(later, NOT_COMPUTED.to(lr.device)) | {"g_loss": pixel.detach()}
        total = o.pixel_weight * pixel
        perceptual = self.perceptual() if o.perceptual_weight > 0 else None
        if perceptual is not None:
            value = perceptual(sr, hr)
            total = total + o.perceptual_weight * value
            logs["perceptual"] = value.detach()
        if self.adversarial:
            with torch.no_grad():
                real_logits = self.discriminator(hr)
            value = self.generator_adversarial(real_logits, self.discriminator(sr))
            total = total + o.adversarial_weight * value
            logs["adversarial"] = value.detach()
        return total, logs | {"g_loss": total.detach()}

    def sample_inputs(self, n, rng, labels=None, data=None):
        if data is None or not hasattr(data, "fixed_pairs"):
            raise GanforgeError(f"{self.name} upscales images rather than sampling noise: use "
                                "`ganforge upscale RUN IMAGE...`")
        return {"lr": data.fixed_pairs(n, rng)["lr"]}

    def generate(self, generator, inputs):
        return generator(inputs["lr"])
