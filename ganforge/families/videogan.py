"""Video GAN in the manner of MoCoGAN (Tulyakov et al. 2018, "MoCoGAN: Decomposing Motion and Content for Video
Generation"): a content latent fixed per clip, motion latents from a recurrent network (GRU) driven by fresh noise
every frame, one image generator shared by all frames, an image discriminator on single frames and a video
discriminator with 3-D convolutions on whole clips (`--preset paper`).

The default recipe keeps those but moves the content structurally (`--opt motion=transform`,
ganforge/nn/transform_motion.py): the content latent makes one appearance image per clip and the GRU's states
become per-frame translations (optionally scale and rotation) that warp it, so a clip keeps its object by
construction; the motion is rigid (objects sliding, bouncing, a camera panning), never a deformation. The video
discriminator still judges whether the motion is real-like.

The recurrent motion makes clips of any length: `ganforge sample RUN --frames 32` continues the clips past the
training length (the first T frames are the T-frame clip of the same seed)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from ganforge import losses
from ganforge.config import option
from ganforge.data.video import DIGIT_SOURCES, load_video, parse_per_clip
from ganforge.errors import GanforgeError
from ganforge.families import register
from ganforge.families.base import Batch, Capabilities, DataInfo, Family
from ganforge.nn import init_dcgan_weights
from ganforge.nn.dcgan import Discriminator, Generator, widths
from ganforge.nn.layers import check_norm
from ganforge.nn.transform_motion import LAYERS, TRANSFORMS, TransformMotionGenerator
from ganforge.training.schedule import tail_decay


@dataclass
class VideoOptions:
    frames: int = option(16, interval="[2, 256]")  # frames per training clip (T)
    fps: float = option(8.0, interval="(0, 240]")  # frames per second of moving digits and of arrays/frame
    # folders (video files keep their own)
    motion_dim: int = option(10, interval="[1, 1024]")  # size of the per-frame motion latent (MoCoGAN: 10)
    g_width_mult: float = option(1.0, interval="(0, 16]")  # the image generator's width as a multiple of
    # model.width (D's); with motion=transform G draws one image per clip while D judges many frames, so a wider G
    # costs little
    image_frames: int = option(2, interval="[1, 256]")  # random frames per clip shown to the image discriminator
    video_weight: float = option(1.0, interval="[0, 100]")  # weight of the video discriminator's loss terms
    train_frames: int = option(0, interval="[0, 256]")  # training: G makes, and D_V judges, random sub-clips of
    # this many frames (real ones cut from the data's clips; cheaper steps); 0 = whole clips
    upsample: str = option("transpose", choices=("transpose", "resize"))  # resize: nearest resize + conv
    motion: str = option("latent", choices=("latent", "transform"))  # latent: MoCoGAN (motion latents into the
    # image generator every frame); transform: one appearance per clip, warped by per-frame transforms
    transform: str = option("translate", choices=TRANSFORMS)  # motion=transform: translate | similarity (+ scale,
    # rotation)
    layers: str = option("frame", choices=LAYERS)  # motion=transform: frame (the whole image moves, as an object
    # on a plain background or a camera pan) | sprite (a masked sprite over a still background; on moving digits it
    # collapsed into the background: frozen clips)
    shift: float = option(0.6, interval="(0, 2]")  # motion=transform: farthest translation, in half-frames
    speed: float = option(0.25, interval="(0, 2]")  # motion=transform: fastest translation, half-frames per frame
    lr_decay: float = option(1.0, interval="[0, 1]")  # from this fraction of train.steps on, every learning rate
    # falls linearly to 0 at the last step; 1: constant rates
    whole_pixels: bool = option(False)  # motion=transform, translate: move by whole pixels (sharp frames; for
    # sprites pasted at integer places such as moving digits), straight-through gradient
    digits: str = option("1-2", check=parse_per_clip)  # moving digits: digits per clip (1, 2 or 1-2)
    digit_source: str = option("auto", choices=DIGIT_SOURCES)  # moving digits: MNIST (under --data-root; auto:
    # when a root is given) or scikit-learn's bundled digits


class MotionContentGenerator(nn.Module):
    """MoCoGAN's generator: z_M(t) = GRU(eps_t, z_M(t-1)) from h0 = eps_0, then one image generator on
    [z_C, z_M(t)] for every frame."""

    def __init__(self, content_dim: int, motion_dim: int, image: nn.Module):
        super().__init__()
        self.content_dim, self.motion_dim = content_dim, motion_dim
        self.recurrent = nn.GRUCell(motion_dim, motion_dim)
        self.image = image

    def forward(self, content: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """content (N, dz_C), noise (N, T + 1, dz_M) -> clips (N, T, C, H, W)."""
        n, steps = noise.shape[0], noise.shape[1] - 1
        state, motion = noise[:, 0], []
        for t in range(steps):
            state = self.recurrent(noise[:, t + 1], state)
            motion.append(state)
        latents = torch.cat([content.unsqueeze(1).expand(-1, steps, -1), torch.stack(motion, 1)], 2)
        frames = self.image(latents.flatten(0, 1))
        return frames.unflatten(0, (n, steps))


def _norm3d(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm3d(channels)
    if kind == "instance":
        return nn.InstanceNorm3d(channels, affine=True)
    return nn.Identity()


class VideoDiscriminator(nn.Module):
    """3-D convolutions halving height and width each stage (and time while at least 4 frames are left), then a
    per-position logit averaged over the remaining frames: one logit per clip."""

    def __init__(self, channels: int, resolution: int, frames: int, width: int, norm: str):
        super().__init__()
        chans = widths(resolution, width)[::-1]
        layers, cin, steps = [], channels, frames
        for index, cout in enumerate(chans):
            stride_t = 2 if steps >= 4 else 1
            conv = nn.Conv3d(cin, cout, (3 if stride_t == 1 else 4, 4, 4), (stride_t, 2, 2), 1, bias=index == 0)
            if norm == "spectral":
                nn.utils.parametrizations.spectral_norm(conv)
            layers += [conv, _norm3d(norm if index else "none", cout), nn.LeakyReLU(0.2, True)]
            cin, steps = cout, steps // stride_t
        last = nn.Conv3d(cin, 1, (1, 4, 4))
        if norm == "spectral":
            nn.utils.parametrizations.spectral_norm(last)
        self.net = nn.Sequential(*layers, last)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """video (N, T, C, H, W) -> logits (N,)."""
        return self.net(video.transpose(1, 2)).flatten(1).mean(1)


class Discriminators(nn.Module):
    """MoCoGAN's pair: D_I on single frames, D_V on clips."""

    def __init__(self, image: nn.Module, video: nn.Module):
        super().__init__()
        self.image, self.video = image, video


@register
class VideoGAN(Family):
    """MoCoGAN-style video generation: content + recurrent motion (latents, or transforms of one appearance per
    clip), image and video discriminators."""

    name = "videogan"
    Options = VideoOptions
    capabilities = Capabilities(modality="video")
    # MoCoGAN's settings (--preset paper): dz_C = 50, dz_M = 10, Adam lr 2e-4, betas (0.5, 0.999), 16-frame clips,
    # batch norm, motion latents into the image generator every frame
    presets = {"paper": {"data": {"source": "moving-digits"}, "model": {"latent_dim": 50, "loss": "nonsaturating"},
                         "train": {"batch_size": 16, "lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.5, "beta2": 0.999,
                                   "ema": 0.0, "sample_every": 1000, "checkpoint_every": 1000}}}
    # the default: MoCoGAN's discriminators and GRU, structured motion (one appearance per clip moved by whole
    # pixels, the whole frame warped), a generator twice D's width (it draws one image per clip), 8 frames per clip
    # for the image D, 8-frame sub-clips in training, resize upsampling, EMA, and stabilised discriminators:
    # spectral norm in D_I and D_V, the hinge loss, a fast G and a slow D (Adam beta1 0, lr_g 2.6e-3, lr_d 1.6e-4:
    # the dcgan family's tuned recipe), and 4,000 steps whose second half decays every learning rate linearly to 0
    # (lr_decay 0.5). With MoCoGAN's batch-norm D and Adam 2e-4 the discriminators won after ~1,000 steps and the
    # clips collapsed (67.5% -> 2.5% identity-consistent moving clips). The same recipe stopped at 1,000 steps
    # (sessions 3-8) gave 39-94% by training seed; with the longer decayed run fresh seeds 5-8 gave 98 / 95 / 96 /
    # 82% (mean 93%; seeds 1, 2: 95 / 63%), ~9.5 CPU-minutes each (docs/results.md, video, session 9)
    preset = {"data": {"source": "moving-digits"},
              "model": {"latent_dim": 50, "loss": "hinge", "d_norm": "spectral",
                        "options": {"motion": "transform", "layers": "frame", "whole_pixels": True, "g_width_mult": 2,
                                    "image_frames": 8, "train_frames": 8, "upsample": "resize",
                                    "lr_decay": 0.5}},
              "train": {"steps": 4000, "batch_size": 16, "lr_g": 2.6e-3, "lr_d": 1.6e-4, "beta1": 0.0,
                        "beta2": 0.999, "ema": 0.999, "sample_every": 500, "checkpoint_every": 500}}
    tiny = {"data": {"source": "moving-digits"}, "model": {"options": {"frames": 4, "motion_dim": 4}}}

    def __init__(self, config, info: DataInfo):
        super().__init__(config, info)
        model, options = config.model, self.options
        if not 8 <= info.resolution <= 256 or info.resolution & (info.resolution - 1):
            raise GanforgeError(f"data.resolution: videogan makes frames of a power of two from 8 to 256 px, "
                                f"got {info.resolution}")
        losses.check_loss(model.loss)
        if model.penalty not in losses.PENALTIES:
            raise GanforgeError(f"model.penalty must be one of {', '.join(losses.PENALTIES)}; got '{model.penalty}'")
        check_norm(model.g_norm, "model.g_norm")
        check_norm(model.d_norm, "model.d_norm")
        self.frames = int(info.facts.get("frames", options.frames))
        self.train_frames = min(options.train_frames or self.frames, self.frames)
        g_width = max(1, round(model.width * options.g_width_mult))
        if options.motion == "transform":
            appearance = info.channels * 2 + 1 if options.layers == "sprite" else info.channels
            image_generator = Generator(model.latent_dim, appearance, info.resolution, g_width, model.g_norm,
                                        options.upsample)
            self.generator = TransformMotionGenerator(model.latent_dim, options.motion_dim, image_generator,
                                                      info.channels, options.transform, options.layers,
                                                      options.shift, options.speed, options.whole_pixels)
        else:
            image_generator = Generator(model.latent_dim + options.motion_dim, info.channels, info.resolution,
                                        g_width, model.g_norm, options.upsample)
            self.generator = MotionContentGenerator(model.latent_dim, options.motion_dim, image_generator)
        self.discriminator = Discriminators(
            Discriminator(info.channels, info.resolution, model.width, model.d_norm),
            VideoDiscriminator(info.channels, info.resolution, self.train_frames, model.width, model.d_norm))
        init_dcgan_weights(self)
        for module in self.discriminator.video.modules():  # the same N(0, 0.02) / N(1, 0.02) start in 3-D
            if isinstance(module, nn.Conv3d):
                nn.init.normal_(module.parametrizations.weight.original if hasattr(module, "parametrizations")
                                else module.weight, 0.0, 0.02)
            elif isinstance(module, nn.BatchNorm3d):
                nn.init.normal_(module.weight, 1.0, 0.02)
        if isinstance(self.generator, TransformMotionGenerator):
            self.generator.reset_heads()

    @classmethod
    def load_data(cls, config):
        options, data = cls.parse_options(config.model.options), config.data
        return load_video(data.source, data.resolution, data.channels, data.root, data.limit, options.frames,
                          options.fps, options.digits, options.digit_source, seed=config.train.seed)

    # --- generation ------------------------------------------------------------------------------------
    def sample_inputs(self, n: int, rng: torch.Generator, labels=None, data=None) -> Batch:
        """A content latent per clip, a seed for its motion noise (so any length can be drawn) and the length."""
        return {"content": torch.randn(n, self.config.model.latent_dim, generator=rng),
                "motion_seed": torch.randint(0, 2 ** 62, (n,), generator=rng),
                "frames": torch.full((n,), self.frames, dtype=torch.long)}

    def motion_noise(self, seeds: torch.Tensor, frames: int) -> torch.Tensor:
        """(N, frames + 1, dz_M) motion noise, each clip's from its own seed: longer clips extend shorter ones."""
        dim, chunk = self.options.motion_dim, 16  # drawn 16 frames at a time: torch's CPU randn gives other
        # numbers for other sizes, so a fixed chunk keeps a longer clip's noise a continuation of a shorter one's
        clips = []
        for seed in seeds.tolist():
            rng = torch.Generator().manual_seed(int(seed))
            draws = [torch.randn(chunk, dim, generator=rng) for _ in range(frames // chunk + 1)]
            clips.append(torch.cat(draws)[:frames + 1])
        return torch.stack(clips)

    def generate(self, generator: nn.Module, inputs: Batch) -> torch.Tensor:
        content = inputs["content"]
        noise = inputs.get("motion")
        if noise is None:
            lengths = inputs["frames"].unique()
            if len(lengths) != 1 or int(lengths[0]) < 1:
                raise GanforgeError(f"frames: one clip length of at least 1 per batch, got {lengths.tolist()}")
            noise = self.motion_noise(inputs["motion_seed"], int(lengths[0])).to(content.device)
        return generator(content, noise)

    def sample_info(self) -> dict:
        return {"fps": float(self.info.facts.get("fps", self.options.fps))}

    def lr_factor(self, step: int) -> float:
        return tail_decay(step, self.config.train.steps, self.options.lr_decay)

    # --- training --------------------------------------------------------------------------------------
    def _noise(self, n: int, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
        """Training noise for `n` clips; under torchrun, this process's slice of the global batch's."""
        rank, world = self.shard
        return torch.randn(n * world, *shape, device=device)[rank * n:(rank + 1) * n]

    def generator_inputs(self, real: torch.Tensor) -> Batch:
        n = real.shape[0]
        return {"content": self._noise(n, (self.config.model.latent_dim,), real.device),
                "motion": self._noise(n, (real.shape[1] + 1, self.options.motion_dim), real.device)}

    def _frames(self, video: torch.Tensor, pick: torch.Tensor) -> torch.Tensor:
        """The frames at `pick` (N, k) of each clip, as images (N * k, C, H, W)."""
        rows = torch.arange(video.shape[0], device=video.device).unsqueeze(1)
        return video[rows, pick].flatten(0, 1)

    def _window(self, real: torch.Tensor) -> torch.Tensor:
        """Training clips of `train_frames` frames: a random window of each real clip (all of it when 0)."""
        n, steps = real.shape[:2]
        if self.train_frames >= steps:
            return real
        start = torch.randint(0, steps - self.train_frames + 1, (n, 1), device=real.device)
        rows = torch.arange(n, device=real.device).unsqueeze(1)
        return real[rows, start + torch.arange(self.train_frames, device=real.device)]

    def _critic(self, video: torch.Tensor, pick: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.discriminator.image(self._frames(video, pick)), self.discriminator.video(video)

    def loss(self, phase: str, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        model, weight = self.config.model, self.options.video_weight
        real = self._window(batch["video"])
        n, steps = real.shape[:2]
        pick = torch.randint(0, steps, (n, min(self.options.image_frames, steps)), device=real.device)
        inputs = self.generator_inputs(real)
        if phase == "G":
            image_logits, video_logits = self._critic(self.generate(self.generator, inputs), pick)
            image_loss = losses.generator_loss(model.loss, image_logits)
            video_loss = losses.generator_loss(model.loss, video_logits)
            loss = image_loss + weight * video_loss
            return loss, {"g_loss": loss.detach(), "g_image": image_loss.detach(), "g_video": video_loss.detach()}
        with torch.no_grad():
            fake = self.generate(self.generator, inputs)
        if model.penalty == "r1":
            real = real.detach().requires_grad_(True)
        real_image, real_video = self._critic(real, pick)
        fake_image, fake_video = self._critic(fake, pick)
        image_loss = losses.discriminator_loss(model.loss, real_image, fake_image)
        video_loss = losses.discriminator_loss(model.loss, real_video, fake_video)
        loss = image_loss + weight * video_loss
        logs = {"d_loss": loss.detach(), "d_image": image_loss.detach(), "d_video": video_loss.detach(),
                "d_real": real_video.detach().mean(), "d_fake": fake_video.detach().mean()}
        if model.penalty == "gp":
            penalty = (losses.gradient_penalty(self.discriminator.image, self._frames(real, pick),
                                               self._frames(fake, pick))
                       + weight * losses.gradient_penalty(self.discriminator.video, real, fake))
            loss = loss + model.penalty_weight * penalty
            logs["gp"] = penalty.detach()
        elif model.penalty == "r1":
            penalty = losses.r1_penalty(real_image, real) + weight * losses.r1_penalty(real_video, real)
            loss = loss + 0.5 * model.penalty_weight * penalty
            logs["r1"] = penalty.detach()
        return loss, logs
