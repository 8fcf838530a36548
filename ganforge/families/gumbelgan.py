"""A text GAN without REINFORCE: the discriminator sees Gumbel-softmax relaxed samples, so its gradient reaches the
generator directly (Kusner & Hernández-Lobato 2016, "GANs for sequences of discrete elements with the
Gumbel-softmax distribution"), trained with RelGAN's recipe (Nie et al. 2019): maximum-likelihood pretraining, the
relativistic standard loss, and an inverse temperature beta annealed exponentially from 1 to `beta_max` over the
adversarial steps (beta_n = beta_max ** (n / N)).

The generator is the LSTM of the text kind, not RelGAN's relational memory; the discriminator is the SeqGAN CNN
applied to relaxed one-hot vectors (RelGAN's multiple embedded representations are not used).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ganforge.config import option
from ganforge.families import register
from ganforge.families.base import Batch, Capabilities
from ganforge.families.kinds.text import TextGAN, TextOptions
from ganforge.nn.text import LSTMGenerator


@dataclass
class GumbelOptions(TextOptions):
    beta_max: float = option(100.0, interval="[1, inf)")  # final inverse temperature of the relaxation (RelGAN:
    # 100 or 1000); larger: closer to one-hot samples, noisier gradients
    anneal_steps: int = option(3000, interval="[1, inf)")  # adversarial steps over which beta rises from 1 to beta_max
    # (exponentially); it stays at beta_max after them


def relaxed_sample(generator: LSTMGenerator, n: int, beta: float, device: torch.device) -> torch.Tensor:
    """(n, L, V) Gumbel-softmax samples softmax(beta (o_t + g_t)) of the free-running generator, fed back the
    hard token argmax(o_t + g_t); positions after a sequence's eos are one-hot padding (no gradient)."""
    token = torch.full((n,), generator.start, dtype=torch.long, device=device)
    state, soft, hard = None, [], []
    for _ in range(generator.length):
        logits, state = generator.step(token, state)
        uniform = torch.rand(logits.shape, device=device).clamp_(1e-10, 1 - 1e-7)
        noisy = logits - torch.log(-torch.log(uniform))
        token = noisy.argmax(-1)
        soft.append(torch.softmax(beta * noisy, -1))
        hard.append(token)
    soft_t, hard_t = torch.stack(soft, 1), torch.stack(hard, 1)
    if generator.eos is not None:
        ended = (hard_t == generator.eos).long().cumsum(1) - (hard_t == generator.eos).long()
        padding = F.one_hot(torch.full_like(hard_t, generator.pad), soft_t.shape[-1]).to(soft_t.dtype)
        soft_t = torch.where((ended > 0)[..., None], padding, soft_t)
    return soft_t


@register
class GumbelGAN(TextGAN):
    """LSTM generator trained through Gumbel-softmax relaxed samples with a relativistic loss (RelGAN recipe)."""

    name = "gumbelgan"
    Options = GumbelOptions
    capabilities = Capabilities(modality="tokens", temperature=True)
    stages = ("mle", "adversarial")  # RelGAN does not pretrain the discriminator
    # RelGAN's settings: MLE pretraining at lr 0.01, then Adam lr 1e-4 (beta1 0.9) for both networks, 5 D steps
    # per G step, beta_max 100, batch 64; its pretraining (150 epochs) and adversarial lengths are shortened here
    preset = {
        "model": {"width": 32, "options": {"embedding_dim": 32, "mle_steps": 5000, "d_repeat": 5, "beta_max": 100.0,
                                           "anneal_steps": 3000}},
        "train": {"steps": 8000, "batch_size": 64, "lr_g": 1e-4, "lr_d": 1e-4, "beta1": 0.9, "beta2": 0.999,
                  "ema": 0.0, "sample_every": 1000, "checkpoint_every": 1000, "log_every": 50},
    }
    tiny = {"data": {"source": "oracle"},
            "model": {"width": 8, "options": {"oracle_vocabulary": 20, "oracle_length": 6, "oracle_hidden": 4,
                                              "oracle_sequences": 64, "embedding_dim": 8, "d_embedding": 8,
                                              "d_scale": 0.05, "mle_steps": 1, "d_repeat": 1}}}

    def __init__(self, config, info):
        super().__init__(config, info)
        self.current_beta = self.beta(0)

    def beta(self, step: int) -> float:
        """The inverse temperature at `step`: 1 at the first adversarial step, beta_max after anneal_steps more."""
        progress = (step - self.options.mle_steps) / self.options.anneal_steps
        return self.options.beta_max ** min(1.0, max(0.0, progress))

    def on_step(self, step: int) -> None:
        super().on_step(step)
        self.current_beta = self.beta(step)

    def _relativistic(self, batch: Batch, train_generator: bool):
        real = batch["tokens"]
        with torch.set_grad_enabled(train_generator and torch.is_grad_enabled()):
            fake = relaxed_sample(self.generator, real.shape[0], self.current_beta, real.device)
        real_logit, fake_logit = self.discriminator(real), self.discriminator(fake)
        # RSGAN (Jolicoeur-Martineau 2019): D wants real more real than fake; G wants the opposite
        margin = fake_logit - real_logit if train_generator else real_logit - fake_logit
        return F.binary_cross_entropy_with_logits(margin, torch.ones_like(margin))

    def discriminator_loss(self, batch: Batch):
        loss = self._relativistic(batch, train_generator=False)
        return loss, {"d_loss": loss.detach()}

    def adversarial_loss(self, batch: Batch):
        loss = self._relativistic(batch, train_generator=True)
        return loss, {"g_loss": loss.detach(), "beta": torch.tensor(self.current_beta)}
