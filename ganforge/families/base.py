"""What a GAN family is to the trainer: networks, optimisation phases, a loss per phase, and how to generate.

The trainer owns the loop, devices, precision, EMA, logging and checkpoints; a family owns only the maths.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, get_type_hints

import torch
import torch.nn as nn

from ganforge.config import RunConfig, check_value, coerce
from ganforge.errors import GanforgeError


@dataclass
class DataInfo:
    """What a family needs to know about its data to build its networks."""

    channels: int
    resolution: int
    n_classes: int = 0
    # JSON-able facts the data set hands its family and the checkpoint keeps (sampling then needs no data): e.g.
    # {"vocabulary": [...], "max_length": 20} for text, {"sample_rate": 8000, "length": 8192} for audio.
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class Phase:
    """One optimisation phase: which sub-module it trains, its optimiser settings, and how often it repeats."""

    name: str
    module: str  # attribute of the family holding the trained parameters ("discriminator", "generator")
    lr: float
    betas: tuple[float, float]
    repeat: int = 1  # e.g. n_critic for the discriminator; 0 skips the phase this step (a schedule's stage)
    optimizer: str = "adam"  # adam | rmsprop
    frozen: tuple[str, ...] | None = None  # modules without gradients in this phase; None: every other phase's


Batch = dict[str, torch.Tensor]

MODALITIES = ("image", "video", "audio", "tokens")


@dataclass(frozen=True)
class Truncation:
    """How a family trades diversity for fidelity at sampling time. The user's value psi is in [0, 1] for every
    kind, and psi = `neutral` (1) always means no truncation."""

    kind: str  # "psi": w_avg + psi (w - w_avg) (StyleGAN); "mass": keep the central psi of the prior's mass (BigGAN)
    neutral: float = 1.0


@dataclass(frozen=True)
class Capabilities:
    """What a family can do beyond training; commands and the UI read this, never a family's name."""

    modality: str = "image"  # what generate() makes: image (N,C,H,W) | video (N,T,C,H,W) | audio (N,C,L) | tokens (N,L)
    from_noise: bool = True  # samples from noise (False: it needs an input, e.g. an image to translate)
    conditional: bool = False  # needs class labels: inputs["label"]
    truncation: Truncation | None = None  # inputs["truncation"]: one psi per sample
    temperature: bool = False  # inputs["temperature"]: one sampling temperature per sample (> 0; 1: as trained)
    style_mixing: bool = False  # style_mix(generator, destination, source, layers, psi), layer_range(generator, spec)
    encode: bool = False  # encode(images) -> latents, reconstruct(generator, images)
    translate: tuple[str, ...] = ()  # directions of translate(generator, images, direction): AtoB, BtoA
    upscale: bool = False  # generate({"lr": images}) upscales by `self.scale`
    latent: str = "noise"  # the generator input `project` optimises and `sample --latents` feeds (noise: z);
    # a family with another latent space maps noise into it in latent_inputs (StyleGAN: "w")
    captioned: bool = False  # text-conditioned: inputs["caption"] token ids; caption_inputs(inputs, texts, towards)
    masks: bool = False  # translate_masks(generator, images) -> (N, C + 1, H, W): the output and, last, the mask
    # (in [0, 1]) of the pixels it changed


def _yaml_word(value: Any, options: type, key: str) -> Any:
    """A bool given to a string option whose choices spell it as a word (`on`/`off`, `yes`/`no`): YAML 1.1, which
    parses --opt values and config files, reads `joint_critic: on` as true; it meant the choice 'on'."""
    if not isinstance(value, bool):
        return value
    choices = next((f.metadata.get("choices") for f in fields(options) if f.name == key), None) or ()
    words = ("on", "yes", "true", "y") if value else ("off", "no", "false", "n")
    return next((c for c in choices if isinstance(c, str) and c.lower() in words), value)


class Family(nn.Module):
    """Base class of every GAN family; subclasses register with `@register`."""

    name: ClassVar[str] = ""
    preset: ClassVar[dict[str, Any]] = {}  # the default recipe, as config overrides under the user's own
    # other recipes by name (--preset NAME); "paper" is the paper's recipe, the default one where not named here
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    tiny: ClassVar[dict[str, Any]] = {}  # overrides for the smallest run that still exercises the family (tests)
    capabilities: ClassVar[Capabilities] = Capabilities()
    Options: ClassVar[type | None] = None  # dataclass of family-specific model.options
    # model.options that act at inference only (not on the weights): a loaded run may change them
    # (GAN.set_options, `ganforge translate --opt`)
    inference_options: ClassVar[tuple[str, ...]] = ()

    generator: nn.Module
    discriminator: nn.Module

    @classmethod
    def recipe(cls, name: str = "default") -> dict[str, Any]:
        """The config overrides of the preset called `name`: "default", "paper" or one of `presets`. Named presets
        go with the default recipe they sit beside: a subclass with its own `preset` does not inherit its parent's
        `presets` (WGAN-GP's paper recipe is its own preset, not DCGAN's paper recipe)."""
        mro = cls.__mro__
        owner = next(i for i, k in enumerate(mro) if "preset" in vars(k))  # where the default recipe comes from
        own = next((vars(k)["presets"] for k in mro[:owner + 1] if "presets" in vars(k)), {})
        named = {"default": cls.preset, "paper": cls.preset} | own
        if name not in named:
            raise GanforgeError(f"model.preset: {cls.name} has the presets {', '.join(named)}, got {name!r}")
        return named[name]

    def __init__(self, config: RunConfig, info: DataInfo):
        super().__init__()
        self.config = config
        self.info = info
        self.options = self.parse_options(config.model.options)
        self.shard = (0, 1)  # (rank, processes) under torchrun; set by the trainer

    @classmethod
    def parse_options(cls, given: dict[str, Any]):
        """`model.options` as the family's typed Options, each value checked against its type and the values its
        field accepts (`ganforge.config.option`); one line naming the key otherwise."""
        if cls.Options is None:
            if given:
                raise GanforgeError(f"model.options: '{cls.name}' takes no options; got {', '.join(given)}")
            return None
        known = {f.name for f in fields(cls.Options)}
        unknown = sorted(set(given) - known)
        if unknown:
            raise GanforgeError(f"model.options: unknown key '{unknown[0]}' for {cls.name} (known: {', '.join(sorted(known))})")
        hints = get_type_hints(cls.Options)
        given = {k: _yaml_word(v, cls.Options, k) for k, v in given.items()}
        values = {k: coerce(v, hints[k], f"model.options.{k}") for k, v in given.items()}
        for item in fields(cls.Options):
            if item.name in values:
                check_value(f"model.options.{item.name}", values[item.name], item.metadata.get("interval"),
                            item.metadata.get("choices"))
                if item.metadata.get("check"):
                    item.metadata["check"](values[item.name])
        return cls.Options(**values)

    @classmethod
    def load_data(cls, config: RunConfig):
        """The training data for this family (default: images, with labels when the source has them).

        Whatever it returns needs `channels`, `classes`, `labels`, `name`, `__len__` and
        `batches(batch_size, device, seed, flip)` giving an object with `next()`, `state_dict()` and
        `load_state_dict()` (see ganforge.data.TensorBatches), and optionally `facts` (a JSON-able dict that becomes
        `DataInfo.facts`, saved with the checkpoint); families with paired or degraded inputs, text, audio or video
        return their own data set here, and the trainer stays unchanged. Images larger than the memory budget (or
        with data.stream) are streamed from disk (ganforge.data.stream).
        """
        from ganforge.data.stream import open_images

        return open_images(config.data)

    def phases(self) -> list[Phase]:
        """The optimisation phases of one training step, in order (default: critic n_critic times, then G).

        Read by the trainer every step (after `on_step`): the same phases each time (each has its own optimiser),
        but their repeat counts may follow a schedule, 0 skipping a phase (e.g. pretraining G by maximum likelihood,
        then D, then adversarial training)."""
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
        """Samples in [-1, 1] (shaped as its modality says) from `generator` (the live one or its EMA copy)."""
        raise NotImplementedError

    def sample_info(self) -> dict[str, Any]:
        """What the modality's writers need besides the tensor: e.g. {"sample_rate": 16000} for audio, {"fps": 8}
        for video, {"vocabulary": [...]} for tokens."""
        return {}

    def latent_inputs(self, generator: nn.Module, inputs: Batch) -> Batch:
        """`inputs` with the noise mapped into the space `capabilities.latent` names (default: noise as it is);
        `generate` accepts the result. Latent projection optimises that entry."""
        return inputs

    def decoding_step(self, generator: nn.Module) -> nn.Module | None:
        """Autoregressive families: one decoding step of `generator` as a module with `names` (its inputs),
        `outputs`, `example(n, rng)` (random inputs of batch n) and `loop` (how to run it), which `ganforge export`
        writes instead of the whole sampler. None (the default): export `generate` whole."""
        return None

    def pretrained_generator(self) -> str | None:
        """A run folder or checkpoint whose generator weights initialise a new run (e.g. a PSNR-oriented model
        before GAN fine-tuning); the trainer loads it. None: random initialisation."""
        return None

    @property
    def conditional(self) -> bool:
        return self.capabilities.conditional
