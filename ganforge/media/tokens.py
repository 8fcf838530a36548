"""Token samples: UTF-8 text, one sequence a line (tokens joined by the separator), `.npz`; and a text reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ganforge.errors import GanforgeError
from ganforge.media.batches import Tokens
from ganforge.media.files import save_npz, writing


def lines(samples: Tokens) -> list[str]:
    """Each sequence as one line of text (up to its end token, when the samples have one)."""
    end = samples.vocabulary.index(samples.end) if samples.end is not None else None
    return [samples.separator.join(samples.vocabulary[i] for i in (row[:row.index(end)] if end in row else row))
            for row in samples.tensor.tolist()]


def write_text(samples: Tokens, path: Path, **_) -> str:
    with writing(path):
        path.write_text("".join(line + "\n" for line in lines(samples)), encoding="utf-8")
    return f"{len(samples)} sequences as text lines"


def read_text(path: str | Path, vocabulary: list[str], separator: str = " ", end: str | None = None) -> Tokens:
    """Text lines written by `write_text` back as token ids (every line the same number of tokens, or, with an
    `end` token, shorter lines ended and padded with it)."""
    index = {token: i for i, token in enumerate(vocabulary)}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise GanforgeError(f"{path}: cannot read the text ({error})") from None
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        pieces = line.split(separator) if separator else list(line)
        unknown = next((p for p in pieces if p not in index), None)
        if unknown is not None:
            raise GanforgeError(f"{path}:{number}: token {unknown!r} is not in the vocabulary")
        rows.append([index[p] for p in pieces])
    if end is not None:
        longest = max((len(row) for row in rows), default=0) + 1
        rows = [row + [index[end]] * (longest - len(row)) for row in rows]
    if len({len(row) for row in rows}) > 1:
        raise GanforgeError(f"{path}: lines have different numbers of tokens")
    tensor = torch.tensor(rows, dtype=torch.long).reshape(len(rows), -1)
    return Tokens(tensor=tensor, vocabulary=vocabulary, separator=separator, end=end)


def write_npz(samples: Tokens, path: Path, **_) -> str:
    arrays = {"tokens": samples.tensor.numpy().astype(np.int64), "vocabulary": np.array(samples.vocabulary, dtype=str),
              "separator": np.array(samples.separator, dtype=str),
              **({"end": np.array(samples.end, dtype=str)} if samples.end is not None else {})}
    save_npz(path, arrays, samples.labels)
    return f"{len(samples)} sequences as int64 (N, L) with their vocabulary"
