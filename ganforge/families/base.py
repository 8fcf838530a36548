"""What a GAN family is to the trainer: networks, optimisation phases, a loss per phase, and how to generate.

The trainer owns the loop, devices, precision, EMA, logging and checkpoints; a family owns only the maths.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar, get_type_hints

import torch
import torch.nn as nn

from ganforge import losses
from ganforge.config import RunConfig, coerce
from ganforge.errors import GanforgeError


@dataclass
class DataInfo:
    """What a family needs to know about its data to build its networks."""

    channels: int
    resolution: int
    n_classes: int = 0


@dataclass
class Phase:
    """One optimisation phase: which sub-module it trains, its optimiser settings, and how often it repeats."""

    name: str
    module: str  # attribute of the family holding the trained parameters ("discriminator", "generator")
    lr: float
    betas: tuple[float, float]
    repeat: int = 1  # e.g. n_critic for the discriminator
    optimizer: str = "adam"  # adam | rmsprop
    frozen: tuple[str, ...] | None = None  # modules without gradients in this phase; None: every other phase's


Batch = dict[str, torch.Tensor]


class Family(nn.Module):
    """Base class of every GAN family; subclasses register with `@register`."""

    name: ClassVar[str] = ""
    preset: ClassVar[dict[str, Any]] = {}  # the paper's recipe, as config overrides under the user's own
    data_kind: ClassVar[str] = "images"  # images | paired | unpaired
    conditional: ClassVar[bool] = False  # needs class labels from the data
    Options: ClassVar[type | None] = None  # dataclass of family-specific model.options

    generator: nn.Module
    discriminator: nn.Module

    def __init__(self, config: RunConfig, info: DataInfo):
        super().__init__()
        self.config = config
        self.info = info
        self.options = self._parse_options(config.model.options)
        self.shard = (0, 1)  # (rank, processes) under torchrun; set by the trainer

    def _parse_options(self, given: dict[str, Any]):
        if self.Options is None:
            if given:
                raise GanforgeError(f"model.options: '{self.name}' takes no options; got {', '.join(given)}")
            return None
        known = {f.name for f in fields(self.Options)}
        unknown = sorted(set(given) - known)
        if unknown:
            raise GanforgeError(f"model.options: unknown key '{unknown[0]}' for {self.name} (known: {', '.join(sorted(known))})")
        hints = get_type_hints(self.Options)
        return self.Options(**{k: coerce(v, hints[k], f"model.options.{k}") for k, v in given.items()})

    @classmethod
    def load_data(cls, config: RunConfig):
        """The training data for this family (default: images, with labels when the source has them).

        Whatever it returns needs `channels`, `classes`, `labels`, `name`, `__len__` and
        `batches(batch_size, device, seed, flip)` giving an object with `next()`, `state_dict()` and
        `load_state_dict()` (see ganforge.data.TensorBatches); families with paired or degraded inputs return
        their own data set here, and the trainer stays unchanged.
        """
        from ganforge.data import load_images

        d = config.data
        return load_images(d.source, d.resolution, d.channels, d.root, d.limit)

    def phases(self) -> list[Phase]:
        """The optimisation phases of one training step, in order (default: critic n_critic times, then G)."""
        t = self.config.train
        return [
            Phase("D", "discriminator", t.lr_d, (t.beta1, t.beta2), repeat=t.n_critic),
            Phase("G", "generator", t.lr_g, (t.beta1, t.beta2)),
        ]

    def loss(self, phase: str, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The scalar loss to minimise in `phase`, and detached values to log."""
        raise NotImplementedError

    def on_step(self, step: int) -> None:
        """Called by the trainer before each training step (and after a resume) with the step about to run;
        for schedules such as progressive growing."""

    def lr_factor(self, step: int) -> float:
        """Multiplier of every phase's learning rate at `step` (a schedule, e.g. linear decay); 1 by default."""
        return 1.0

    def after_step(self, phase: str) -> None:
        """Called after each optimiser step of `phase` (e.g. weight clipping)."""

    def sample_inputs(self, n: int, rng: torch.Generator, labels: torch.Tensor | None = None, data=None) -> Batch:
        """Generator inputs for `n` samples drawn from `rng` (a CPU generator), e.g. noise and labels.

        `data` is the training data when available (image-to-image families take their inputs from it).
        """
        raise NotImplementedError

    def generate(self, generator: nn.Module, inputs: Batch) -> torch.Tensor:
        """Images in [-1, 1] from `generator` (the live one or its EMA copy) for `inputs`."""
        raise NotImplementedError


class NoiseGAN(Family):
    """A family that maps noise (and optionally class labels) to images with an adversarial loss.

    Subclasses build `generator` and `discriminator`; conditional ones override `critic` and `generate`.
    """

    def __init__(self, config: RunConfig, info: DataInfo):
        super().__init__(config, info)
        model = config.model
        losses.check_loss(model.loss)
        if model.penalty not in losses.PENALTIES:
            raise GanforgeError(f"model.penalty must be one of {', '.join(losses.PENALTIES)}; got '{model.penalty}'")
        self._pending: tuple[Batch, torch.Tensor] | None = None

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
        """Discriminator logits for `images`; `batch` carries labels for conditional families."""
        return self.discriminator(images)

    def generator_inputs(self, batch: Batch) -> Batch:
        """Fresh generator inputs matching a training batch (same size, same labels)."""
        real = batch["image"]
        return {"noise": self.noise(real.shape[0], real.device)}

    def sample_inputs(self, n: int, rng: torch.Generator, labels: torch.Tensor | None = None, data=None) -> Batch:
        return {"noise": torch.randn(n, self.config.model.latent_dim, generator=rng)}

    def generate(self, generator: nn.Module, inputs: Batch) -> torch.Tensor:
        return generator(inputs["noise"])

    def loss(self, phase: str, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        model = self.config.model
        real = batch["image"]
        inputs = self.generator_inputs(batch)
        if phase == "G":
            if self._pending is not None:  # G is unchanged since the D phase made these: same maths, one pass less
                inputs, fake = self._pending
                self._pending = None
            else:
                fake = self.generate(self.generator, inputs)
            loss = losses.generator_loss(model.loss, self.critic(fake, inputs))
            return loss, {"g_loss": loss.detach()}
        if torch.is_grad_enabled() and next(self.generator.parameters()).requires_grad:
            live = self.generate(self.generator, inputs)
            self._pending, fake = (inputs, live), live.detach()
        else:
            with torch.no_grad():
                fake = self.generate(self.generator, inputs)
        if model.penalty == "r1":
            real = real.detach().requires_grad_(True)
        real_logits = self.critic(real, batch)
        fake_logits = self.critic(fake, inputs)
        loss = losses.discriminator_loss(model.loss, real_logits, fake_logits)
        logs = {"d_loss": loss.detach(), "d_real": real_logits.detach().mean(), "d_fake": fake_logits.detach().mean()}
        if model.penalty == "gp":
            penalty = losses.gradient_penalty(lambda x: self.critic(x, batch), real, fake)
            loss = loss + model.penalty_weight * penalty
            logs["gp"] = penalty.detach()
        elif model.penalty == "r1":
            penalty = losses.r1_penalty(real_logits, real)
            loss = loss + 0.5 * model.penalty_weight * penalty
            logs["r1"] = penalty.detach()
        return loss, logs
