"""WaveGAN's networks (Donahue et al. 2019, "Adversarial Audio Synthesis", tables 3 and 4): a 1-D transposed-
convolution generator (kernel 25, stride 4) and a 1-D strided-convolution discriminator with phase shuffle."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge.errors import GanforgeError
from ganforge.nn.resblocks import ProjectionHead
from ganforge.nn.style import MinibatchStd

KERNEL = 25
# clip length -> (length after the dense layer, upsampling strides); 16384 is the paper's, 32768/65536 its
# released code's (an extra stride-2 or stride-4 layer), 8192 starts from 8 instead of 16 samples
LAYOUTS = {8192: (8, (4, 4, 4, 4, 4)), 16384: (16, (4, 4, 4, 4, 4)), 32768: (16, (4, 4, 4, 4, 4, 2)),
           65536: (16, (4, 4, 4, 4, 4, 4))}


def layout(length: int) -> tuple[int, tuple[int, ...]]:
    """The dense layer's output length and the strides that make `length` samples; one line for unknown lengths."""
    if length not in LAYOUTS:
        raise GanforgeError(f"model.options.length: WaveGAN makes clips of {', '.join(map(str, LAYOUTS))} samples, "
                            f"got {length}")
    return LAYOUTS[length]


def channel_widths(width: int, layers: int) -> list[int]:
    """Channels from the dense layer down to the last hidden layer: width * 2^(layers-1), ..., width."""
    return [width * 2 ** (layers - 1 - i) for i in range(layers)]


def same_padding(stride: int) -> tuple[int, int]:
    """(padding, output_padding) making a kernel-25 convolution scale the length by exactly `stride`."""
    padding = (KERNEL - stride + 1) // 2
    return padding, 2 * padding - (KERNEL - stride)


def upsampling(cin: int, cout: int, stride: int, kind: str) -> nn.Module:
    """Transposed convolution ("transpose", the paper's) or nearest-neighbour upsampling then a convolution
    ("nearest", the paper's remedy for checkerboard artefacts)."""
    if kind == "nearest":
        return nn.Sequential(nn.Upsample(scale_factor=stride, mode="nearest"), nn.Conv1d(cin, cout, KERNEL, 1, 12))
    padding, extra = same_padding(stride)
    return nn.ConvTranspose1d(cin, cout, KERNEL, stride, padding, output_padding=extra)


INITS = ("he", "glorot", "torch")


def initialise(layers: list[tuple[nn.Module, float]], kind: str) -> None:
    """Convolution weights for (layer, gain after it): "he" keeps the activations' scale through the layers (He et
    al. 2015: std = gain / sqrt(fan-in), the fan-in of a stride-s transposed convolution being in * kernel / s),
    "glorot" is the released WaveGAN code's (TensorFlow's default, Glorot uniform), "torch" PyTorch's default
    (which shrinks the activations ~2x per layer here); biases start at zero except under "torch"."""
    if kind not in INITS:
        raise GanforgeError(f"model.options.init must be one of {', '.join(INITS)}, got '{kind}'")
    if kind == "torch":
        return
    for layer, gain in layers:
        weight = layer.weight
        if isinstance(layer, nn.ConvTranspose1d):
            fan_in, fan_out = weight.shape[0] * KERNEL / layer.stride[0], weight.shape[1] * KERNEL
        else:
            fan_in, fan_out = weight.shape[1] * weight.shape[2], weight.shape[0] * weight.shape[2]
        with torch.no_grad():
            if kind == "he":
                weight.normal_(0, gain / math.sqrt(fan_in))
            else:
                bound = math.sqrt(6 / (fan_in + fan_out))
                weight.uniform_(-bound, bound)
            if layer.bias is not None:
                layer.bias.zero_()


class PhaseShuffle(nn.Module):
    """Shift each example's activations in time by a random whole number of samples in [-radius, radius], the
    vacated edge filled by reflection (section 3.3 of the paper); the length is kept, radius 0 is the identity."""

    def __init__(self, radius: int):
        super().__init__()
        self.radius = radius

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.radius == 0:
            return x
        n, _, length = x.shape
        if length <= self.radius:
            raise ValueError(f"phase shuffle of radius {self.radius} needs more than {self.radius} samples")
        shift = torch.randint(-self.radius, self.radius + 1, (n, 1, 1), device=x.device)
        index = torch.arange(length, device=x.device).view(1, 1, -1) - shift
        index = index.abs()  # reflect at the start ...
        index = torch.where(index > length - 1, 2 * (length - 1) - index, index)  # ... and at the end
        return x.gather(2, index.expand_as(x))


class ClassBatchNorm1d(nn.Module):
    """Class-conditional batch norm (de Vries et al. 2017; Miyato & Koyama 2018): batch norm without its own affine,
    then a per-class gain 1 + gamma(y) and bias beta(y) read from the generator's class embedding."""

    def __init__(self, channels: int, embed_dim: int):
        super().__init__()
        self.bn = nn.BatchNorm1d(channels, affine=False)
        self.gain = nn.Linear(embed_dim, channels, bias=False)
        self.bias = nn.Linear(embed_dim, channels, bias=False)
        nn.init.zeros_(self.gain.weight)  # starts as a plain batch norm
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.bn(x) * (1 + self.gain(cond)[:, :, None]) + self.bias(cond)[:, :, None]


class WaveGenerator(nn.Module):
    """z (and a class embedding) -> dense -> (ReLU, upsample) x layers -> tanh, optionally a learned post-filter.

    With `class_norm` (conditional only) every normalisation is a class-conditional batch norm fed by the class
    embedding, which is then also concatenated to z."""

    def __init__(self, latent_dim: int, length: int, width: int, n_classes: int = 0, embed_dim: int = 0,
                 upsample: str = "transpose", batch_norm: bool = False, post_filter: int = 0,
                 class_norm: bool = False, init: str = "torch"):
        super().__init__()
        start, strides = layout(length)
        chans = channel_widths(width, len(strides))
        self.start = start
        self.embed = nn.Embedding(n_classes, embed_dim) if n_classes else None
        class_norm = bool(class_norm and n_classes)

        def norm(channels: int) -> nn.Module:
            if class_norm:
                return ClassBatchNorm1d(channels, embed_dim)
            return nn.BatchNorm1d(channels) if batch_norm else nn.Identity()

        self.dense = nn.Linear(latent_dim + (embed_dim if n_classes else 0), start * chans[0])
        self.first_norm = norm(chans[0])
        layers = []
        for i, stride in enumerate(strides):
            last = i == len(strides) - 1
            cout = 1 if last else chans[i + 1]
            layers.append(upsampling(chans[i], cout, stride, upsample))
            if not last:
                layers += [norm(cout), nn.ReLU(True)]
        self.body = nn.Sequential(*layers, nn.Tanh())
        convs = [m for m in self.body.modules() if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d))]
        initialise([(m, 1.0 if m is convs[-1] else math.sqrt(2)) for m in convs], init)
        # the paper's post-processing filter: one learned FIR filter over the output (512 taps in the paper)
        self.post_filter = nn.Conv1d(1, 1, post_filter, padding="same", bias=False) if post_filter else None

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        cond = None
        if self.embed is not None:
            cond = self.embed(labels)
            z = torch.cat([z, cond], 1)
        h = self.dense(z).view(z.shape[0], -1, self.start)
        h = self.first_norm(h, cond) if isinstance(self.first_norm, ClassBatchNorm1d) else self.first_norm(h)
        wave = F.relu(h)
        for layer in self.body:
            wave = layer(wave, cond) if isinstance(layer, ClassBatchNorm1d) else layer(wave)
        return wave if self.post_filter is None else self.post_filter(wave).clamp(-1, 1)


def stft_power(wave: torch.Tensor, n_fft: int, hop: int, window: torch.Tensor) -> torch.Tensor:
    """(N, 1, L) clips -> (N, bins, frames) power |STFT|^2 (centred frames), differentiable."""
    spec = torch.stft(wave.flatten(0, 1).float(), n_fft, hop, window=window, center=True, return_complex=True)
    return spec.real.square() + spec.imag.square()


class SpectrogramClassifier(nn.Module):
    """Class logits of clips read from their log-magnitude STFT (n_fft 256, hop 128: frequency bins as channels)
    by three strided 1-D convolutions over time and a linear layer: a classifier of what the clip sounds like
    (its magnitude spectrum), which a generator cannot satisfy with sample-level detail the ear does not hear."""

    N_FFT, HOP = 256, 128
    # magnitude floor of the log: ~56 dB under a full-scale sine's peak (64), so that quiet parts do not dominate the
    # gradient (d log(m + floor) / dm <= 1 / floor; with 1e-3 G's class gradient was ~100x the adversarial one and G
    # went near-silent)
    FLOOR = 0.1

    def __init__(self, length: int, n_out: int, width: int = 64, init: str = "he", spectral: bool = False):
        super().__init__()
        wrap = nn.utils.parametrizations.spectral_norm if spectral else (lambda m: m)
        self.register_buffer("window", torch.hann_window(self.N_FFT), persistent=False)
        bins, frames = self.N_FFT // 2 + 1, length // self.HOP + 1
        convs = []
        for cin, cout in ((bins, width), (width, width), (width, 2 * width)):
            convs.append(nn.Conv1d(cin, cout, 5, 2, 2))
            frames = (frames - 1) // 2 + 1
        initialise([(conv, math.sqrt(2 / (1 + 0.2 ** 2))) for conv in convs], init)
        layers = []
        for conv in convs:
            layers += [wrap(conv), nn.LeakyReLU(0.2, True)]
        self.body = nn.Sequential(*layers, nn.Flatten(), wrap(nn.Linear(2 * width * frames, n_out)))

    def log_magnitude(self, wave: torch.Tensor) -> torch.Tensor:
        """(N, 1, L) clips -> (N, bins, frames) log-magnitude spectrogram, roughly in [-0.7, 2.5]."""
        magnitude = (stft_power(wave, self.N_FFT, self.HOP, self.window) + 1e-10).sqrt()
        return (torch.log(magnitude + self.FLOOR) + 1.0) / 2.0

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.body(self.log_magnitude(wave))


MINIBATCH_STD = ("off", "batch", "class")


class MinibatchStd1d(nn.Module):
    """Append one channel holding a standard deviation across the batch (ProGAN, Karras et al. 2018, sec. 3), so
    the critic can see a generator that makes the same clip again and again. "batch": ProGAN's, the std over groups
    of `group` clips, per feature, averaged over features and time; "class": the std over the clips of the same
    class in the batch (conditional critics: a conditional generator that ignores its noise makes one clip per
    class, which a batch of mixed classes hides), a class with one clip in the batch getting ~0 (real and generated
    batches hold the same labels, so that bias is the same on both sides)."""

    def __init__(self, mode: str = "batch", group: int = 4):
        super().__init__()  # the mode is checked by WaveDiscriminator (and the option's choices)
        self.mode, self.batch = mode, MinibatchStd(group, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.mode == "batch":
            return self.batch(x)  # ProGAN's, on clips
        if labels is None:
            raise ValueError("minibatch_std='class' needs the labels")
        n, _, length = x.shape
        onehot = F.one_hot(labels, int(labels.max()) + 1).to(x.dtype)  # (N, K)
        counts = onehot.sum(0).clamp(min=1)  # clips per class
        flat = x.flatten(1)
        means = (onehot.t() @ flat) / counts[:, None]  # (K, C*L) class means
        variance = (onehot.t() @ (flat - means[labels]).square()) / counts[:, None]
        std = (variance + 1e-8).sqrt().mean(1)[labels]  # (N,): the std of each clip's class
        return torch.cat([x, std.view(n, 1, 1).expand(n, 1, length)], 1)


class WaveDiscriminator(nn.Module):
    """(conv stride 4, LeakyReLU 0.2, phase shuffle) x layers -> dense logit; with classes, a projection head
    (`projection`, Miyato & Koyama 2018) and/or an auxiliary classifier of the features (`aux`, AC-GAN: Odena et
    al. 2017) whose class logits `forward(..., classes=True)` returns too (with `fake_class`, one more: generated);
    the classifier reads the critic's features (`aux_input="wave"`) or the clip's spectrogram through its own small
    network (`"spectrogram"`: `SpectrogramClassifier`). `minibatch_std` ("batch" | "class") puts a
    `MinibatchStd1d` channel before the last convolution."""

    def __init__(self, length: int, width: int, n_classes: int = 0, shuffle: int = 2, spectral: bool = False,
                 projection: bool = True, aux: bool = False, init: str = "torch", fake_class: bool = False,
                 aux_input: str = "wave", minibatch_std: str = "off"):
        super().__init__()
        _, strides = layout(length)
        chans = channel_widths(width, len(strides))[::-1]
        wrap = nn.utils.parametrizations.spectral_norm if spectral else (lambda m: m)
        if minibatch_std not in MINIBATCH_STD:
            raise GanforgeError(f"model.options.minibatch_std must be one of {', '.join(MINIBATCH_STD)}, "
                                f"got '{minibatch_std}'")
        extra = int(minibatch_std != "off")  # the std channel into the last convolution
        ins = [1] + chans[:-1]
        ins[-1] += extra
        convs = [nn.Conv1d(cin, cout, KERNEL, stride, same_padding(stride)[0])
                 for cin, cout, stride in zip(ins, chans, strides[::-1])]
        initialise([(conv, math.sqrt(2 / (1 + 0.2 ** 2))) for conv in convs], init)  # LeakyReLU 0.2's gain
        layers = []
        for i, conv in enumerate(convs):
            if extra and i == len(convs) - 1:
                layers.append(MinibatchStd1d(minibatch_std))
            layers += [wrap(conv), nn.LeakyReLU(0.2, True)]
            if i < len(convs) - 1:
                layers.append(PhaseShuffle(shuffle))
        self.features = nn.Sequential(*layers, nn.Flatten())
        features = chans[-1] * layout(length)[0]
        self.head = ProjectionHead(features, n_classes if projection else 0, "spectral" if spectral else "none")
        # with fake_class one more output, the "generated" class (index n_classes)
        if aux_input not in ("wave", "spectrogram"):
            raise GanforgeError(f"model.options.aux_input must be wave or spectrogram, got '{aux_input}'")
        self.classify, self.classify_spectrogram = None, aux_input == "spectrogram"
        if aux and n_classes:
            outputs = n_classes + int(fake_class)
            self.classify = (SpectrogramClassifier(length, outputs, init=init if init != "torch" else "he",
                                                   spectral=spectral)
                             if self.classify_spectrogram else wrap(nn.Linear(features, outputs)))

    def encode(self, wave: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The flattened features the heads read (`features`, with the labels for a class-wise minibatch std)."""
        h = wave
        for layer in self.features:
            h = layer(h, labels) if isinstance(layer, MinibatchStd1d) else layer(h)
        return h

    def forward(self, wave: torch.Tensor, labels: torch.Tensor | None = None, classes: bool = False):
        h = self.encode(wave, labels)
        logit = self.head(h, labels)
        if not classes:
            return logit
        if self.classify is None:
            raise ValueError("this discriminator has no auxiliary classifier (aux=False or no classes)")
        return logit, self.classify(wave if self.classify_spectrogram else h)
