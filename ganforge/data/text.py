"""Text for sequence GANs: a tokeniser (words with punctuation split off, or characters), a vocabulary built from
the training text (size cap, <pad>/<bos>/<eos>/<unk>), text files or folders as fixed-length id sequences, the
seeded oracle data of the SeqGAN synthetic experiment, and resumable shuffled batches.

`TextSet.facts` (vocabulary, separator, length, special ids, the oracle's recipe) goes into the checkpoint, so a
trained model samples text, and NLL-oracle rebuilds its oracle, without the corpus.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ganforge.data.batches import ShuffledEpochs
from ganforge.errors import GanforgeError

SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
PAD, BOS, EOS, UNK = range(len(SPECIALS))
ORACLE = "oracle"
# a word (letters/digits, inner apostrophes as in "don't") or one punctuation mark
WORD = re.compile(r"\w+(?:'\w+)*|[^\w\s]")


@dataclass(frozen=True)
class Tokenizer:
    """Splits text into tokens: `level` word (punctuation marks are tokens of their own) or char; lower-cased
    unless `lowercase` is False."""

    level: str = "word"
    lowercase: bool = True

    @property
    def separator(self) -> str:
        """What joins tokens back into text: a space between words, nothing between characters."""
        return " " if self.level == "word" else ""

    def split(self, text: str) -> list[str]:
        text = text.strip()
        if self.lowercase:
            text = text.lower()
        return WORD.findall(text) if self.level == "word" else list(text)

    def join(self, tokens: list[str]) -> str:
        return self.separator.join(tokens)


class Vocabulary:
    """Tokens <-> ids: the four specials (<pad> 0, <bos> 1, <eos> 2, <unk> 3), then the known tokens."""

    def __init__(self, tokens: list[str]):
        self.tokens = list(SPECIALS) + [t for t in tokens if t not in SPECIALS]
        self.index = {t: i for i, t in enumerate(self.tokens)}

    @classmethod
    def build(cls, sentences: list[list[str]], size: int) -> "Vocabulary":
        """The `size` - 4 most frequent tokens of `sentences` (ties alphabetically) after the specials."""
        counts = Counter(token for sentence in sentences for token in sentence)
        ranked = sorted(counts, key=lambda t: (-counts[t], t))
        return cls(ranked[:max(0, size - len(SPECIALS))])

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, sentences: list[list[str]], length: int) -> tuple[torch.Tensor, int]:
        """Ids (N, length): each sentence's tokens (unknown ones as <unk>), <eos>, then <pad>; a sentence of
        `length` tokens or more is cut to `length` (no <eos>). Also returns how many were cut."""
        ids = torch.full((len(sentences), length), PAD, dtype=torch.long)
        cut = 0
        for row, sentence in enumerate(sentences):
            values = [self.index.get(token, UNK) for token in sentence] + [EOS]
            if len(values) > length:
                values, cut = values[:length], cut + 1
            ids[row, :len(values)] = torch.tensor(values)
        return ids, cut

    def decode(self, ids: torch.Tensor | list[int]) -> list[str]:
        """The tokens of one sequence up to its first <eos>, padding and <bos> left out."""
        out = []
        for i in (ids.tolist() if torch.is_tensor(ids) else ids):
            if i == EOS:
                break
            if i not in (PAD, BOS):
                out.append(self.tokens[i])
        return out


@dataclass
class TextSet:
    """Sequences (N, L) of token ids with their vocabulary; `facts` is what a trained model keeps of it."""

    tokens: torch.Tensor
    vocabulary: list[str]
    separator: str = " "
    name: str = ""
    special: dict = field(default_factory=lambda: {"pad": PAD, "bos": BOS, "eos": EOS, "unk": UNK, "start": BOS})
    oracle: dict | None = None  # the oracle's recipe (seed, vocabulary, length, hidden) for --data oracle
    cut: int = 0  # sentences longer than the sequence length, cut
    classes: list = field(default_factory=list)
    labels = None  # unconditional
    resolution = None  # not an image: the trainer leaves data.resolution unset
    channels = 1

    def __len__(self) -> int:
        return self.tokens.shape[0]

    @property
    def length(self) -> int:
        return self.tokens.shape[1]

    @property
    def facts(self) -> dict:
        """What a model trained on this text keeps in its checkpoint, so sampling needs no corpus."""
        return {"vocabulary": self.vocabulary, "separator": self.separator, "length": self.length,
                **self.special, **({"oracle": self.oracle} if self.oracle else {})}

    def batches(self, batch_size: int, device: torch.device, seed: int, flip: bool = False) -> "TokenBatches":
        """Endless shuffled batches {"tokens": (B, L)} on `device` (`flip` does not apply to text)."""
        return TokenBatches(self, batch_size, device, seed)


class TokenBatches(ShuffledEpochs):
    """Shuffled epochs over the sequences, resident on `device`, with a resumable position."""

    def __init__(self, data: TextSet, batch_size: int, device: torch.device, seed: int):
        if batch_size > len(data):
            raise GanforgeError(f"train.batch_size {batch_size} is larger than the data set ({len(data)} sequences)")
        self.tokens = data.tokens.to(device)
        super().__init__(len(data), batch_size, seed)

    def next(self) -> dict[str, torch.Tensor]:
        index, _ = self.take()
        return {"tokens": self.tokens[index.to(self.tokens.device)]}


def read_lines(source: str | Path) -> list[str]:
    """The non-blank lines of a UTF-8 text file, or of every `.txt` file in a folder (sorted by name)."""
    path = Path(source).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.txt") if p.is_file())
        if not files:
            raise GanforgeError(f"--data {source}: the folder has no .txt files (one sentence a line)")
    elif path.is_file():
        files = [path]
    else:
        raise GanforgeError(f"--data {source}: no such text file or folder (text families take a .txt file with one "
                            f"sentence a line, a folder of them, or '{ORACLE}')")
    found = []
    for file in files:
        try:
            found += [line for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
        except UnicodeDecodeError as error:
            raise GanforgeError(f"{file}: not UTF-8 text (byte {error.start}); save it as UTF-8") from None
        except OSError as error:
            raise GanforgeError(f"{file}: cannot read it ({error.strerror})") from None
    if not found:
        raise GanforgeError(f"--data {source}: no text in it (expected one sentence a line)")
    return found


def load_text(source: str, tokenizer: Tokenizer, vocabulary_size: int, length: int,
              limit: int | None = None) -> TextSet:
    """A text file or folder as sequences of `length` ids (the last place kept for <eos>), with a vocabulary of
    at most `vocabulary_size` entries built from it; at most `limit` sentences (the first ones)."""
    lines = read_lines(source)[:limit]
    sentences = [tokenizer.split(line) for line in lines]
    vocabulary = Vocabulary.build(sentences, vocabulary_size)
    tokens, cut = vocabulary.encode(sentences, length)
    return TextSet(tokens, vocabulary.tokens, tokenizer.separator, name=str(source), cut=cut)


def load_oracle(seed: int, vocabulary: int, length: int, hidden: int, n: int) -> TextSet:
    """The SeqGAN synthetic data: `n` sequences sampled from the seeded oracle LSTM (ganforge.nn.text.oracle);
    the ids are the tokens ("0" ... "V-1"), start id 0 and no end token, as in the paper."""
    from ganforge.nn.text import oracle, oracle_sequences

    model = oracle(seed, vocabulary, length, hidden)
    tokens = oracle_sequences(model, n, seed + 1)
    recipe = {"seed": seed, "vocabulary": vocabulary, "length": length, "hidden": hidden}
    special = {"pad": None, "bos": None, "eos": None, "unk": None, "start": 0}
    return TextSet(tokens, [str(i) for i in range(vocabulary)], " ", name=ORACLE, special=special, oracle=recipe)
