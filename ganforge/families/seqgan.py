"""SeqGAN (Yu et al. 2017, "SeqGAN: Sequence Generative Adversarial Nets with Policy Gradient").

The generator is an LSTM policy over tokens, pretrained by maximum likelihood; the CNN discriminator is pretrained
on real vs generated text; then the generator follows the policy gradient (REINFORCE) with the rewards of Monte
Carlo rollouts: the reward of token t is the discriminator's mean score of `rollouts` completions of the prefix up
to t by a rollout policy (a delayed copy of the generator: after each generator step it keeps `rollout_update` of
itself), and the discriminator's score of the whole sequence for its last token (eq. 4). All rollouts of all
prefixes of a batch run as one batch (ganforge.nn.text.rollouts).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from ganforge.config import option
from ganforge.families import register
from ganforge.families.base import Batch, Capabilities
from ganforge.families.kinds.text import TextGAN, TextOptions
from ganforge.nn.text import live_mask, rollouts


@dataclass
class SeqGANOptions(TextOptions):
    rollouts: int = option(16, interval="[1, inf)")  # Monte Carlo completions per prefix (SeqGAN: 16)
    rollout_update: float = option(0.8, interval="[0, 1]")  # share of itself the rollout policy keeps after each
    # generator step (SeqGAN: 0.8; 0: the rollout policy is the generator)
    pg_batch: int = option(0, interval="[0, inf)")  # sequences generated per policy-gradient step (0: train.batch_size);
    # the rollouts cost pg_batch x rollouts x (L - 1) completions and discriminator calls
    baseline: bool = False  # subtract each position's mean reward over the batch (variance reduction; not in the paper)


@register
class SeqGAN(TextGAN):
    """LSTM generator trained by policy gradient with Monte Carlo rollout rewards from a CNN discriminator."""

    name = "seqgan"
    Options = SeqGANOptions
    capabilities = Capabilities(modality="tokens", temperature=True)
    # the default: the paper's recipe (networks, learning rates, rollout policy) on a schedule sized for a CPU
    # (~15 CPU-minutes on 8k captions; docs/results.md "Text generation"): 1,500 MLE steps, 100 D pretraining
    # steps, 5 adversarial steps of 32 sequences x 8 rollouts and 3 D steps each (each step trades diversity for
    # BLEU: at 10 and 30 steps Self-BLEU-4 passed the real text's + 0.1), SeqGAN's filters x 0.25
    preset = {
        "model": {"width": 32, "options": {"embedding_dim": 32, "d_scale": 0.25, "mle_steps": 1500, "d_steps": 100,
                                           "d_repeat": 3, "rollouts": 8, "pg_batch": 32, "rollout_update": 0.8}},
        "train": {"steps": 1500 + 100 + 5, "batch_size": 64, "lr_g": 0.01, "lr_d": 1e-4, "beta1": 0.9,
                  "beta2": 0.999, "ema": 0.0, "sample_every": 250, "checkpoint_every": 250, "log_every": 25},
    }
    # --preset paper: the paper's schedule in ganforge steps for its 10,000 sequences, batch 64: G pretrained 120
    # epochs (18,750 steps) at lr 0.01; D pretrained 50 x 3 epochs of 10k real + 10k generated (23,438 steps of
    # 64 + 64); then 200 adversarial steps, each one G step (lr 0.01) and 5 x 3 D epochs (2,344 D steps); emb/hidden
    # 32, Adam (hours on a CPU)
    presets = {"paper": {
        "model": {"width": 32, "options": {"embedding_dim": 32, "mle_steps": 18750, "d_steps": 23438,
                                           "d_repeat": 2344, "rollouts": 16, "rollout_update": 0.8}},
        "train": {"steps": 18750 + 23438 + 200, "batch_size": 64, "lr_g": 0.01, "lr_d": 1e-4, "beta1": 0.9,
                  "beta2": 0.999, "ema": 0.0, "sample_every": 1000, "checkpoint_every": 1000, "log_every": 50},
    }}
    tiny = {"data": {"source": "oracle"},
            "model": {"width": 8, "options": {"oracle_vocabulary": 20, "oracle_length": 6, "oracle_hidden": 4,
                                              "oracle_sequences": 64, "embedding_dim": 8, "d_embedding": 8,
                                              "d_scale": 0.05, "mle_steps": 1, "d_steps": 1, "d_repeat": 1,
                                              "rollouts": 2}}}

    def __init__(self, config, info):
        super().__init__(config, info)
        self.rollout = copy.deepcopy(self.generator).requires_grad_(False)
        # False until the first adversarial step copies the pretrained generator into the rollout policy
        self.register_buffer("rollout_ready", torch.zeros((), dtype=torch.bool))

    def rewards(self, tokens: torch.Tensor) -> torch.Tensor:
        """Q (N, L): for t < L the discriminator's mean probability of "real" over the rollouts of the prefix of
        length t; for the last position, of the sequence itself (dropout off)."""
        was_training = self.discriminator.training
        self.discriminator.eval()
        with torch.no_grad():
            completed = rollouts(self.rollout, tokens, self.options.rollouts)  # (L - 1, n, N, L)
            length, n, size = completed.shape[:3]
            scores = torch.sigmoid(self.discriminator(completed.reshape(-1, tokens.shape[1])))
            partial = scores.reshape(length, n, size).mean(1).T  # (N, L - 1)
            whole = torch.sigmoid(self.discriminator(tokens))
        self.discriminator.train(was_training)
        return torch.cat([partial, whole[:, None]], 1)

    def adversarial_loss(self, batch: Batch):
        """REINFORCE: -mean over generated tokens of log G(y_t | y_<t) * Q_t (eq. 6-8)."""
        if not bool(self.rollout_ready):
            self.rollout.load_state_dict(self.generator.state_dict())
            self.rollout_ready.fill_(True)
        tokens = self.fake(self.options.pg_batch or batch["tokens"].shape[0], batch["tokens"].device)
        reward = self.rewards(tokens)
        mask = live_mask(tokens, self.eos)
        mean_reward = (reward * mask).sum() / mask.sum()
        if self.options.baseline:
            reward = reward - reward.mean(0, keepdim=True)
        logp = self.generator.log_probs(tokens)
        loss = -(logp * reward * mask).sum() / mask.sum()
        return loss, {"g_loss": loss.detach(), "reward": mean_reward.detach()}

    def after_step(self, phase: str) -> None:
        """After each adversarial generator step the rollout policy moves towards the generator."""
        if phase == "G":
            keep = self.options.rollout_update
            with torch.no_grad():
                for mine, theirs in zip(self.rollout.parameters(), self.generator.parameters()):
                    mine.mul_(keep).add_(theirs, alpha=1 - keep)
