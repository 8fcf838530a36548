"""The image-to-image kind of family (pix2pix, CycleGAN): paired or unpaired image data, fixed training images
as sample inputs, translation in a direction, the papers' adversarial weighting and linear learning-rate decay."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from ganforge import losses
from ganforge.errors import GanforgeError
from ganforge.families.base import Batch, Family
from ganforge.nn.layers import check_norm

def adversarial_losses(kind: str, real_logits: torch.Tensor | None, fake_logits: torch.Tensor, phase: str) -> torch.Tensor:
    """The papers' weighting: D minimises (L_real + L_fake) / 2, G minimises its full GAN loss (BCE or MSE)."""
    if phase == "G":
        # losses.generator_loss halves the least-squares loss; the papers use the plain MSE
        return losses.generator_loss(kind, fake_logits) * (2.0 if kind == "least-squares" else 1.0)
    # losses.discriminator_loss already halves the least-squares loss
    return losses.discriminator_loss(kind, real_logits, fake_logits) * (1.0 if kind == "least-squares" else 0.5)


def linear_decay(step: int, start: float, total_steps: int) -> float:
    """Learning-rate factor: 1 for the first `start` fraction of training, then linearly down towards 0."""
    start_step = int(round(start * total_steps))
    return 1.0 - max(0, step + 1 - start_step) / (total_steps - start_step + 1)


class ImageToImage(Family):
    """Shared by the translation families: paired/unpaired data, fixed sample images, translation, LR decay.
    Its Options need `direction`, `load_size` and `decay_start`."""

    data_kind: str = "paired"  # paired | unpaired
    stride: int = 1  # inputs are padded to a multiple of this by the generator

    def __init__(self, config, info):
        super().__init__(config, info)
        losses.check_loss(config.model.loss)
        check_norm(config.model.g_norm, "model.g_norm")
        check_norm(config.model.d_norm, "model.d_norm")

    @classmethod
    def load_data(cls, config):
        from ganforge.data.paired_stream import open_paired

        load_size = config.model.options.get("load_size") or None
        return open_paired(config.data, load_size, paired=cls.data_kind == "paired")

    def source_target(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(input, target) of a batch for the trained direction."""
        return (batch["a"], batch["b"]) if self.options.direction == "AtoB" else (batch["b"], batch["a"])

    def lr_factor(self, step: int) -> float:
        return linear_decay(step, self.options.decay_start, self.config.train.steps)

    def sample_inputs(self, n: int, rng: torch.Generator, labels=None, data=None) -> Batch:
        """Fixed training images (centre crops) to translate in the sample grids."""
        if data is None or not hasattr(data, "centre"):
            raise GanforgeError(f"{self.name} translates images rather than sampling noise: "
                                "use `ganforge translate RUN IMAGES --out DIR`")
        picks = torch.randperm(len(data), generator=rng)[:n].tolist()
        picks = (picks * math.ceil(n / len(picks)))[:n]
        picks_b = picks if data.paired else torch.randint(0, len(data.b), (n,), generator=rng).tolist()
        batch = {"a": data.centre("a", picks), "b": data.centre("b", picks_b)}
        source, target = self.source_target(batch)
        return {"source": source, "target": target}

    def translate(self, generator: nn.Module, images: torch.Tensor, direction: str = "AtoB") -> torch.Tensor:
        """Translate images in [-1, 1] of any size in `direction`."""
        raise NotImplementedError

    def generate(self, generator: nn.Module, inputs: Batch) -> torch.Tensor:
        """Translations of inputs["source"]; with a "target" too, input | output | target side by side."""
        out = self.translate(generator, inputs["source"], self.options.direction)
        if "target" not in inputs:
            return out
        return torch.cat([inputs["source"], out, inputs["target"]], -1)
