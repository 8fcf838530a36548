"""The audio kind of noise GAN: clips from a WAV folder at the model's sample rate and length, (N, 1, L) samples in
[-1, 1], and class conditioning switched on by an option (`--opt conditional=true`) rather than by the family."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn as nn

from ganforge.config import option
from ganforge.data.audio import NORMALIZE, load_audio
from ganforge.errors import GanforgeError
from ganforge.families.base import Batch, DataInfo
from ganforge.families.kinds.noise import NoiseGAN, NoiseOptions
from ganforge.training.schedule import tail_decay


@dataclass
class AudioOptions(NoiseOptions):
    """Options of every audio family (the inherited `diffaugment` is for images and must stay empty)."""

    sample_rate: int = option(0, interval="[0, 192000]")  # samples per second of the model; 0: the data's most
    # common rate (the files are resampled to it)
    length: int = 16384  # samples per clip (the data is cropped or zero-padded to it)
    normalize: str = option("peak", choices=NORMALIZE)  # per-clip loudness: peak | rms | none
    conditional: bool = False  # class-conditional: labels from sub-folders or '{label}_' file names; sample --class
    embed_dim: int = option(32, interval="[1, inf)")  # size of the generator's class embedding (conditional)
    lr_decay: float = option(1.0, interval="[0, 1]")  # learning-rate decay over the run's tail (every phase): from
    # this fraction of train.steps on, the rates fall to lr_floor x their value at the last step; 1: no decay
    lr_decay_shape: str = option("linear", choices=("linear", "cosine"))  # straight or half-cosine fall
    lr_floor: float = option(0.0, interval="[0, 1]")  # the factor reached at the last step (lr_decay < 1)


class AudioGAN(NoiseGAN):
    """A noise-to-audio family; subclasses build `generator(noise, labels)` and `discriminator(x, labels)`, whose
    labels are None unless the run is conditional."""

    real_key = "audio"

    def __init__(self, config, info: DataInfo):
        super().__init__(config, info)
        if self.options.diffaugment:
            raise GanforgeError("model.options.diffaugment: DiffAugment's policies are for images, not audio")
        # conditioning is a run setting here: declare it on the instance, which commands and the trainer read
        self.capabilities = dataclasses.replace(type(self).capabilities, conditional=self.options.conditional)
        if self.conditional and info.n_classes < 2:
            raise GanforgeError(f"model.options.conditional: needs at least 2 classes in the data (sub-folders or "
                                f"'{{label}}_' file-name prefixes), got {info.n_classes}")
        missing = {"sample_rate", "length"} - set(info.facts)
        if missing:
            raise GanforgeError(f"model {self.name}: the data gave no {' or '.join(sorted(missing))} (audio data "
                                "sets state both)")
        self.sample_rate, self.length = int(info.facts["sample_rate"]), int(info.facts["length"])
        self.n_classes = info.n_classes if self.conditional else 0

    @classmethod
    def load_data(cls, config):
        options = cls.parse_options(config.model.options)
        return load_audio(config.data.source, options.sample_rate or None, options.length, options.normalize,
                          config.data.limit)

    def sample_info(self) -> dict:
        return {"sample_rate": self.sample_rate}

    def lr_factor(self, step: int) -> float:
        o = self.options
        return tail_decay(step, self.config.train.steps, o.lr_decay, o.lr_decay_shape, o.lr_floor)

    def labels(self, batch: Batch) -> torch.Tensor | None:
        return batch["label"] if self.conditional else None

    def discriminate(self, x: torch.Tensor, batch: Batch) -> torch.Tensor:
        return self.discriminator(x, self.labels(batch))

    def generator_inputs(self, batch: Batch) -> Batch:
        inputs = super().generator_inputs(batch)
        if self.conditional:
            inputs["label"] = batch["label"]
        return inputs

    def sample_inputs(self, n: int, rng: torch.Generator, labels: torch.Tensor | None = None, data=None) -> Batch:
        inputs = {"noise": torch.randn(n, self.config.model.latent_dim, generator=rng)}
        if self.conditional:
            if labels is None:
                labels = torch.randint(0, self.n_classes, (n,), generator=rng)
            inputs["label"] = torch.as_tensor(labels, dtype=torch.long).expand(n).clone()
        return inputs

    def generate(self, generator: nn.Module, inputs: Batch) -> torch.Tensor:
        return generator(inputs["noise"], inputs.get("label"))
