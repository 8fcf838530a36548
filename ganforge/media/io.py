"""One entry point per direction: `save` picks the writer by the samples' modality and the path's suffix, `read`
turns a written `.npz` or `.wav` back into samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ganforge.errors import GanforgeError
from ganforge.media import audio, images, tokens, video
from ganforge.media.batches import Audio, Images, Samples, Tokens, Video, from_uint8
from ganforge.media.files import is_folder

FOLDER = ""  # a path without a suffix is a folder of one file per sample

# modality -> suffix -> (writer, what it writes)
FORMATS = {
    "image": {".png": (images.write_grid, "a grid"), ".jpg": (images.write_grid, "a grid"),
              ".jpeg": (images.write_grid, "a grid"), FOLDER: (images.write_folder, "a folder of PNGs"),
              ".npz": (images.write_npz, "uint8 arrays")},
    "video": {".gif": (video.write_gif, "a grid of clips"), ".mp4": (video.write_mp4, "a grid of clips"),
              FOLDER: (video.write_folder, "a folder of GIFs"), ".npz": (video.write_npz, "uint8 arrays")},
    "audio": {".wav": (audio.write_joined, "the clips with silence between"), ".png": (audio.write_spectrograms,
              "spectrograms"), FOLDER: (audio.write_folder, "a folder of WAVs"),
              ".npz": (audio.write_npz, "float32 arrays")},
    "tokens": {".txt": (tokens.write_text, "one sequence a line"), ".npz": (tokens.write_npz, "int64 arrays")},
}
# what a training run writes every sample_every steps, and how many samples of the grid go into it
PREVIEW = {"image": ((".png",), 64), "video": ((".gif",), 16), "audio": ((".wav", ".png"), 8),
           "tokens": ((".txt",), 64)}


def formats(modality: str) -> str:
    """The outputs of a modality in words, e.g. '.gif (a grid of clips), .mp4 (...), a folder (...), .npz (...)'."""
    return ", ".join(f"{suffix or 'a folder'} ({what})" for suffix, (_, what) in FORMATS[modality].items())


def check_format(path: str | Path, modality: str) -> str:
    """The format key of `path` (its suffix; "" for a folder) when `modality` can be written there, else a
    one-line error listing what it can be written as."""
    path = Path(path)
    suffix = FOLDER if is_folder(path) else path.suffix.lower()
    if suffix not in FORMATS[modality]:
        raise GanforgeError(f"{path}: {modality} samples are written as {formats(modality)}; not '{suffix}'")
    return suffix


def save(samples: Samples, path: str | Path, zoom: int = 1, nrow: int | None = None, progress: bool = False) -> str:
    """Write `samples` in the format the suffix of `path` names for their modality (no suffix, or an existing
    folder: one file per sample); `zoom` enlarges grids, GIFs and MP4s. Returns what was written, in words."""
    writer, _ = FORMATS[samples.modality][check_format(path, samples.modality)]
    if zoom < 1 or int(zoom) != zoom:
        raise GanforgeError(f"--zoom must be a whole number of at least 1, got {zoom}")
    return writer(samples, Path(path), zoom=int(zoom), nrow=nrow, progress=progress)


def save_preview(samples: Samples, stem: str | Path) -> Samples:
    """The run's periodic samples: the first few, written in each of the modality's preview formats (stem +
    suffix, e.g. step_000100.wav and step_000100.png for audio); returns the samples written."""
    suffixes, count = PREVIEW[samples.modality]
    shown = samples.select(slice(0, count))
    for suffix in suffixes:
        save(shown, f"{stem}{suffix}")
    return shown


def read(path: str | Path) -> Samples:
    """Samples from an `.npz` that `save` wrote (any modality) or a `.wav` file."""
    path = Path(path)
    if path.suffix.lower() == ".wav":
        return audio.read_wav(path)
    if path.suffix.lower() != ".npz":
        raise GanforgeError(f"{path}: can read .npz samples and .wav audio, not '{path.suffix}'")
    try:
        with np.load(path, allow_pickle=False) as loaded:
            arrays = {key: loaded[key] for key in loaded.files}
    except (OSError, ValueError) as error:
        raise GanforgeError(f"{path}: cannot read the samples ({error})") from None
    labels = torch.from_numpy(arrays["labels"]) if "labels" in arrays else None
    if "images" in arrays:
        return Images(from_uint8(arrays["images"]).permute(0, 3, 1, 2), labels=labels)
    if "videos" in arrays:
        return Video(from_uint8(arrays["videos"]).permute(0, 1, 4, 2, 3), fps=float(arrays["fps"]), labels=labels)
    if "audio" in arrays:
        return Audio(torch.from_numpy(arrays["audio"]), sample_rate=int(arrays["sample_rate"]), labels=labels)
    if "tokens" in arrays:
        return Tokens(torch.from_numpy(arrays["tokens"]), vocabulary=arrays["vocabulary"].tolist(),
                      separator=str(arrays["separator"]), labels=labels,
                      end=str(arrays["end"]) if "end" in arrays else None)
    raise GanforgeError(f"{path}: no samples in it (expected an array named images, videos, audio or tokens)")
