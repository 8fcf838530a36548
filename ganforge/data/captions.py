"""Images with captions: a caption folder (`captions.txt` or `captions.jsonl`), the word vocabulary that turns
captions into token ids, and shuffled training batches of (image, one of its captions).

The built-in synthetic source `shapes-captions` lives in ganforge/data/shapes.py."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ganforge.data.batches import ShuffledEpochs
from ganforge.data.image_files import read_image, warn_skipped
from ganforge.data.sources import _fit, auto_resolution
from ganforge.errors import GanforgeError
from ganforge.media import from_uint8

PAD, UNK = "<pad>", "<unk>"
MAX_LENGTH = 32  # longest caption kept, in words; longer ones are cut (with a warning)
EXAMPLES = 256  # training captions kept in the checkpoint, drawn from when sampling without a caption
CAPTION_FILES = ("captions.txt", "captions.jsonl")
WORD = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    """Lower-case words (letters and digits); punctuation and spacing are dropped."""
    return WORD.findall(text.lower())


class Vocabulary:
    """Words <-> token ids: 0 is padding, 1 the unknown word, then the known words."""

    def __init__(self, words: list[str]):
        self.words = [PAD, UNK, *[w for w in words if w not in (PAD, UNK)]]
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def build(cls, captions: list[str]) -> "Vocabulary":
        """Every word of `captions`, most frequent first (ties alphabetically)."""
        counts: dict[str, int] = {}
        for text in captions:
            for word in tokenize(text):
                counts[word] = counts.get(word, 0) + 1
        return cls(sorted(counts, key=lambda w: (-counts[w], w)))

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, texts: list[str], length: int) -> tuple[torch.Tensor, list[str]]:
        """Token ids (N, length), padded with 0 and cut at `length`, and the sorted unknown words (-> <unk>)."""
        ids = torch.zeros(len(texts), length, dtype=torch.long)
        unknown: set[str] = set()
        for row, text in enumerate(texts):
            words = tokenize(text)[:length]
            for col, word in enumerate(words):
                ids[row, col] = self.index.get(word, 1)
                if word not in self.index:
                    unknown.add(word)
        return ids, sorted(unknown)

    def decode(self, ids: torch.Tensor) -> str:
        """A caption (words joined by spaces) from one row of token ids; padding is left out."""
        return " ".join(self.words[i] for i in ids.tolist() if i != 0)


def read_captions(folder: Path) -> dict[str, list[str]]:
    """File name -> its captions, from `captions.jsonl` ({"file": ..., "caption": ... or "captions": [...]} per
    line) or `captions.txt` (`file<TAB>caption` or `file: caption` per line; '#' comments, blank lines skipped).
    A file may appear on several lines; each line adds a caption."""
    table: dict[str, list[str]] = {}
    jsonl, text = folder / "captions.jsonl", folder / "captions.txt"
    if jsonl.exists():
        for number, line in enumerate(jsonl.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            where = f"{jsonl}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise GanforgeError(f"{where}: not a JSON object ({error.msg})") from None
            name = row.get("file", row.get("image")) if isinstance(row, dict) else None
            given = row.get("captions", row.get("caption")) if isinstance(row, dict) else None
            given = [given] if isinstance(given, str) else given
            if not isinstance(name, str) or not isinstance(given, list) or not all(isinstance(c, str) for c in given):
                raise GanforgeError(f'{where}: expected {{"file": NAME, "caption": TEXT}} or "captions": [TEXT, ...]')
            table.setdefault(name, []).extend(given)
    elif text.exists():
        for number, line in enumerate(text.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            name, sep, caption = line.partition("\t") if "\t" in line else line.partition(":")
            if not sep or not name.strip() or not caption.strip():
                raise GanforgeError(f"{text}:{number}: expected 'file<TAB>caption' or 'file: caption', got {line!r}")
            table.setdefault(name.strip(), []).append(caption.strip())
    else:
        raise GanforgeError(f"--data {folder}: a caption folder needs {' or '.join(CAPTION_FILES)}")
    table = {name: [c for c in captions if tokenize(c)] for name, captions in table.items()}
    return {name: captions for name, captions in table.items() if captions}


def is_caption_folder(path: Path) -> bool:
    return path.is_dir() and any((path / name).exists() for name in CAPTION_FILES)


@dataclass
class CaptionSet:
    """Images (uint8, N, C, H, W) and their captions: every caption as token ids (M, L) with its image index."""

    images: torch.Tensor
    texts: list[str]  # M captions
    owner: torch.Tensor  # (M,) image index of each caption, non-decreasing
    vocabulary: Vocabulary
    name: str = ""
    held_out: list[str] = field(default_factory=list)  # colour-shape pairs never shown (synthetic data)
    length: int = 0  # tokens per caption; 0: the longest caption's (at most MAX_LENGTH)
    labels = None
    classes: list[str] = field(default_factory=list)

    def __post_init__(self):
        longest = max(len(tokenize(t)) for t in self.texts)
        if longest > MAX_LENGTH and not self.length:
            print(f"warning: captions of {self.name} longer than {MAX_LENGTH} words are cut", file=sys.stderr)
        self.length = self.length or min(longest, MAX_LENGTH)
        self.tokens, _ = self.vocabulary.encode(self.texts, self.length)
        counts = torch.bincount(self.owner, minlength=len(self.images))
        if int(counts.min()) < 1:
            raise GanforgeError(f"{self.name}: every image needs at least one caption")
        self.first = torch.cumsum(counts, 0) - counts  # captions of image i: first[i] .. first[i] + counts[i]
        self.counts = counts

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def resolution(self) -> int:
        return self.images.shape[-1]

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def facts(self) -> dict:
        """What sampling needs without the data: the vocabulary, caption length, example captions."""
        step = max(1, len(self.texts) // EXAMPLES)
        return {"vocabulary": self.vocabulary.words[2:], "max_length": self.length,
                "captions": self.texts[::step][:EXAMPLES], "held_out": list(self.held_out)}

    def batches(self, batch_size: int, device: torch.device, seed: int, flip: bool = False):
        """Endless shuffled batches {"image", "caption"}: each image with one of its captions, drawn per batch."""
        if flip and {"left", "right"} & set(self.vocabulary.index):
            raise GanforgeError("data.flip: these captions say 'left'/'right', which a mirrored image contradicts; "
                                "train without --flip")
        return CaptionBatches(self, batch_size, device, seed, flip)

    def as_float(self) -> torch.Tensor:
        return from_uint8(self.images)


class CaptionBatches(ShuffledEpochs):
    """Shuffled epochs over the images of a CaptionSet on `device`; each image comes with one of its captions,
    chosen from the batch's own seed (so a resumed run draws the same ones)."""

    def __init__(self, data: CaptionSet, batch_size: int, device: torch.device, seed: int, flip: bool = False):
        if batch_size > len(data):
            raise GanforgeError(f"train.batch_size {batch_size} is larger than the data set ({len(data)} images)")
        self.images, self.tokens = data.images.to(device), data.tokens.to(device)
        self.first, self.counts, self.flip = data.first, data.counts, flip
        super().__init__(len(data), batch_size, seed)

    def next(self) -> dict[str, torch.Tensor]:
        index, seed = self.take()
        pick = torch.rand(len(index), generator=torch.Generator().manual_seed(seed))
        chosen = self.first[index] + (pick * self.counts[index]).long()
        image = from_uint8(self.images[index.to(self.images.device)])
        if self.flip:
            mirror = (torch.rand(len(index), generator=torch.Generator().manual_seed(seed + 1)) < 0.5)
            image = torch.where(mirror.view(-1, 1, 1, 1).to(image.device), image.flip(-1), image)
        return {"image": image, "caption": self.tokens[chosen.to(self.tokens.device)]}


def load_caption_folder(folder: Path, resolution: int | None, channels: int | None,
                        limit: int | None) -> CaptionSet:
    """The images named in the folder's caption file (resized and centre-cropped), with their captions."""
    table = read_captions(folder)
    if not table:
        raise GanforgeError(f"--data {folder}: the caption file lists no captioned image")
    mode = {1: "L", 3: "RGB", None: "RGB"}[channels]
    pictures, texts, owner, skipped, first_error = [], [], [], 0, ""
    for name, captions in table.items():
        if limit is not None and len(pictures) >= limit:
            break
        path = folder / name
        try:
            picture = np.asarray(read_image(path, mode, name=name), dtype=np.uint8)
        except GanforgeError as error:
            skipped += 1
            first_error = first_error or str(error)
            continue
        array = torch.from_numpy(picture.copy())
        pictures.append(array.unsqueeze(0) if array.ndim == 2 else array.permute(2, 0, 1))
        texts += captions
        owner += [len(pictures) - 1] * len(captions)
    if not pictures:
        raise GanforgeError(f"--data {folder}: none of the {len(table)} captioned files could be read "
                            f"(first: {first_error})")
    warn_skipped(folder, skipped, first_error)
    if resolution is None:
        sides = sorted(min(p.shape[-2:]) for p in pictures)
        resolution = auto_resolution(sides[len(sides) // 2], sides[len(sides) // 2])
    images = torch.cat([_fit(p.unsqueeze(0), resolution, channels) for p in pictures])
    return CaptionSet(images, texts, torch.tensor(owner), Vocabulary.build(texts), name=str(folder))


def load_captioned(source: str, resolution: int | None, channels: int | None, limit: int | None,
                   seed: int = 0) -> CaptionSet:
    """`shapes-captions` (synthetic, 32 px unless `resolution`) or a caption folder."""
    if source.lower() == "shapes-captions":
        from ganforge.data.shapes import shapes_captions

        if channels == 1:
            raise GanforgeError("data.channels: shapes-captions is in colour (3 channels)")
        return shapes_captions(limit or 10000, resolution or 32, seed)
    path = Path(source).expanduser()
    if not is_caption_folder(path):
        raise GanforgeError(f"--data {source}: text-to-image needs shapes-captions or a folder with "
                            f"{' or '.join(CAPTION_FILES)} (file name -> caption lines)")
    return load_caption_folder(path, resolution, channels, limit)
