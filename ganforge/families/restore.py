"""Restoration of sparsely damaged images (watermarks, text, logos): a mask-aware pix2pix.

The generator predicts two things from the damaged image x: a mask m of the damaged pixels and a residual r; the
output is x + m * r, so pixels it judges undamaged (m = 0) are returned untouched. The mask is supervised by the
pairs themselves (the pixels where A and B differ: what `ganforge make-pairs watermark` changed), the residual by a
pixel loss on the output and on x + m_true * r (the residual learns from the true marks before the mask is right).
MSE is the default pixel loss: its optimum is the conditional mean, which removes what the network is partly sure
of, where L1's median stays at the input. A conditional PatchGAN term (pix2pix, Isola et al. 2017), weighted
lightly, can only act inside the mask, so it adds no texture where nothing was damaged.

m = max(0, tanh(logit / 2)) = max(0, 2 sigmoid(logit) - 1): the mask is exactly 0 wherever the mask head says
"undamaged" with probability above 1/2, and the mask head is trained with binary cross-entropy on sigmoid(logit).

Options beyond that: `repair=unblend` (the head predicts the mark's opacity and colour and the change inverts the
alpha blend; `opacity_weight` supervises the opacity with the true one of freshly drawn marks), and, at inference
only, `window` (overlapping windows of the training crop, averaged) and `ensemble` (the mean change over flipped and
transposed copies): the `photos` preset uses the last two.
"""

from __future__ import annotations

import math
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
from ganforge.nn.perceptual import KINDS as PERCEPTUAL_KINDS
from ganforge.nn.unet import UNetGenerator

PIXEL_LOSSES = {"l1": F.l1_loss, "mse": F.mse_loss}
MASK_LOSSES = ("bce", "dice", "focal")
MASK_BIAS = -3.0  # the mask head starts at sigmoid(-3) = 0.05: the untrained model is the identity
REPAIRS = ("residual", "unblend")
ALPHA_MAX = 0.9  # repair=unblend: largest opacity the head can invert (a 10x gain on the input's error)


@dataclass
class RestoreOptions:
    mask: bool = True  # predict the damaged pixels and change only those; false: output = input + residual everywhere
    mask_weight: float = option(0.1, interval="[0, inf)")  # weight of the mask's loss
    repair_weight: float = option(1.0, interval="[0, inf)")  # weight of the guided pixel loss (input + TRUE mask x
    # residual against the clean image: nonzero only on the marked pixels, so this weighs the repair of the marks
    # against the output's loss and the mask's); 0: the residual learns only through the predicted mask; 3 scored
    # lower in a 2,000-step photo pilot (docs/results.md, issue 21 sixth session)
    mask_loss: str = option("bce", choices=MASK_LOSSES)  # bce; dice: bce + soft Dice per image (sparse marks
    # count as much as the clean background); focal: focal BCE (gamma 2, Lin et al. 2017)
    tolerance: float = option(1.0, interval="[0, 255)")  # 8-bit levels by which A and B must differ for a pixel
    # to count as damaged (the mask's supervision)
    pixel_loss: str = option("mse", choices=("mse", "l1"))
    per_image: bool = False  # pixel losses as each image's error over its damaged input's (every image counts the
    # same, faintly marked ones too) rather than pooled over the batch
    adversarial_weight: float = option(0.0, interval="[0, inf)")  # 0: no discriminator (pixel and mask losses
    # only: measured better on held-out images, see docs/results.md); pix2pix's PatchGAN term otherwise
    perceptual: str = option("none", choices=PERCEPTUAL_KINDS)  # feature loss (ganforge.nn.perceptual)
    perceptual_weight: float = option(0.0, interval="[0, inf)")
    vgg_weights: str = ""  # VGG19 state dict for perceptual=vgg
    unet_depth: int = 0  # stride-2 U-Net stages; 0: from `bottleneck`
    bottleneck: int = option(2, interval="[1, inf)")  # with unet_depth 0: stages down to this side at the
    # training crop (2: log2(resolution) - 1 stages, a 2x2 bottleneck; a 32 px crop sees whole marks)
    context: int = option(0, interval="[0, 6]")  # dilated 3x3 convolutions (dilation 2, 4, ...) in the
    # full-resolution head: a wider view for the mask
    crop: int = option(0, interval="[0, inf)")  # largest training crop when data.resolution is unset (the data's
    # own otherwise); 0: no cap
    marks: str = option("pairs", choices=("pairs", "fresh"))  # pairs: the data's A/B pairs as made; fresh: new
    # `make-pairs watermark` marks on the clean images (B/, or a plain folder) every batch (ganforge.data.marked)
    clean_share: float = option(0.0, interval="[0, 1)")  # marks=fresh: share of training crops left unmarked
    repair: str = option("residual", choices=REPAIRS)  # residual: the head outputs the change (x + m r);
    # unblend: it outputs the mark's opacity a and colour c per pixel and inverts the alpha blend,
    # r = a (x - c) / (1 - a) (a mark drawn over x = (1 - a) y + a c is exactly undone; ALPHA_MAX caps a)
    opacity_weight: float = option(0.0, interval="[0, inf)")  # repair=unblend with marks=fresh: weight of a
    # (soft-target) BCE between the predicted opacity and the marks' true opacity (known when the marks are drawn);
    # 0: the opacity learns only through the pixel losses (measured to stall: a -> 0 starves the colour's gradient)
    mask_seed: float = option(0.0, interval="[0, 1)")  # at inference keep only the mask's connected regions
    # (p(damaged) > 1/2, 8-neighbours) that hold a pixel with p >= mask_seed: unsure blobs are dropped, whole
    # marks kept; 0: off (training never uses it; measured neutral to slightly worse on photos, docs/results.md)
    ensemble: int = option(1, choices=(1, 2, 4, 8))  # at inference average the changes made to this many flipped
    # and transposed copies of the image (the dihedral group: 2 = + mirror, 4 = + flips, 8 = + transposes; a
    # self-ensemble, Timofte et al. 2016); pixels every copy leaves alone still come back bit for bit
    window: int = option(0, interval="[0, inf)")  # at inference run the network on windows of this side every half
    # window and average their changes (e.g. the training crop: what it saw in training, instance statistics
    # included); 0: the whole image at once
    d_layers: int = 2  # strided PatchGAN layers
    upsample: str = option("resize", choices=("transpose", "resize"))
    direction: str = option("AtoB", choices=("AtoB", "BtoA"))  # which domain is the damaged input
    load_size: int = 0  # shorter side images are held at before random crops; 0: their own size (no resampling)
    decay_start: float = option(0.5, interval="[0, 1]")  # fraction of train.steps after which learning rates decay


class RestoreNet(nn.Module):
    """U-Net features, then a full-resolution head that also sees the input: a residual (C channels; or a mark
    colour, with `extra` = 1 an opacity logit too), then a mask logit (1 channel)."""

    def __init__(self, channels: int, depth: int, width: int, norm: str, upsample: str, context: int = 0,
                 extra: int = 0):
        super().__init__()
        self.body = UNetGenerator(channels, width, depth, width, norm, 0.0, upsample, tanh=False)
        layers: list[nn.Module] = [nn.LeakyReLU(0.2), nn.Conv2d(width + channels, width, 3, 1, 1)]
        for i in range(context):
            layers += [nn.LeakyReLU(0.2), nn.Conv2d(width, width, 3, 1, 2 ** (i + 1), dilation=2 ** (i + 1))]
        self.head = nn.Sequential(*layers, nn.LeakyReLU(0.2), nn.Conv2d(width, channels + 1 + extra, 3, 1, 1))
        self.stride = self.body.stride
        last = self.head[-1]
        nn.init.zeros_(last.weight)  # start as the identity: no residual, mask near 0
        nn.init.zeros_(last.bias)
        with torch.no_grad():
            last.bias[-1] = MASK_BIAS

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.body(x), x], 1))


def unblend(x: torch.Tensor, colour: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """The change that undoes a mark of colour tanh(colour) and opacity `alpha` (< 1) blended over y:
    x = (1 - a) y + a c, so y - x = a (x - c) / (1 - a) (several marks over one pixel compose to one such blend)."""
    return alpha / (1 - alpha) * (x - torch.tanh(colour))


def damage_mask(damaged: torch.Tensor, clean: torch.Tensor, tolerance: float) -> torch.Tensor:
    """1 where any channel of `damaged` differs from `clean` (both in [-1, 1]) by more than `tolerance` 8-bit
    levels, else 0; shape (N, 1, H, W)."""
    return ((damaged - clean).abs().amax(1, keepdim=True) > tolerance * 2 / 255).float()


def mask_loss(kind: str, logit: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Loss of a mask logit (N, 1, H, W) against the true mask (0/1): BCE, BCE + soft Dice (per image, averaged), or
    focal BCE (gamma 2)."""
    bce = F.binary_cross_entropy_with_logits(logit, truth, reduction="none")
    if kind == "focal":
        p = torch.sigmoid(logit)
        return (bce * (truth * (1 - p) + (1 - truth) * p).pow(2)).mean()
    if kind == "bce":
        return bce.mean()
    p = torch.sigmoid(logit).flatten(1)
    t = truth.flatten(1)
    dice = 1 - (2 * (p * t).sum(1) + 1) / (p.sum(1) + t.sum(1) + 1)
    return bce.mean() + dice.mean()


def pixel_loss(kind: str, output: torch.Tensor, target: torch.Tensor, source: torch.Tensor | None) -> torch.Tensor:
    """The pixel loss (MSE or L1) of `output`; with `source` each image's own loss over the source's (the share of
    its damage left), averaged over images."""
    criterion = PIXEL_LOSSES[kind]
    if source is None:
        return criterion(output, target)
    own = criterion(output, target, reduction="none").flatten(1).mean(1)
    damage = criterion(source, target, reduction="none").flatten(1).mean(1)
    return (own / damage.clamp_min(1e-6)).mean()


def seeded_regions(logit: torch.Tensor, seed: float) -> torch.Tensor:
    """1 on the connected regions (8-neighbours) of sigmoid(logit) > 1/2 that contain a pixel with sigmoid(logit) >=
    `seed`, else 0 (hysteresis thresholding): grown from the seeds inside the region until nothing changes."""
    region = logit > 0
    kept = (logit >= math.log(seed / (1 - seed))) & region
    for _ in range(max(logit.shape[-2:])):  # enough for any region but a long winding one (then cut short)
        grown = F.max_pool2d(kept.float(), 3, 1, 1).bool() & region
        if torch.equal(grown, kept):
            break
        kept = grown
    return kept.float()


def dihedral(images: torch.Tensor, k: int, inverse: bool = False) -> torch.Tensor:
    """The k-th of the 8 flips/transposes of (..., H, W) images (0: as they are; 1: mirrored; 2: upside down; 3:
    both; 4-7: the same after a transpose), or its inverse."""
    flip = [(), (-1,), (-2,), (-2, -1)][k % 4]
    if k < 4:
        return images.flip(flip) if flip else images
    if inverse:
        images = images.flip(flip) if flip else images
        return images.transpose(-1, -2)
    images = images.transpose(-1, -2)
    return images.flip(flip) if flip else images


def window_starts(length: int, side: int) -> list[int]:
    """Starts of windows of `side` every side // 2 along `length`, the last one ending at the border."""
    if length <= side:
        return [0]
    starts = list(range(0, length - side + 1, max(1, side // 2)))
    return starts if starts[-1] == length - side else starts + [length - side]


def psnr_gain(output: torch.Tensor, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """10 log10(MSE(source) / MSE(output)) against `target`: dB won over the damaged input (batch-pooled)."""
    before = F.mse_loss(source, target).clamp_min(1e-12)
    return 10 * torch.log10(before / F.mse_loss(output, target).clamp_min(1e-12))


@register
class Restore(ImageToImage):
    """Mask-aware restoration: damaged pixels found and repaired, the rest returned untouched."""

    name = "restore"
    data_kind = "paired"
    Options = RestoreOptions
    capabilities = Capabilities(from_noise=False, translate=("AtoB",), masks=True)
    inference_options = ("ensemble", "window", "mask_seed")
    tiny = {"model": {"width": 8, "options": {"d_layers": 1, "unet_depth": 2}}}
    preset = {
        "data": {"flip": True},  # resolution from the data: the largest power of two that fits, up to 256
        "model": {"width": 32, "g_norm": "batch", "d_norm": "batch", "loss": "nonsaturating"},
        "train": {"steps": 4000, "batch_size": 16, "lr_g": 1e-3, "lr_d": 2e-4, "beta1": 0.5, "beta2": 0.999,
                  "ema": 0.0},
    }  # with the options' defaults: a 2x2 bottleneck, no discriminator, mask BCE weight 0.1
    presets = {
        # the first recipe (issue 21's first session): a 4x4 bottleneck and a light PatchGAN term
        "paper": {**preset, "model": {**preset["model"], "options": {"bottleneck": 4, "adversarial_weight": 1e-3}}},
        # photos of 128 px and up: native-scale 64 px crops (4 a batch: the CPU cost of 16 at 32 px), instance norm
        # (statistics of each image, not of a batch of 4), a 4x4 bottleneck, fresh marks every batch on the clean
        # images (B/) with a fifth of the crops left unmarked
        # (window, ensemble: at inference the mean change over 64 px windows every 32 px and the 8 flips/transposes);
        # 10,000 steps: +3.02 / +3.20 / +3.01 dB held-out over training seeds 0-2 (mean +3.08), 19-20 training
        # CPU-minutes on an AMD EPYC (issue 21, session 10); 7,000 steps (sessions 5-9): +2.92 / +3.04 / +2.85 (mean
        # +2.94), 20-26 minutes on slower machines; 6,000: +2.77; 4,000: +2.30. An EMA of G, Adam beta1 0.9, a
        # repair weight, tolerance 8 and dihedral training crops were measured worse (docs/results.md)
        "photos": {**preset, "model": {**preset["model"], "g_norm": "instance",
                                       "options": {"crop": 64, "bottleneck": 4, "marks": "fresh",
                                                   "clean_share": 0.2, "window": 64, "ensemble": 8}},
                   "train": {**preset["train"], "batch_size": 4, "steps": 10000}},
    }

    @classmethod
    def load_data(cls, config):
        from ganforge.data.paired import crop_resolution
        from ganforge.data.paired_stream import open_paired

        d = config.data
        options = cls.parse_options(config.model.options)
        if options.marks == "fresh":  # fresh marks on the clean images every batch
            from ganforge.data.marked import load_marked

            if options.direction != "AtoB":
                raise GanforgeError("model.options.marks=fresh marks the clean images (B) and learns A to B: "
                                    f"direction must be AtoB, got {options.direction}")
            data = load_marked(d.source, d.resolution, d.channels, d.limit, options.clean_share, options.crop)
        else:
            data = open_paired(d, options.load_size or None, native=True)
            if d.resolution is None and options.crop:  # the data's own crop, capped: native-scale patches
                data.resolution = min(data.resolution, crop_resolution([options.crop]))
        if options.opacity_weight > 0 and (options.marks != "fresh" or options.repair != "unblend"):
            raise GanforgeError("model.options.opacity_weight needs repair=unblend and marks=fresh (the marks' "
                                f"opacity is known only when they are drawn), got repair={options.repair}, "
                                f"marks={options.marks}")
        if options.perceptual_weight > 0:  # training needs it: fail now, not after the first checkpoint
            from ganforge.nn.perceptual import check_available

            check_available(options.perceptual, data.channels, options.vgg_weights or None)
        return data

    def __init__(self, config, info):
        super().__init__(config, info)
        o = self.options
        self.capabilities = Capabilities(from_noise=False, translate=(o.direction,), masks=o.mask)
        most = int(math.log2(info.resolution))
        depth = o.unet_depth or max(1, most - int(math.log2(o.bottleneck)))
        if not 1 <= depth <= most:
            raise GanforgeError(f"model.options.unet_depth must be 1 to {most} at {info.resolution} px, "
                                f"got {o.unet_depth}")
        if o.d_layers < 1 or min_input_size(o.d_layers) > info.resolution:
            raise GanforgeError(f"model.options.d_layers {o.d_layers} needs crops of at least "
                                f"{min_input_size(max(o.d_layers, 1))} px, data.resolution is {info.resolution}")
        m = config.model
        self.discriminator = PatchDiscriminator(2 * info.channels, m.width, o.d_layers, m.d_norm)
        init_dcgan_weights(self.discriminator)
        self.generator = RestoreNet(info.channels, depth, m.width, m.g_norm, o.upsample, o.context,
                                    extra=int(o.repair == "unblend"))
        self.stride = self.generator.stride
        self.__dict__["_perceptual"] = None  # built on first use; kept out of sub-modules and checkpoints
        self._fake: torch.Tensor | None = None

    def phases(self) -> list[Phase]:
        t = self.config.train
        g = Phase("G", "generator", t.lr_g, (t.beta1, t.beta2))
        if self.options.adversarial_weight <= 0:
            return [g]
        return [g, Phase("D", "discriminator", t.lr_d, (t.beta1, t.beta2))]

    def _run(self, generator: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(residual, mask logit, mask) of damaged images; without the mask option the mask is all ones."""
        return self._heads(generator, images)[:3]

    def _heads(self, generator: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(residual, mask logit, mask, opacity logit): the opacity, ALPHA_MAX sigmoid(opacity logit), is there only
        with repair=unblend (None otherwise)."""
        raw = generator(images)
        c = images.shape[1]
        residual, logit, alpha = raw[:, :c], raw[:, -1:], None
        if self.options.repair == "unblend":
            alpha = raw[:, c:c + 1]
            residual = unblend(images, residual, ALPHA_MAX * torch.sigmoid(alpha))
        mask = F.relu(torch.tanh(logit / 2)) if self.options.mask else torch.ones_like(logit)
        return residual, logit, mask, alpha

    def restore(self, generator: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(restored images, mask in [0, 1]) for damaged images in [-1, 1] of any size; with the ensemble and window
        options the mean change (and mask) over flipped copies and overlapping windows."""
        o = self.options
        if o.ensemble == 1 and not o.window:
            return self._restore(generator, images)
        change, masks = torch.zeros_like(images), torch.zeros_like(images[:, :1])
        for k in range(o.ensemble):
            copy = dihedral(images, k)
            out, mask = self._windows(generator, copy)
            change += dihedral(out - copy, k, inverse=True)  # exactly 0 where the copy's mask is 0
            masks += dihedral(mask, k, inverse=True)
        return images + change / o.ensemble, masks / o.ensemble

    def _windows(self, generator: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """restore() on windows of side `window` every half window (the last one flush with the border), averaged."""
        side = self.options.window
        h, w = images.shape[-2:]
        if not side or (h <= side and w <= side):
            return self._restore(generator, images)
        change, masks = torch.zeros_like(images), torch.zeros_like(images[:, :1])
        count = torch.zeros_like(images[:1, :1])
        for top in window_starts(h, side):
            for left in window_starts(w, side):
                part = images[..., top:top + side, left:left + side]
                out, mask = self._restore(generator, part)
                change[..., top:top + side, left:left + side] += out - part
                masks[..., top:top + side, left:left + side] += mask
                count[..., top:top + side, left:left + side] += 1
        return images + change / count, masks / count

    def _restore(self, generator: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One pass of the network: (restored images, mask)."""
        residual, logit, mask = self._run(generator, images)
        if self.options.mask and self.options.mask_seed > 0:
            mask = mask * seeded_regions(logit, self.options.mask_seed)
        return (images + mask * residual).clamp(-1, 1), mask

    def translate(self, generator: nn.Module, images: torch.Tensor, direction: str = "AtoB") -> torch.Tensor:
        if direction != self.options.direction:
            raise GanforgeError(f"this restore model was trained {self.options.direction} only; "
                                f"--direction {direction} needs a model trained that way")
        return self.restore(generator, images)[0]

    def translate_masks(self, generator: nn.Module, images: torch.Tensor) -> torch.Tensor:
        """Restored images with their mask as one more channel: (N, C + 1, H, W), for tiled inference."""
        out, mask = self.restore(generator, images)
        return torch.cat([out, mask], 1)

    def generate(self, generator: nn.Module, inputs: Batch) -> torch.Tensor:
        """Restorations of inputs["source"]; with a "target" too: input | output | mask | target side by side."""
        out, mask = self.restore(generator, inputs["source"])
        if "target" not in inputs:
            return out
        shown = (mask * 2 - 1).expand_as(out)
        return torch.cat([inputs["source"], out, shown, inputs["target"]], -1)

    def perceptual(self):
        if self._perceptual is None and self.options.perceptual != "none":
            from ganforge.nn.perceptual import perceptual_loss

            o = self.options
            built = perceptual_loss(o.perceptual, self.info.channels, "relu5_4", o.vgg_weights or None, "mse")
            self.__dict__["_perceptual"] = built.to(next(self.generator.parameters()).device)
        return self._perceptual

    def loss(self, phase: str, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        source, target = self.source_target(batch)
        o = self.options
        kind = self.config.model.loss
        if phase == "G":
            residual, logit, mask, alpha = self._heads(self.generator, source)
            fake = (source + mask * residual).clamp(-1, 1)
            self._fake = fake.detach()
            reference = source if o.per_image else None
            pixel = pixel_loss(o.pixel_loss, fake, target, reference)
            total, logs = pixel, {o.pixel_loss: pixel.detach(), "gain_db": psnr_gain(fake.detach(), source, target)}
            if o.mask:
                truth = damage_mask(source, target, o.tolerance)
                guided = pixel_loss(o.pixel_loss, (source + truth * residual).clamp(-1, 1), target, reference)
                bce = mask_loss(o.mask_loss, logit, truth)
                total = total + o.repair_weight * guided + o.mask_weight * bce
                hit = ((mask > 0).float() * truth).sum()
                union = ((mask > 0).float() + truth).clamp(max=1).sum()
                logs |= {"guided": guided.detach(), "mask_loss": bce.detach(),
                         "mask_iou": (hit / union.clamp_min(1)).detach()}
            if o.opacity_weight > 0:
                if "opacity" not in batch:
                    raise GanforgeError("model.options.opacity_weight needs batches that carry the marks' opacity "
                                        "(marks=fresh)")
                # BCE on the logit against opacity / ALPHA_MAX (soft targets): its gradient does not vanish when the
                # sigmoid saturates (an MSE on the opacity was measured to stall at a = 0 everywhere)
                truth = (batch["opacity"].to(alpha) / ALPHA_MAX).clamp(max=1)
                opacity = F.binary_cross_entropy_with_logits(alpha, truth)
                total = total + o.opacity_weight * opacity
                logs["opacity"] = opacity.detach()
            if o.adversarial_weight > 0:
                adversarial = adversarial_losses(kind, None, self.discriminator(torch.cat([source, fake], 1)), "G")
                total = total + o.adversarial_weight * adversarial
                logs["g_adv"] = adversarial.detach()
            if o.perceptual_weight > 0 and self.perceptual() is not None:
                value = self.perceptual()(fake, target)
                total = total + o.perceptual_weight * value
                logs["perceptual"] = value.detach()
            return total, logs
        fake = self._fake if self._fake is not None and self._fake.shape == target.shape else None
        if fake is None:
            with torch.no_grad():
                fake = self.restore(self.generator, source)[0]
        self._fake = None
        real_logits = self.discriminator(torch.cat([source, target], 1))
        fake_logits = self.discriminator(torch.cat([source, fake], 1))
        loss = adversarial_losses(kind, real_logits, fake_logits, "D")
        return loss, {"d_loss": loss.detach(), "d_real": real_logits.detach().mean(),
                      "d_fake": fake_logits.detach().mean()}
