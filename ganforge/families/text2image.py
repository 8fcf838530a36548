"""Text to image: a small trainable caption encoder conditions the generator through affine (FiLM) layers after
every normalisation, as in DF-GAN (Tao et al. 2022), and a matching-aware discriminator judges (image, caption)
pairs: real images with wrong captions count as fake (GAN-CLS, Reed et al. 2016), optionally with DF-GAN's
matching-aware gradient penalty (MA-GP) on real images and their captions (`--preset paper`). The default differs
where a small CPU budget showed it must (issue 16): G reads captions with a copy of D's encoder (its own, trained
only by G's loss, collapsed to one vector for all captions), D adds a projection term (Miyato & Koyama 2018), G's
start layer sees the caption too, spectral norm in D replaces MA-GP, and a word head with a small trunk of its own
learns from real images which words their captions have while G's loss asks it to find its caption's words in G's
images (an auxiliary classifier as in AC-GAN, for the caption's bag of words: D's matching score alone gave G
almost no signal about shapes), and D's sentence vector must give its caption's words back (else shape words fade
from the vectors G reads captions with)."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge import losses
from ganforge.config import option
from ganforge.data.captions import Vocabulary, load_captioned
from ganforge.data.diffaugment import diff_augment
from ganforge.errors import GanforgeError
from ganforge.families import register
from ganforge.families.base import Batch, Capabilities
from ganforge.families.kinds.noise import NoiseGAN, NoiseOptions
from ganforge.nn.layers import check_norm
from ganforge.nn.text2image import Discriminator, Generator


def mismatched(captions: torch.Tensor) -> torch.Tensor:
    """For each caption of a batch, the index of another row's caption (the previous row's, GAN-CLS's
    mismatching text), or -1 where that caption is the same text."""
    other = torch.arange(len(captions), device=captions.device).roll(1)
    same = (captions == captions[other]).all(1)
    return torch.where(same, torch.full_like(other, -1), other)


def word_swapped(captions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Hard wrong captions: each caption with one word replaced by the word the previous row's caption has at the
    same place (a place, drawn at random, where both have a word and the words differ), so that the caption
    is wrong about one thing only (a colour, a shape, a relation); and which rows have such a place."""
    other = captions.roll(1, 0)
    differ = (captions != other) & (captions != 0) & (other != 0)
    place = (torch.rand(captions.shape, device=captions.device) * differ).argmax(1)
    rows = torch.arange(len(captions), device=captions.device)
    swapped = captions.clone()
    swapped[rows, place] = other[rows, place]
    return swapped, differ.any(1)


def bag_of_words(captions: torch.Tensor, vocabulary: int) -> torch.Tensor:
    """(N, vocabulary) 0/1 targets: which words each caption (token ids, 0-padded) has; <pad> (0) and <unk> (1)
    are never targets."""
    bag = torch.zeros(len(captions), vocabulary, device=captions.device).scatter_(1, captions, 1.0)
    bag[:, :2] = 0
    return bag


def word_loss(logits: torch.Tensor, captions: torch.Tensor) -> torch.Tensor:
    """Multi-label binary cross-entropy of word logits (N, vocabulary) against the captions' bags of words, summed
    over the words (without <pad>, <unk>) and averaged over the images."""
    bag = bag_of_words(captions, logits.shape[1])
    return F.binary_cross_entropy_with_logits(logits[:, 2:], bag[:, 2:], reduction="none").sum(1).mean()


def word_feature_gap(fake: torch.Tensor, real: torch.Tensor, fake_captions: torch.Tensor,
                     real_captions: torch.Tensor, vocabulary: int) -> torch.Tensor:
    """Feature matching per word: for every word that captions of both batches have, the squared distance between
    the mean features (N, F) of the images whose captions have it, G's against real ones; summed over the
    features, averaged over those words."""
    fake_bag, real_bag = bag_of_words(fake_captions, vocabulary), bag_of_words(real_captions, vocabulary)
    both = (fake_bag.sum(0) > 0) & (real_bag.sum(0) > 0)
    fake_bag, real_bag = fake_bag[:, both], real_bag[:, both]
    gap = fake_bag.T @ fake / fake_bag.sum(0, keepdim=True).T - real_bag.T @ real / real_bag.sum(0, keepdim=True).T
    return gap.pow(2).sum(1).mean()


def contrastive_loss(images: torch.Tensor, sentences: torch.Tensor, captions: torch.Tensor,
                     temperature: float = 0.1) -> torch.Tensor:
    """XMC-GAN's image-sentence contrastive loss (Zhang et al. 2021): image i's embedding should be closer (cosine
    / temperature) to its own caption's sentence vector than to the batch's other captions, and caption i to its own
    image than to the other images (InfoNCE both ways, averaged). Another row with the same caption text is no
    negative (left out)."""
    logits = F.normalize(images, dim=1) @ F.normalize(sentences, dim=1).T / temperature
    same = (captions.unsqueeze(1) == captions.unsqueeze(0)).all(2)
    same.fill_diagonal_(False)
    logits = logits.masked_fill(same, float("-inf"))
    target = torch.arange(len(captions), device=captions.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def matching_aware_d_loss(kind: str, real_right: torch.Tensor, fake_right: torch.Tensor,
                          real_wrong: torch.Tensor, mismatch: float = 0.5) -> torch.Tensor:
    """GAN-CLS's discriminator loss: real images with their captions are real; generated images with their
    captions and real images with wrong captions are both fake, weighted 1 - `mismatch` and `mismatch`."""
    loss = losses.discriminator_loss(kind, real_right, fake_right)
    if real_wrong.numel() == 0 or mismatch == 0:
        return loss
    return (1 - mismatch) * loss + mismatch * losses.discriminator_loss(kind, real_right, real_wrong)


def matching_aware_penalty(scores: torch.Tensor, images: torch.Tensor, sentence: torch.Tensor,
                           power: float) -> torch.Tensor:
    """DF-GAN's MA-GP (Tao et al. 2022, eq. 4 without k): E[||(grad_x D(x, e), grad_e D(x, e))||^p] at real
    images x with their own captions e."""
    grad_x, grad_e = torch.autograd.grad(scores.sum(), (images, sentence), create_graph=True)
    norm = torch.cat([grad_x.flatten(1), grad_e.flatten(1)], 1).norm(2, dim=1)
    return norm.pow(power).mean()


@dataclass
class Text2ImageOptions(NoiseOptions):
    text_encoder: str = option("gru", choices=("gru", "bag"))  # caption encoder: bidirectional GRU or mean of words
    embed_dim: int = option(64, interval="[2, 1024]")  # word embedding size
    text_dim: int = option(128, interval="[2, 1024]")  # sentence vector size
    mismatch: float = option(0.5, interval="[0, 1]")  # weight of real image + wrong caption in D's fake term
    magp_weight: float = option(2.0, interval="[0, inf)")  # MA-GP weight k (DF-GAN: 2); 0: off
    magp_power: float = option(6.0, interval="(0, inf)")  # MA-GP power p (DF-GAN: 6)
    hard_wrong: float = option(0.0, interval="[0, 1]")  # share of wrong captions that differ by one word (word_swapped)
    g_text: str = option("own", choices=("shared", "own"))  # G's caption encoder: D's (copied) or its own
    projection: bool = option(False)  # D adds the inner product of its pooled features and the sentence vector
    caption_start: bool = option(False)  # G's 4x4 start features see the sentence vector too, not only the noise
    # weight of D's word head (0: no head): it learns on real images which words their captions have (bag-of-words
    # BCE), and G's loss asks it to find its caption's words in G's images (AC-GAN's auxiliary classifier for words)
    word_head: float = option(0.0, interval="[0, inf)")
    # where the word head reads the image: D's pooled features (shared) or a small batch-normed trunk of its own
    word_trunk: str = option("shared", choices=("shared", "own"))
    # weight of feature matching per word in G's loss: for each word of the batch's captions, the mean of the word
    # head's features (its 128 hidden units; D's pooled features with a shared trunk) over G's images whose
    # captions have it should equal that mean over the real images whose captions have it (G draws the real batch's
    # captions); unlike the head's logits, the whole feature vector is hard to reach without the word's look.
    # Needs the head (word_head > 0)
    word_match: float = option(0.0, interval="[0, inf)")
    # weight of a second term of the word head's loss in D's step: G's images have none of the words (their bag is
    # all 0), so the head becomes a per-word real/fake judge (as Omni-GAN's multi-label classifier) and G cannot
    # satisfy it with features it never learnt on real images; 0: the head learns on real images only
    word_fake: float = option(0.0, interval="[0, inf)")
    # D's body: strided residual blocks without normalisation, or "pooled": per halving a 3x3 conv, batch norm,
    # LeakyReLU and 2x2 max pool (the word head's trunk's kind of layer, which learns shapes fast), so that D's
    # realness, matching score and (word_trunk=shared) word head all read shape-aware features; "pooled_instance":
    # the same with instance norm (no batch statistics: each image is judged alone)
    d_body: str = option("strided", choices=("strided", "pooled", "pooled_instance"))
    # weight of XMC-GAN's image-sentence contrastive loss (contrastive_loss) on D's pooled features mapped into
    # the sentence space: D learns each real image against the other captions of the batch, G's loss asks the same
    # of G's images; it rewards every word that tells the batch's captions apart (shape words too). 0: off
    contrastive: float = option(0.0, interval="[0, inf)")
    # D's matching score adds a second projection term: the inner product of the word head's own-trunk features (its
    # 128 hidden units, batch-normed, shape-aware) with a linear map of the sentence vector, so realness given the
    # caption depends on what that trunk sees and the trunk learns from G's images (read in eval mode, with real
    # images' batch statistics, in D's step as in G's) and wrong captions as fakes. Needs word_trunk=own
    word_projection: bool = option(False)
    # weight of a word loss on D's caption encoder: a linear layer must read the caption's bag of words back from
    # its sentence vector (BCE, as the word head's). D's matching loss alone lets shape words fade from the sentence
    # vectors (captions that differ only in the shape end up at cosine ~0.9, in colour ~0.35), and G reads
    # captions with that encoder; 0: off
    text_words: float = option(0.0, interval="[0, inf)")


@register
class Text2Image(NoiseGAN):
    """Caption-conditioned image GAN (DF-GAN-style affine conditioning, GAN-CLS matching-aware D with a projection
    term; DF-GAN's MA-GP under --preset paper)."""

    name = "text2image"
    Options = Text2ImageOptions
    capabilities = Capabilities(captioned=True)
    # Tuned on shapes-captions (issue 16): hinge loss, spectral norm in D instead of MA-GP (a third of a step's
    # CPU time, and with the projection term its p=6 power kept D at chance), Adam(2e-4 G, 4e-4 D, betas 0, 0.9);
    # and the networks (options): G reads captions with D's encoder, D's projection term, caption at G's start,
    # a word head on its own batch-normed trunk (issue 16, session 4); and (session 7) D's sentence vector must
    # give back its caption's words (text_words), so shape words stay in the vectors G reads captions with.
    # --preset word-head: the recipe before session 7 (no text_words)
    preset = {"model": {"loss": "hinge", "d_norm": "spectral", "g_norm": "batch", "latent_dim": 100,
                        # the option defaults are the networks before issue 16's third session (old runs load)
                        "options": {"magp_weight": 0.0, "g_text": "shared", "projection": True,
                                    "caption_start": True, "word_head": 1.0, "word_trunk": "own",
                                    "text_words": 1.0}},
              "train": {"lr_g": 2e-4, "lr_d": 4e-4, "beta1": 0.0, "beta2": 0.9}}
    # --preset paper: DF-GAN's recipe (hinge, Adam 1e-4 G / 4e-4 D, betas 0, 0.9, no norm in D, MA-GP k=2 p=6,
    # z of 100) on the networks as first built here: G trains its own caption encoder, D only concatenates
    presets = {"paper": {"model": {"loss": "hinge", "d_norm": "none", "g_norm": "batch", "latent_dim": 100,
                                   "options": {"magp_weight": 2.0, "g_text": "own", "projection": False,
                                               "caption_start": False}},
                         "train": {"lr_g": 1e-4, "lr_d": 4e-4, "beta1": 0.0, "beta2": 0.9}},
               "word-head": {"model": preset["model"] | {"options": {
                   k: v for k, v in preset["model"]["options"].items() if k != "text_words"}},
                   "train": preset["train"]}}
    tiny = {"data": {"source": "shapes-captions"}, "model": {"options": {"embed_dim": 8, "text_dim": 8}}}

    def __init__(self, config, info):
        super().__init__(config, info)
        model, o = config.model, self.options
        if o.ada:
            raise GanforgeError("model.options.ada: its flips and rotations contradict captions that say left, "
                                "right, above or below; use diffaugment=translation,cutout")
        if model.penalty != "none":
            raise GanforgeError(f"model.penalty: text2image uses its matching-aware penalty (--opt magp_weight=K), "
                                f"not '{model.penalty}'")
        if o.word_match > 0 and o.word_head == 0:
            raise GanforgeError(f"model.options.word_match: matches the word head's features, so it needs the head "
                                f"(word_head > 0), got word_match={o.word_match} with word_head=0")
        if o.word_projection and (o.word_head == 0 or o.word_trunk != "own"):
            raise GanforgeError(f"model.options.word_projection: reads the word head's own trunk, so it needs "
                                f"word_head > 0 and word_trunk=own, got word_head={o.word_head}, "
                                f"word_trunk={o.word_trunk}")
        check_norm(model.g_norm, "model.g_norm")
        if model.d_norm not in ("none", "spectral"):
            raise GanforgeError(f"model.d_norm: text2image's discriminator takes none or spectral, "
                                f"got '{model.d_norm}'")
        if not 8 <= info.resolution <= 256:
            raise GanforgeError(f"data.resolution: text2image supports 8 to 256 pixels, got {info.resolution}")
        if "vocabulary" not in info.facts:
            raise GanforgeError("text2image needs captioned data: --data shapes-captions or a folder with "
                                "captions.txt or captions.jsonl")
        self.vocabulary = Vocabulary(list(info.facts["vocabulary"]))
        self.caption_length = int(info.facts["max_length"])
        size = len(self.vocabulary)
        self.generator = Generator(model.latent_dim, size, o.embed_dim, o.text_dim, o.text_encoder, info.channels,
                                   info.resolution, model.width, model.g_norm, o.g_text == "shared", o.caption_start)
        self.discriminator = Discriminator(size, o.embed_dim, o.text_dim, o.text_encoder, info.channels,
                                           info.resolution, model.width, model.d_norm, o.projection,
                                           o.word_trunk if o.word_head > 0 else "", o.d_body,
                                           o.contrastive > 0, o.word_projection, o.text_words > 0)
        if o.g_text == "shared":
            self.share_text()

    def share_text(self) -> None:
        """G's caption encoder takes D's weights (G reads captions with the encoder that D's matching-aware loss
        trains; G's own loss never moves it)."""
        with torch.no_grad():
            for mine, theirs in zip(self.generator.text.parameters(), self.discriminator.text.parameters()):
                mine.copy_(theirs)

    def after_step(self, phase: str) -> None:
        if phase == "D" and self.options.g_text == "shared":
            self.share_text()

    @classmethod
    def load_data(cls, config):
        d = config.data
        return load_captioned(d.source, d.resolution, d.channels, d.limit)

    def augmented(self, images: torch.Tensor) -> torch.Tensor:
        """`images` as D sees them (DiffAugment when it is on)."""
        return diff_augment(images, self.augment) if self.augment else images

    def judge(self, images: torch.Tensor, sentence: torch.Tensor) -> torch.Tensor:
        """D's logits for images (augmented when DiffAugment is on) paired with sentence vectors."""
        return self.critic(images, {"sentence": sentence})

    def judge_words(self, images: torch.Tensor, sentence: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """D's logits and word logits (same augmentation) for images paired with sentence vectors."""
        return self.critic(images, {"sentence": sentence, "words": True})

    def judge_embedded(self, images: torch.Tensor, sentence: torch.Tensor,
                       words: bool) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """D's logits, word logits (with `words` and the head) and image embeddings, same augmentation, one pass."""
        return self.critic(images, {"sentence": sentence, "words": words, "embed": True})

    def discriminate(self, images: torch.Tensor, batch: Batch) -> torch.Tensor:
        if "embed" in batch:
            return self.discriminator.judge(images, batch["sentence"], batch["words"], embed=True)
        if "words" in batch:
            return self.discriminator.score_and_words(images, batch["sentence"])
        if "sentence" in batch:
            return self.discriminator.score(images, batch["sentence"])
        return self.discriminator(images, batch["caption"])

    def generator_inputs(self, batch: Batch) -> Batch:
        real = batch["image"]
        return {"noise": self.noise(real.shape[0], real.device), "caption": batch["caption"]}

    def loss(self, phase: str, batch: Batch):
        model, o = self.config.model, self.options
        inputs = self.generator_inputs(batch)
        captions = inputs["caption"]
        if phase == "G":
            fake = self.generate(self.generator, inputs)
            sentence = self.discriminator.encode(captions)
            head = self.discriminator.words
            if head is not None:
                head.eval()  # G's images are read with the batch statistics of real images (own trunk)
            if o.contrastive > 0:
                scores, words, embedded = self.judge_embedded(fake, sentence, o.word_head > 0)
            elif o.word_head > 0:
                (scores, words), embedded = self.judge_words(fake, sentence), None
            else:
                scores, words, embedded = self.judge(fake, sentence), None, None
            loss = losses.generator_loss(model.loss, scores)
            total, logs = loss, {"g_loss": loss.detach()}
            if words is not None:
                g_words = word_loss(words, captions)
                total, logs["g_words"] = total + o.word_head * g_words, g_words.detach()
                if o.word_match > 0:
                    with torch.no_grad():
                        real = self.discriminator.word_features(self.augmented(batch["image"]))
                    g_match = word_feature_gap(self.discriminator.word_features(self.augmented(fake)), real,
                                               captions, captions, len(self.vocabulary))
                    total, logs["g_match"] = total + o.word_match * g_match, g_match.detach()
            if embedded is not None:  # G's images should match their own captions over the batch's others
                g_contrast = contrastive_loss(embedded, sentence, captions)
                total, logs["g_contrast"] = total + o.contrastive * g_contrast, g_contrast.detach()
            if head is not None:
                head.train(self.discriminator.training)
            return total, logs
        with torch.no_grad():
            fake = self.generate(self.generator, inputs)
        real = batch["image"].detach().requires_grad_(o.magp_weight > 0)
        sentence = self.discriminator.encode(captions)
        embedded = None
        if o.contrastive > 0:
            real_right, words, embedded = self.judge_embedded(real, sentence, o.word_head > 0)
        elif o.word_head > 0:
            real_right, words = self.judge_words(real, sentence)
        else:
            real_right, words = self.judge(real, sentence), None
        fake_words, head = None, self.discriminator.words
        read_as_in_g = o.word_head > 0 and (o.word_fake > 0 or o.word_projection)
        if read_as_in_g:  # the head reads G's images as in G's step (eval mode)
            head.eval()
        if o.word_head > 0 and o.word_fake > 0:
            fake_right, fake_words = self.judge_words(fake, sentence)
        else:
            fake_right = self.judge(fake, sentence)
        if read_as_in_g:
            head.train(self.discriminator.training)
        wrong = mismatched(captions)
        keep = wrong >= 0
        wrong_sentence = sentence[wrong.clamp(min=0)]
        if o.hard_wrong > 0:  # some rows get a caption wrong about one word instead of another row's caption
            swapped, possible = word_swapped(captions)
            hard = possible & (torch.rand(len(captions), device=captions.device) < o.hard_wrong)
            if hard.any():
                wrong_sentence = torch.where(hard.unsqueeze(1), self.discriminator.encode(swapped), wrong_sentence)
            keep = keep | hard
        real_wrong = self.judge(real[keep], wrong_sentence[keep])
        loss = matching_aware_d_loss(model.loss, real_right, fake_right, real_wrong, o.mismatch)
        logs = {"d_loss": loss.detach(), "d_real": real_right.detach().mean(), "d_fake": fake_right.detach().mean(),
                "d_wrong": real_wrong.detach().mean() if keep.any() else real_right.detach().mean()}
        if o.magp_weight > 0:
            penalty = matching_aware_penalty(real_right, real, sentence, o.magp_power)
            loss = loss + o.magp_weight * penalty
            logs["magp"] = penalty.detach()
        if words is not None:
            d_words = word_loss(words, captions)
            loss = loss + o.word_head * d_words
            logs["d_words"] = d_words.detach()
        if o.text_words > 0:  # the sentence vector must keep every word of its caption
            d_text_words = word_loss(self.discriminator.text_words(sentence), captions)
            loss = loss + o.text_words * d_text_words
            logs["d_text_words"] = d_text_words.detach()
        if embedded is not None:
            d_contrast = contrastive_loss(embedded, sentence, captions)
            loss = loss + o.contrastive * d_contrast
            logs["d_contrast"] = d_contrast.detach()
        if fake_words is not None:
            d_fake_words = word_loss(fake_words, torch.zeros_like(captions))
            loss = loss + o.word_head * o.word_fake * d_fake_words
            logs["d_fake_words"] = d_fake_words.detach()
        return loss, logs

    def encode_captions(self, texts: list[str]) -> torch.Tensor:
        """Token ids (N, L) of `texts`; unknown words are read as <unk> with a warning on stderr, and a caption
        with no known word at all is an error (one line naming it)."""
        ids, unknown = self.vocabulary.encode(texts, self.caption_length)
        for text, row in zip(texts, ids):
            if not (row > 1).any():
                shown = ", ".join(self.vocabulary.words[2:12])
                raise GanforgeError(f"--caption {text!r}: no word of it is in this model's vocabulary "
                                    f"({len(self.vocabulary) - 2} words: {shown}, ...)")
        if unknown:
            print(f"warning: not in this model's vocabulary, read as <unk>: {', '.join(unknown)}", file=sys.stderr)
        return ids

    def caption_inputs(self, inputs: Batch, texts: list[str], towards: str | None = None) -> Batch:
        """`inputs` (from sample_inputs) with captions set: sample i gets texts[i % len(texts)]; with `towards`,
        every sample keeps the first noise and the caption moves from texts[0] to `towards` over the samples."""
        n = len(inputs["noise"])
        ids = self.encode_captions(list(texts))
        out = dict(inputs, caption=ids[torch.arange(n) % len(ids)])
        if towards is not None:
            out["noise"] = inputs["noise"][:1].expand(n, -1).clone()
            out["caption"] = ids[:1].expand(n, -1).clone()
            out["caption_to"] = self.encode_captions([towards]).expand(n, -1).clone()
            out["caption_mix"] = torch.linspace(0, 1, n)
        return out

    def sample_inputs(self, n: int, rng: torch.Generator, labels: torch.Tensor | None = None, data=None) -> Batch:
        """Noise and training captions: one caption per grid row (ceil(sqrt(n)) samples), so a grid shows each
        caption with several noises."""
        noise = torch.randn(n, self.config.model.latent_dim, generator=rng)
        examples = list(self.info.facts.get("captions") or [])
        per_row = math.ceil(math.sqrt(n))
        picks = torch.randint(0, len(examples), (per_row,), generator=rng)
        ids, _ = self.vocabulary.encode([examples[i] for i in picks.tolist()], self.caption_length)
        return {"noise": noise, "caption": ids[torch.arange(n) // per_row]}

    def generate(self, generator: nn.Module, inputs: Batch) -> torch.Tensor:
        return generator(inputs["noise"], inputs["caption"], inputs.get("caption_to"), inputs.get("caption_mix"))

    def captions_of(self, inputs: Batch) -> list[str]:
        """The caption text of each sample of `inputs` (unknown words shown as <unk>)."""
        return [self.vocabulary.decode(row) for row in inputs["caption"]]
