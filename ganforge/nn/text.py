"""Networks for token sequences: the LSTM generator (a language model that samples left to right), the SeqGAN
CNN discriminator (several filter widths, highway, dropout), batched Monte Carlo rollouts, and the seeded oracle
LSTM of the SeqGAN synthetic experiment.

Token conventions: sequences are (N, L) ids into a vocabulary; a sequence ends at its first `eos` id (if the
vocabulary has one) and every position after it holds `pad`. Sampling is inverse-CDF sampling driven by given
uniforms, so the same uniforms give the same tokens whatever the batch size.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

# SeqGAN (Yu et al. 2017, section "Synthetic data experiments" and its code): CNN filter widths and counts
SEQGAN_WIDTHS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20)
SEQGAN_FILTERS = (100, 200, 200, 200, 200, 100, 100, 100, 100, 100, 160, 160)


def finish(tokens: torch.Tensor, eos: int | None, pad: int | None) -> torch.Tensor:
    """`tokens` with every position after a sequence's first `eos` set to `pad` (unchanged without an eos)."""
    if eos is None:
        return tokens
    ended = (tokens == eos).long().cumsum(1)
    after = (ended - (tokens == eos).long()) > 0  # strictly after the first eos
    return tokens.masked_fill(after, pad)


def live_mask(tokens: torch.Tensor, eos: int | None) -> torch.Tensor:
    """Float (N, L): 1 at the positions a sequence generates (up to and including its first eos), 0 after."""
    if eos is None:
        return torch.ones_like(tokens, dtype=torch.float)
    ended = (tokens == eos).long().cumsum(1) - (tokens == eos).long()
    return (ended == 0).float()


class LSTMGenerator(nn.Module):
    """An LSTM language model: embedding, one LSTM layer, a linear layer to the vocabulary's logits.

    The first input is the `start` id; `forbidden` ids (padding, <bos>) are never generated."""

    def __init__(self, vocabulary: int, embedding_dim: int, hidden_dim: int, length: int, start: int,
                 forbidden: tuple[int, ...] = (), eos: int | None = None, pad: int | None = None):
        super().__init__()
        self.vocabulary, self.length, self.start, self.eos, self.pad = vocabulary, length, start, eos, pad
        self.embedding = nn.Embedding(vocabulary, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden_dim, batch_first=True)
        self.output = nn.Linear(hidden_dim, vocabulary)
        blocked = torch.zeros(vocabulary, dtype=torch.bool)
        blocked[list(forbidden)] = True
        self.register_buffer("forbidden", blocked, persistent=False)

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.output(hidden).masked_fill(self.forbidden, float("-inf"))

    def inputs(self, tokens: torch.Tensor) -> torch.Tensor:
        """The input ids under teacher forcing: the start id, then the tokens shifted right by one."""
        start = torch.full_like(tokens[:, :1], self.start)
        return torch.cat([start, tokens[:, :-1]], 1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits (N, L, V) of each position given the tokens before it (teacher forcing)."""
        hidden, _ = self.lstm(self.embedding(self.inputs(tokens)))
        return self._logits(hidden)

    def log_probs(self, tokens: torch.Tensor) -> torch.Tensor:
        """log G(y_t | y_<t) (N, L) of each token; 0 after a sequence's end (padding is not generated)."""
        targets = tokens.masked_fill(live_mask(tokens, self.eos) == 0, -100)
        return -F.cross_entropy(self(tokens).transpose(1, 2), targets, reduction="none", ignore_index=-100)

    def nll(self, tokens: torch.Tensor, reduce: bool = True) -> torch.Tensor:
        """Negative log-likelihood per generated token (up to each sequence's end): the mean, or (N,) per sequence."""
        logp = self.log_probs(tokens)
        mask = live_mask(tokens, self.eos)
        if reduce:
            return -(logp * mask).sum() / mask.sum()
        return -(logp * mask).sum(1) / mask.sum(1)

    def step(self, token: torch.Tensor, state):
        """One step: logits for the next token after input `token` (N,), and the new LSTM state."""
        hidden, state = self.lstm(self.embedding(token)[:, None], state)
        return self._logits(hidden[:, 0]), state

    @torch.no_grad()
    def sample(self, uniform: torch.Tensor, temperature: torch.Tensor | None = None) -> torch.Tensor:
        """Token ids (N, L) drawn left to right with uniforms (N, L) in [0, 1), at `temperature` (N,) (1: as
        trained); positions after each sequence's eos hold padding."""
        n = uniform.shape[0]
        token = torch.full((n,), self.start, dtype=torch.long, device=uniform.device)
        state, out = None, []
        for position in range(self.length):
            logits, state = self.step(token, state)
            if temperature is not None:
                logits = logits / temperature[:, None]
            token = draw(logits, uniform[:, position])
            out.append(token)
        return finish(torch.stack(out, 1), self.eos, self.pad)


def draw(logits: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """One id per row of `logits` (N, V), drawn from softmax(logits) by inverting its CDF at `uniform` (N,)."""
    cdf = logits.float().softmax(-1).cumsum(-1)
    target = (uniform * cdf[:, -1]).unsqueeze(1)  # scaled by the total, so rounding can never pass the last id
    return torch.searchsorted(cdf, target, right=True).squeeze(1).clamp_(max=logits.shape[-1] - 1)


@torch.no_grad()
def rollouts(policy: LSTMGenerator, tokens: torch.Tensor, n: int) -> torch.Tensor:
    """Monte Carlo completions (L - 1, n, N, L) of every prefix of `tokens` (N, L) by `policy`: entry [t - 1, k]
    keeps the first t tokens and samples the rest. All prefixes and rollouts run as one batch, one LSTM step per
    position (SeqGAN, Yu et al. 2017, eq. 4), drawing from the global torch RNG."""
    size, length = tokens.shape
    rows = tokens.repeat((length - 1) * n, 1)  # block k of `size` rows keeps the first k // n + 1 tokens
    token = torch.full((rows.shape[0],), policy.start, dtype=torch.long, device=tokens.device)
    state = None
    for position in range(length):
        hidden, state = policy.lstm(policy.embedding(token)[:, None], state)
        active = position * n * size  # rows whose prefix is at most `position` long sample this position
        if active:
            logits = policy._logits(hidden[:active, 0])
            uniform = torch.rand(active, device=tokens.device)
            rows[:active, position] = draw(logits, uniform)
        token = rows[:, position]
    return finish(rows, policy.eos, policy.pad).reshape(length - 1, n, size, length)


class Highway(nn.Module):
    """y = t * relu(W x) + (1 - t) * x with a sigmoid gate t (Srivastava et al. 2015)."""

    def __init__(self, size: int):
        super().__init__()
        self.transform, self.gate = nn.Linear(size, size), nn.Linear(size, size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.gate(x))
        return gate * F.relu(self.transform(x)) + (1 - gate) * x


class CNNDiscriminator(nn.Module):
    """SeqGAN's text classifier: embedding, convolutions of several widths with max-over-time pooling, highway,
    dropout, one logit (real vs generated). Takes ids (N, L) or one-hot-like distributions (N, L, V) (a relaxed
    sample: its embedding is the probability-weighted sum of the token embeddings)."""

    def __init__(self, vocabulary: int, length: int, embedding_dim: int = 64, scale: float = 1.0,
                 dropout: float = 0.25):
        super().__init__()
        self.embedding = nn.Embedding(vocabulary, embedding_dim)
        pairs = [(w, max(1, round(f * scale))) for w, f in zip(SEQGAN_WIDTHS, SEQGAN_FILTERS) if w <= length]
        self.convs = nn.ModuleList(nn.Conv1d(embedding_dim, count, width) for width, count in pairs)
        features = sum(count for _, count in pairs)
        self.highway = Highway(features)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(features, 1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """One logit per sequence (N,)."""
        if tokens.is_floating_point():
            x = tokens @ self.embedding.weight
        else:
            x = self.embedding(tokens)
        x = x.transpose(1, 2)
        pooled = torch.cat([F.relu(conv(x)).amax(-1) for conv in self.convs], 1)
        return self.head(self.dropout(self.highway(pooled))).squeeze(1)


def oracle(seed: int, vocabulary: int = 5000, length: int = 20, hidden: int = 32) -> LSTMGenerator:
    """The SeqGAN oracle: an LSTM (embedding = hidden = `hidden`) with every parameter drawn from N(0, 1) by a
    torch generator seeded with `seed`, start id 0, no end token. The same arguments rebuild the same oracle."""
    model = LSTMGenerator(vocabulary, hidden, hidden, length, start=0)
    rng = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, parameter in sorted(model.named_parameters()):
            parameter.copy_(torch.randn(parameter.shape, generator=rng))
    return model.eval().requires_grad_(False)


@torch.no_grad()
def oracle_sequences(model: LSTMGenerator, n: int, seed: int, batch: int = 1000) -> torch.Tensor:
    """`n` sequences (n, L) sampled from the oracle with uniforms drawn from a generator seeded with `seed`."""
    rng = torch.Generator().manual_seed(seed)
    uniform = torch.rand(n, model.length, generator=rng)
    return torch.cat([model.sample(uniform[i:i + batch]) for i in range(0, n, batch)])
