"""DF-GAN-style text-to-image networks (Tao et al. 2022) used by the text2image family: a caption encoder, a
generator with affine (FiLM) conditioning after every normalisation, a matching-aware discriminator with an optional
projection term, and the word head's own small trunk."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence

from ganforge.nn.layers import spectral


class TextEncoder(nn.Module):
    """Caption token ids (N, L), 0-padded -> a sentence vector (N, text_dim): a bidirectional GRU's last states,
    or the mean word embedding (bag of words)."""

    def __init__(self, vocabulary: int, embed_dim: int, text_dim: int, kind: str):
        super().__init__()
        self.embed = nn.Embedding(vocabulary, embed_dim, padding_idx=0)
        self.kind = kind
        if kind == "gru":
            self.rnn = nn.GRU(embed_dim, text_dim // 2, batch_first=True, bidirectional=True)
            self.project = nn.Linear(2 * (text_dim // 2), text_dim)
        else:
            self.project = nn.Linear(embed_dim, text_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        mask = tokens != 0
        lengths = mask.sum(1).clamp(min=1)
        words = self.embed(tokens)
        if self.kind == "gru":
            packed = pack_padded_sequence(words, lengths.cpu(), batch_first=True, enforce_sorted=False)
            _, last = self.rnn(packed)
            return self.project(torch.cat([last[0], last[1]], 1))
        return self.project((words * mask.unsqueeze(-1)).sum(1) / lengths.unsqueeze(1))


class Affine(nn.Module):
    """Per-sample channel scale and shift from the condition (FiLM; DF-GAN's affine transformation)."""

    def __init__(self, cond_dim: int, channels: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(cond_dim, channels), nn.ReLU(inplace=True),
                                 nn.Linear(channels, 2 * channels))
        nn.init.zeros_(self.net[2].weight)  # starts as the identity: scale 1, shift 0
        nn.init.zeros_(self.net[2].bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, shift = self.net(cond).unsqueeze(-1).unsqueeze(-1).chunk(2, 1)
        return x * (1 + scale) + shift


def _norm(kind: str, channels: int) -> nn.Module:
    """Normalisation without its own affine parameters: the caption's affine layer sets scale and shift."""
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=False)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    return nn.Identity()


class UpBlock(nn.Module):
    """x2 nearest upsampling; two (norm -> caption affine -> LeakyReLU -> 3x3 conv) stages; 1x1 conv shortcut."""

    def __init__(self, cin: int, cout: int, cond_dim: int, norm: str):
        super().__init__()
        self.norm1, self.affine1 = _norm(norm, cin), Affine(cond_dim, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2, self.affine2 = _norm(norm, cout), Affine(cond_dim, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        h = self.conv1(F.leaky_relu(self.affine1(self.norm1(x), cond), 0.2))
        h = self.conv2(F.leaky_relu(self.affine2(self.norm2(h), cond), 0.2))
        return self.shortcut(x) + h


def _widths(resolution: int, width: int) -> list[int]:
    """Channels at 4x4, 8x8, ..., resolution: width * 4, 4, 2, 1 (widest, capped, at the small sizes)."""
    stages = int(math.log2(resolution)) - 2
    return [width * min(4, 2 ** (stages - i)) for i in range(stages + 1)]


class Generator(nn.Module):
    """(noise, caption tokens) -> image: a linear map of the noise to 4x4 features, then caption-conditioned
    up-blocks; every affine layer sees [noise, sentence vector]."""

    def __init__(self, latent_dim: int, vocabulary: int, embed_dim: int, text_dim: int, encoder: str, channels: int,
                 resolution: int, width: int, norm: str, copied_text: bool = False, caption_start: bool = False):
        super().__init__()
        self.text = TextEncoder(vocabulary, embed_dim, text_dim, encoder)
        self.copied_text = copied_text  # the encoder is D's, copied in after every D step: G's loss leaves it alone
        self.caption_start = caption_start  # the 4x4 start features see the sentence vector too (concatenation)
        chans = _widths(resolution, width)
        cond = latent_dim + text_dim
        self.start = nn.Linear(cond if caption_start else latent_dim, chans[0] * 16)
        self.blocks = nn.ModuleList(UpBlock(a, b, cond, norm) for a, b in zip(chans, chans[1:]))
        self.norm, self.affine = _norm(norm, chans[-1]), Affine(cond, chans[-1])
        self.to_rgb = nn.Conv2d(chans[-1], channels, 3, padding=1)

    def forward(self, noise: torch.Tensor, caption: torch.Tensor, caption_to: torch.Tensor | None = None,
                caption_mix: torch.Tensor | None = None) -> torch.Tensor:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.copied_text):
            sentence = self.text(caption)
            if caption_to is not None:  # caption interpolation: a straight line between two sentence vectors
                mix = caption_mix.view(-1, 1)
                sentence = (1 - mix) * sentence + mix * self.text(caption_to)
        cond = torch.cat([noise, sentence], 1)
        x = self.start(cond if self.caption_start else noise).view(noise.shape[0], -1, 4, 4)
        for block in self.blocks:
            x = block(x, cond)
        return torch.tanh(self.to_rgb(F.leaky_relu(self.affine(self.norm(x), cond), 0.2)))


class DownBlock(nn.Module):
    """3x3 conv, 4x4 stride-2 conv (LeakyReLU after each) plus an average-pooled 1x1 conv shortcut."""

    def __init__(self, cin: int, cout: int, norm: str):
        super().__init__()
        self.body = spectral(nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.LeakyReLU(0.2, True),
                                           nn.Conv2d(cout, cout, 4, 2, 1), nn.LeakyReLU(0.2, True)), norm)
        self.shortcut = spectral(nn.Conv2d(cin, cout, 1), norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.shortcut(x), 2) + self.body(x)


class PoolBlock(nn.Module):
    """3x3 conv, batch (or instance) norm, LeakyReLU, 2x2 max pool: a halving of D's `pooled` body (the word head's
    trunk's kind of layer, which learns shapes many times faster than the strided DownBlock; issue 16: after 300
    steps on real renders alone, shape words right 0.77 with batch norm, 0.72 with instance norm, 0.59 with none)."""

    def __init__(self, cin: int, cout: int, norm: str, per_image: bool = False):
        super().__init__()
        self.conv = spectral(nn.Conv2d(cin, cout, 3, padding=1, bias=False), norm)
        self.norm = nn.InstanceNorm2d(cout, affine=True) if per_image else nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(F.leaky_relu(self.norm(self.conv(x)), 0.2), 2)


class WordNet(nn.Module):
    """Image -> word logits through its own small trunk ((3x3 conv, batch norm, ReLU, 2x2 max pool) per halving
    down to 4x4, flattened, two linear layers): batch norm makes it learn shapes many times faster than D's body
    (issue 16: 0.86 vs 0.59 of shape words right after 300 steps on real renders)."""

    def __init__(self, channels: int, resolution: int, width: int, vocabulary: int):
        super().__init__()
        layers, cin = [], channels
        for cout in _widths(resolution, width)[::-1][:-1]:
            layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            cin = cout
        self.net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(cin * 16, 128), nn.ReLU(inplace=True),
                                 nn.Linear(128, vocabulary))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The 128 features the word logits are read from (after the first linear layer's ReLU)."""
        return self.net[:-1](images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net[-1](self.features(images))


class Discriminator(nn.Module):
    """(image, sentence vector) -> one logit: down-blocks to 4x4 image features, the sentence vector tiled over
    them, a 3x3 conv and a 4x4 conv (DF-GAN's one-way output); with `projection`, plus the inner product of the
    pooled image features with a linear map of the sentence vector (the projection discriminator's term, Miyato &
    Koyama 2018, with the sentence vector in place of a class embedding). It owns its own caption encoder. With
    `body="pooled"` its halvings are batch-normed conv/max-pool layers (each batch it judges is normalised by its
    own statistics, as in DCGAN's discriminator); "pooled_instance": the same with instance norm (each image alone)."""

    def __init__(self, vocabulary: int, embed_dim: int, text_dim: int, encoder: str, channels: int,
                 resolution: int, width: int, norm: str, projection: bool = False, word_head: str = "",
                 body: str = "strided", embed: bool = False, word_projection: bool = False,
                 text_words: bool = False):
        super().__init__()
        self.text = TextEncoder(vocabulary, embed_dim, text_dim, encoder)
        chans = _widths(resolution, width)[::-1]
        self.from_rgb = spectral(nn.Conv2d(channels, chans[0], 3, padding=1), norm)
        # the body's halvings: strided residual blocks (no normalisation), or "pooled": conv, batch norm, max pool
        self.blocks = nn.Sequential(*[DownBlock(a, b, norm) if body == "strided" else
                                      PoolBlock(a, b, norm, body == "pooled_instance")
                                      for a, b in zip(chans, chans[1:])])
        self.joint = spectral(nn.Sequential(nn.Conv2d(chans[-1] + text_dim, chans[-1], 3, padding=1),
                                            nn.LeakyReLU(0.2, True), nn.Conv2d(chans[-1], 1, 4)), norm)
        self.project = spectral(nn.Linear(text_dim, chans[-1], bias=False), norm) if projection else None
        # with `word_head`: logits of each vocabulary word being in the image's caption, from the pooled features
        # ("shared") or from a trunk of its own ("own", WordNet)
        self.words = (nn.Linear(chans[-1], vocabulary) if word_head == "shared" else
                      WordNet(channels, resolution, width, vocabulary) if word_head == "own" else None)
        # with `embed`: a linear map of the pooled features into the sentence space (the contrastive loss's image side)
        # with `word_projection` (and an own-trunk word head): a second projection term on the word head's features,
        # so that the matching score reads the shape-aware trunk too (and the trunk learns from G's images as fakes)
        # with `text_words`: word logits read back from the sentence vector (keeps every word, shape words too, in it)
        self.text_words = nn.Linear(text_dim, vocabulary) if text_words else None
        self.project_words = (spectral(nn.Linear(text_dim, self.words.net[-1].in_features, bias=False), norm)
                              if word_projection and isinstance(self.words, WordNet) else None)
        self.embed_image = spectral(nn.Linear(chans[-1], text_dim), norm) if embed else None

    def encode(self, caption: torch.Tensor) -> torch.Tensor:
        return self.text(caption)

    def score(self, images: torch.Tensor, sentence: torch.Tensor) -> torch.Tensor:
        """The matching score alone: the word head does not run (its own trunk's batch statistics stay those of the
        images whose words are asked for, and its cost is not paid for scores that do not use it)."""
        return self.score_and_words(images, sentence, words=False)[0]

    def score_and_words(self, images: torch.Tensor, sentence: torch.Tensor,
                        words: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The matching score and (with the word head and `words`, else None) the word logits (N, vocabulary)."""
        return self.judge(images, sentence, words)[:2]

    def judge(self, images: torch.Tensor, sentence: torch.Tensor, words: bool = True,
              embed: bool = False) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """The matching score, the word logits (with the word head and `words`, else None) and the image's
        embedding in the sentence space (with `embed` and an `embed_image` layer, else None), from one pass."""
        h = self.blocks(F.leaky_relu(self.from_rgb(images), 0.2))
        tiled = sentence.view(*sentence.shape, 1, 1).expand(-1, -1, *h.shape[-2:])
        out = self.joint(torch.cat([h, tiled], 1)).flatten()
        wanted = self.project is not None or self.words is not None or (embed and self.embed_image is not None)
        pooled = F.leaky_relu(h, 0.2).sum((2, 3)) if wanted else None
        if self.project is not None:
            out = out + (pooled * self.project(sentence)).sum(1)
        logits = features = None
        if self.project_words is not None:
            features = self.words.features(images)
            out = out + (features * self.project_words(sentence)).sum(1)
        if self.words is not None and words:
            logits = (self.words.net[-1](features) if features is not None else
                      self.words(images) if isinstance(self.words, WordNet) else self.words(pooled))
        embedded = self.embed_image(pooled) if embed and self.embed_image is not None else None
        return out, logits, embedded

    def word_features(self, images: torch.Tensor) -> torch.Tensor:
        """The features the word head reads (N, F): its own trunk's hidden units, or D's pooled features."""
        if isinstance(self.words, WordNet):
            return self.words.features(images)
        return F.leaky_relu(self.blocks(F.leaky_relu(self.from_rgb(images), 0.2)), 0.2).sum((2, 3))

    def forward(self, images: torch.Tensor, caption: torch.Tensor) -> torch.Tensor:
        return self.score(images, self.encode(caption))
