"""The noise-to-image kind of family: an adversarial game between a generator of noise (and class labels) and a
discriminator, with any loss, gradient penalty or R1, and optional DiffAugment. Most image families only build
their networks on top of `NoiseGAN`; class-conditional ones mix in `Conditional`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn as nn

from ganforge import losses
from ganforge.config import RunConfig, option
from ganforge.data.ada import AdaptiveAugment
from ganforge.data.diffaugment import diff_augment, parse_policy
from ganforge.errors import GanforgeError
from ganforge.families.base import Batch, DataInfo, Family, Phase


@dataclass
class NoiseOptions:
    """Options every noise-to-image family has; a family's own Options derive from this."""

    diffaugment: str = option("", check=parse_policy)  # DiffAugment policy for small data, e.g.
    # "color,translation,cutout" (Zhao et al. 2020)
    ada: bool = False  # adaptive discriminator augmentation (Karras et al. 2020): flips, 90-degree rotations,
    # integer translation and colour with a probability p steered by D's overfitting (logged as ada_p)
    ada_target: float = option(0.6, interval="(0, 1)")  # ADA's target for r_t = E[sign(D(real))]
    ada_kimg: float = option(500.0, interval="(0, inf)")  # thousands of real images over which p can move by 1


JOINT_CRITIC = {"auto": "auto", "on": True, "off": False}  # option value -> NoiseGAN.joint_critic


class NoiseGAN(Family):
    """A family that maps noise (and optionally class labels) to images with an adversarial loss.

    Subclasses build `generator` and `discriminator`; conditional ones mix in `Conditional`. With the option
    `diffaugment`, every discriminator input (real, fake, GP/R1 points) is augmented differentiably.
    """

    Options: ClassVar[type | None] = NoiseOptions
    real_key: ClassVar[str] = "image"  # the batch entry holding the real samples (audio families: "audio")

    def __init__(self, config: RunConfig, info: DataInfo):
        super().__init__(config, info)
        self.augment = parse_policy(self.options.diffaugment)  # a bad policy fails at build time, not mid-run
        self.ada = None
        if self.options.ada:
            if self.augment:
                raise GanforgeError("model.options: ada and diffaugment both augment D's inputs; choose one")
            if self.capabilities.modality != "image":
                raise GanforgeError(f"model.options.ada augments images; {self.name} makes "
                                    f"{self.capabilities.modality}")
            self.ada = AdaptiveAugment(self.options.ada_target, self.options.ada_kimg)  # p is saved with the weights
        model = config.model
        losses.check_loss(model.loss)
        if model.penalty not in losses.PENALTIES:
            raise GanforgeError(f"model.penalty must be one of {', '.join(losses.PENALTIES)}; got '{model.penalty}'")
        self._pending: tuple[Batch, torch.Tensor] | None = None
        self._step, self._d_calls = 0, 0  # the training step and the D-loss calls in it (lazy R1's clock)

    # D sees real and fake in one forward pass (torch.cat) instead of two: one spectral-norm power iteration per
    # update and half the kernel launches. Only for discriminators without cross-sample layers (no batch norm, no
    # minibatch stddev), whose outputs per sample do not depend on the rest of the batch. "auto": only off the CPU
    # (on a CPU it saves no time: issue 20's A/B), where kernel launches dominate small steps.
    joint_critic: ClassVar[bool | str] = False

    def on_step(self, step: int) -> None:
        self._step, self._d_calls = step, 0

    def r1_interval(self) -> int:
        """D steps between R1 evaluations (lazy regularisation, Karras et al. 2020 sec. 3.1: evaluated every N D
        steps with its weight multiplied by N); 1 evaluates it on every D step."""
        return 1

    def _r1_due(self) -> tuple[bool, int]:
        """Whether this D loss call evaluates R1, and the interval; a pure function of the step (resume-exact)."""
        interval = self.r1_interval()
        train = self.config.train
        index = self._step * train.n_critic + self._d_calls // train.grad_accum  # the D step this call belongs to
        self._d_calls += 1
        return index % interval == 0, interval

    def discriminator_terms(self, real_logits: torch.Tensor, batch: Batch) -> tuple[torch.Tensor | None,
                                                                                      dict[str, torch.Tensor]]:
        """Extra terms of the D loss computed from the real logits (e.g. ProGAN's drift), and their logs."""
        return None, {}

    def phases(self) -> list[Phase]:
        """D then G; with one critic step the D phase keeps G's graph so the G phase reuses its samples."""
        phases = super().phases()
        if self.config.train.n_critic == 1:
            phases[0].frozen = ()
        return phases

    def noise(self, n: int, device: torch.device) -> torch.Tensor:
        """Latents for a training batch of `n`; under torchrun, this process's slice of the global batch's."""
        rank, world = self.shard
        z = torch.randn(n * world, self.config.model.latent_dim, device=device)
        return z[rank * n:(rank + 1) * n]

    def critic(self, images: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Discriminator logits for `images` (augmented when DiffAugment or ADA is on); `batch` carries labels."""
        if self.augment:
            images = diff_augment(images, self.augment)
        if self.ada is not None:
            images = self.ada(images)
        return self.discriminate(images, batch)

    def discriminate(self, images: torch.Tensor, batch: Batch) -> torch.Tensor:
        """The discriminator itself on `images`; conditional families pass the labels too."""
        return self.discriminator(images)

    def generator_inputs(self, batch: Batch) -> Batch:
        """Fresh generator inputs matching a training batch (same size, same labels)."""
        real = batch[self.real_key]
        return {"noise": self.noise(real.shape[0], real.device)}

    def sample_inputs(self, n: int, rng: torch.Generator, labels: torch.Tensor | None = None, data=None) -> Batch:
        return {"noise": torch.randn(n, self.config.model.latent_dim, generator=rng)}

    def generate(self, generator: nn.Module, inputs: Batch) -> torch.Tensor:
        return generator(inputs["noise"])

    def fake(self, inputs: Batch) -> torch.Tensor:
        """What the discriminator sees of the live generator's samples (default: `generate`'s output; a family that
        inverts its generator's output for listening, e.g. spectrograms to audio, returns the uninverted output)."""
        return self.generate(self.generator, inputs)

    def loss(self, phase: str, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        model = self.config.model
        real = batch[self.real_key]
        inputs = self.generator_inputs(batch)
        if phase == "G":
            if self._pending is not None:  # G is unchanged since the D phase made these: same maths, one pass less
                inputs, fake = self._pending
                self._pending = None
            else:
                fake = self.fake(inputs)
            loss = losses.generator_loss(model.loss, self.critic(fake, inputs))
            return loss, {"g_loss": loss.detach()}
        if torch.is_grad_enabled() and next(self.generator.parameters()).requires_grad:
            live = self.fake(inputs)
            self._pending, fake = (inputs, live), live.detach()
        else:
            with torch.no_grad():
                fake = self.fake(inputs)
        r1, interval = self._r1_due() if model.penalty == "r1" else (False, 1)
        if r1:
            real = real.detach().requires_grad_(True)
        joint = self.joint_critic if self.joint_critic != "auto" else real.device.type != "cpu"
        if joint and not self.augment and self.ada is None and real.shape == fake.shape:
            real_logits, fake_logits = self.critic(torch.cat([real, fake.to(real.dtype)]), self._joint(batch, inputs)
                                                   ).split(real.shape[0])
        else:
            real_logits = self.critic(real, batch)
            fake_logits = self.critic(fake, inputs)
        loss = losses.discriminator_loss(model.loss, real_logits, fake_logits)
        logs = {"d_loss": loss.detach(), "d_real": real_logits.detach().mean(), "d_fake": fake_logits.detach().mean()}
        if self.ada is not None:
            logs["ada_rt"] = self.ada.observe(real_logits)
            logs["ada_p"] = self.ada.p.detach().clone()
        if model.penalty == "gp":
            penalty = losses.gradient_penalty(lambda x: self.critic(x, batch), real, fake)
            loss = loss + model.penalty_weight * penalty
            logs["gp"] = penalty.detach()
        elif r1:  # lazily every `interval` D steps with the weight times `interval` (StyleGAN2); logged times
            # `interval` too, so that the logged mean over steps stays the mean R1
            penalty = losses.r1_penalty(real_logits, real)
            loss = loss + 0.5 * model.penalty_weight * interval * penalty
            logs["r1"] = penalty.detach() * interval
        extra, extra_logs = self.discriminator_terms(real_logits, batch)
        if extra is not None:
            loss = loss + extra
        return loss, logs | extra_logs

    def _joint(self, batch: Batch, inputs: Batch) -> Batch:
        """The conditioning of real and fake samples concatenated (labels), for one joint critic pass."""
        return {k: torch.cat([batch[k], inputs[k]]) for k in ("label",) if k in batch and k in inputs}


class Conditional:
    """Label plumbing shared by class-conditional NoiseGAN families: labels travel in batch["label"].
    Put it before NoiseGAN in the bases and declare `capabilities.conditional`."""

    def check_classes(self) -> None:
        if self.info.n_classes < 2:
            raise GanforgeError(f"model {self.name} is class-conditional and needs at least 2 classes in the data, "
                                f"got {self.info.n_classes}")

    def discriminate(self, images: torch.Tensor, batch: Batch) -> torch.Tensor:
        return self.discriminator(images, batch["label"])

    def generator_inputs(self, batch: Batch) -> Batch:
        real = batch[self.real_key]
        return {"noise": self.noise(real.shape[0], real.device), "label": batch["label"]}

    def sample_inputs(self, n: int, rng: torch.Generator, labels: torch.Tensor | None = None, data=None) -> Batch:
        noise = torch.randn(n, self.config.model.latent_dim, generator=rng)
        if labels is None:
            labels = torch.randint(0, self.info.n_classes, (n,), generator=rng)
        return {"noise": noise, "label": torch.as_tensor(labels, dtype=torch.long).expand(n).clone()}

    def generate(self, generator: nn.Module, inputs: Batch) -> torch.Tensor:
        return generator(inputs["noise"], inputs["label"])
