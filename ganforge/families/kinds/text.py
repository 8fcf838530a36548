"""The text kind of family: an LSTM generator over a vocabulary, pretrained by maximum likelihood, then trained
against a discriminator. Shared by SeqGAN (policy gradient) and the Gumbel-softmax GAN; a family adds its own
adversarial phases and losses.

The schedule is the family's, through the phases' repeat counts (the trainer reads them every step):
steps [0, mle_steps) train G by maximum likelihood, the next d_steps pretrain D on real vs generated text, and
the rest are adversarial. `mle_steps` >= train.steps gives the MLE baseline: the same generator, no adversary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge.config import RunConfig, option
from ganforge.errors import GanforgeError
from ganforge.families.base import Batch, DataInfo, Family, Phase
from ganforge.nn.text import CNNDiscriminator, LSTMGenerator


@dataclass
class TextOptions:
    """Options every text family has: the data (tokeniser, vocabulary, length, oracle) and the schedule."""

    tokenizer: str = option("word", choices=("word", "char"))  # word: punctuation split off; char: characters
    lowercase: bool = True  # lower-case the text before tokenising
    vocabulary_size: int = option(5000, interval="[5, inf)")  # most frequent tokens kept (with <pad> <bos> <eos>
    # <unk>); the rest become <unk>
    max_length: int = option(32, interval="[2, inf)")  # tokens per sequence including <eos>; longer lines are cut
    oracle_seed: int = 0  # --data oracle: seeds the oracle LSTM (N(0, 1) weights) and its training sequences
    oracle_vocabulary: int = option(5000, interval="[2, inf)")  # --data oracle: vocabulary size (SeqGAN: 5000)
    oracle_length: int = option(20, interval="[2, inf)")  # --data oracle: sequence length (SeqGAN: 20)
    oracle_hidden: int = option(32, interval="[1, inf)")  # --data oracle: embedding and hidden size (SeqGAN: 32)
    oracle_sequences: int = option(10000, interval="[1, inf)")  # --data oracle: training sequences (SeqGAN: 10000)
    embedding_dim: int = option(32, interval="[1, inf)")  # generator token embedding (hidden size: model.width)
    d_embedding: int = option(64, interval="[1, inf)")  # discriminator token embedding
    d_scale: float = option(1.0, interval="(0, inf)")  # discriminator filters per width, times SeqGAN's counts
    d_dropout: float = option(0.25, interval="[0, 1)")  # dropout before the discriminator's output
    mle_steps: int = option(1000, interval="[0, inf)")  # maximum-likelihood pretraining steps of G
    mle_lr: float = option(0.01, interval="(0, inf)")  # Adam learning rate of the MLE phase
    d_steps: int = option(500, interval="[0, inf)")  # discriminator pretraining steps (after MLE)
    d_repeat: int = option(1, interval="[1, inf)")  # D steps per adversarial step
    pretrained: str = ""  # a run (folder or checkpoint) whose generator starts this one, e.g. an MLE run of the same
    # data and sizes (then set mle_steps=0): several GANs from one pretraining


class TextGAN(Family):
    """A generator of token sequences (an LSTM language model) and a CNN discriminator, with MLE pretraining."""

    Options: ClassVar[type | None] = TextOptions
    stages: ClassVar[tuple[str, ...]] = ("mle", "d", "adversarial")

    @classmethod
    def load_data(cls, config: RunConfig):
        from ganforge.data.text import ORACLE, Tokenizer, load_oracle, load_text

        o = cls.parse_options(config.model.options)
        if config.data.source == ORACLE:
            data = load_oracle(o.oracle_seed, o.oracle_vocabulary, o.oracle_length, o.oracle_hidden,
                               o.oracle_sequences)
            if config.data.limit:
                data.tokens = data.tokens[:config.data.limit]
            return data
        return load_text(config.data.source, Tokenizer(o.tokenizer, o.lowercase), o.vocabulary_size, o.max_length,
                         config.data.limit)

    def __init__(self, config: RunConfig, info: DataInfo):
        super().__init__(config, info)
        facts = info.facts
        if "vocabulary" not in facts:
            raise GanforgeError(f"model {self.name} generates text: --data takes a .txt file (one sentence a line), "
                                f"a folder of .txt files, or 'oracle'; got {config.data.source!r}")
        self.vocabulary: list[str] = list(facts["vocabulary"])
        self.length = int(facts["length"])
        self.eos, self.pad = facts.get("eos"), facts.get("pad")
        forbidden = tuple(facts[k] for k in ("pad", "bos") if facts.get(k) is not None)
        o = self.options
        self.generator = LSTMGenerator(len(self.vocabulary), o.embedding_dim, config.model.width, self.length,
                                       int(facts["start"]), forbidden, self.eos, self.pad)
        self.discriminator = CNNDiscriminator(len(self.vocabulary), self.length, o.d_embedding, o.d_scale,
                                              o.d_dropout)
        self.stage = self.stage_at(0)

    def pretrained_generator(self) -> str | None:
        return self.options.pretrained or None

    # --- schedule ------------------------------------------------------------------------------------------
    def stage_at(self, step: int) -> str:
        """mle, d (discriminator pretraining) or adversarial."""
        o = self.options
        if step < o.mle_steps:
            return "mle"
        return "d" if step < o.mle_steps + o.d_steps and "d" in self.stages else "adversarial"

    def on_step(self, step: int) -> None:
        self.stage = self.stage_at(step)

    def phases(self) -> list[Phase]:
        """D (pretraining, then d_repeat per adversarial step), G by maximum likelihood, G adversarially; the
        stage sets which of them run."""
        t, o, stage = self.config.train, self.options, self.stage
        d_repeat = {"mle": 0, "d": 1, "adversarial": o.d_repeat}[stage]
        return [Phase("D", "discriminator", t.lr_d, (t.beta1, t.beta2), repeat=d_repeat),
                Phase("G_mle", "generator", o.mle_lr, (0.9, 0.999), repeat=int(stage == "mle")),
                Phase("G", "generator", t.lr_g, (t.beta1, t.beta2), repeat=int(stage == "adversarial"))]

    # --- losses --------------------------------------------------------------------------------------------
    def loss(self, phase: str, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if phase == "G_mle":
            nll = self.generator.nll(batch["tokens"])
            return nll, {"nll": nll.detach()}
        if phase == "D":
            return self.discriminator_loss(batch)
        return self.adversarial_loss(batch)

    def fake(self, n: int, device: torch.device) -> torch.Tensor:
        """`n` sequences from the live generator, drawn with the global torch RNG (saved with checkpoints)."""
        return self.generator.sample(torch.rand(n, self.length, device=device))

    def discriminator_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Binary cross-entropy of D on the real batch vs as many generated sequences (SeqGAN's D objective)."""
        real = batch["tokens"]
        fake = self.fake(real.shape[0], real.device)
        real_logit, fake_logit = self.discriminator(real), self.discriminator(fake)
        loss = (F.binary_cross_entropy_with_logits(real_logit, torch.ones_like(real_logit))
                + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit)))
        accuracy = ((real_logit > 0).float().mean() + (fake_logit < 0).float().mean()) / 2
        return loss, {"d_loss": loss.detach(), "d_accuracy": accuracy.detach()}

    def adversarial_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    # --- sampling ------------------------------------------------------------------------------------------
    def sample_inputs(self, n: int, rng: torch.Generator, labels: torch.Tensor | None = None, data=None) -> Batch:
        """One uniform per position: sample i's tokens depend on its own uniforms only."""
        return {"uniform": torch.rand(n, self.length, generator=rng)}

    def generate(self, generator: nn.Module, inputs: Batch) -> torch.Tensor:
        """Token ids (N, L); inputs["temperature"] (N,) scales the logits (1: as trained)."""
        return generator.sample(inputs["uniform"], inputs.get("temperature"))

    def decoding_step(self, generator: nn.Module) -> nn.Module:
        return DecodingStep(generator)

    def sample_info(self) -> dict[str, Any]:
        return {"vocabulary": self.vocabulary, "separator": self.info.facts.get("separator", " "),
                "end": self.vocabulary[self.eos] if self.eos is not None else None}



class DecodingStep(nn.Module):
    """One step of the LSTM sampler, what `ganforge export` writes for a text GAN: (token (N,), h, c (1, N, hidden))
    -> (logits (N, V), next h, next c). `loop` says how to sample a sentence with it."""

    names = ("token", "h", "c")
    outputs = ("logits", "h_next", "c_next")
    loop = ("token = start (all rows), h = c = zeros (1, N, hidden); repeat length times: logits, h, c = "
            "step(token, h, c); divide logits by the temperature (1: as trained); token = a draw from "
            "softmax(logits) (forbidden ids are -inf); a row's sentence ends at its first end token")

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, token: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
        logits, (h, c) = self.generator.step(token, (h, c))
        return logits, h, c

    def example(self, n: int, rng: torch.Generator) -> dict[str, torch.Tensor]:
        hidden = self.generator.lstm.hidden_size
        return {"token": torch.randint(0, self.generator.vocabulary, (n,), generator=rng),
                "h": torch.randn(1, n, hidden, generator=rng), "c": torch.randn(1, n, hidden, generator=rng)}

    def describe(self) -> dict[str, Any]:
        g = self.generator
        return {"start": g.start, "length": g.length, "hidden": g.lstm.hidden_size, "decoding": self.loop}
