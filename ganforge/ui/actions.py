"""What the Play tab and the API do: sample, interpolate, style-mix, reconstruct, translate and upscale with a listed
run. Plain functions of the runs
root and the page's values; every user-caused failure is a GanforgeError that the page shows as a message."""

from __future__ import annotations

import os
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from ganforge.errors import GanforgeError
from ganforge.ui.runs import Run, find_run

MAX_SAMPLES = 64  # per request: a grid shows at most this many
MAX_SEED = 2**63 - 1
MAX_PIXELS = 4096 * 4096  # of an uploaded image
TILE, OVERLAP = 512, 32  # tiled inference, as the translate command does
DEFAULT_UPLOAD_MB = 20.0
MAX_WALKS, MAX_POINTS, MAX_FRAMES, WALK_FPS = 16, 8, 32, 12.0  # a latent walk: clips, key points, frames per leg
MAX_MIX = 7  # style-mixing rows and columns: (7 + 1) x (7 + 1) cells, all that a grid shows
LAYERS = ("coarse", "middle", "fine")


@dataclass(frozen=True)
class Offer:
    """What the page offers for a run, read from its family's declared capabilities."""

    modality: str
    from_noise: bool
    classes: tuple[str, ...]  # empty: unconditional
    truncation: bool
    translate: tuple[str, ...]
    upscale: int  # the factor; 0: does not upscale
    interpolate: bool  # latent walks: images from noise
    style_mixing: bool
    encode: bool  # reconstructs an uploaded image
    captioned: bool = False  # samples from a caption typed in


class Models:
    """Loaded runs, kept while their last checkpoint is unchanged (a few at a time), shared by all requests."""

    def __init__(self, keep: int = 4):
        self.keep = keep
        self._loaded: OrderedDict[str, tuple[float, object]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, run: Run):
        import ganforge

        stamp = run.checkpoint.stat().st_mtime
        with self._lock:
            cached = self._loaded.get(run.name)
            if cached is not None and cached[0] == stamp:
                self._loaded.move_to_end(run.name)
                return cached[1]
            model = ganforge.load(run.path)
            self._loaded[run.name] = (stamp, model)
            while len(self._loaded) > self.keep:
                self._loaded.popitem(last=False)
            return model


def offer(models: Models, root: Path, name: str) -> Offer:
    """The controls that make sense for run `name`."""
    model = models.get(find_run(root, name))
    caps = model.family.capabilities
    return Offer(caps.modality, caps.from_noise, tuple(model.classes) if caps.conditional else (),
                 caps.truncation is not None, tuple(caps.translate),
                 int(model.family.scale) if caps.upscale else 0, caps.from_noise and caps.modality == "image",
                 caps.style_mixing, caps.encode, caps.captioned)


def _loaded(models: Models, root: Path, name: str, capability: str, what: str):
    """Run `name` loaded, when its family declares `capability` (else a message saying it cannot do `what`)."""
    model = models.get(find_run(root, name))
    if not getattr(model.family.capabilities, capability):
        raise GanforgeError(f"run {name} ({model.config.model.name}) cannot {what}")
    return model


def _whole(value, what: str, low: int, high: int) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise GanforgeError(f"{what} must be a whole number, got {value!r}") from None
    if number != int(number) or not low <= number <= high:
        raise GanforgeError(f"{what} must be a whole number in [{low}, {high}], got {value}")
    return int(number)


def sample(models: Models, root: Path, name: str, n=16, seed=0, klass: str | None = None, truncation=None,
           caption: str | None = None):
    """`n` samples (ganforge.media batch) of run `name`: of class `klass` (a class name; None/'' random) at
    truncation psi `truncation` (None or the neutral value: none), of `caption` for text-to-image runs (None/'':
    training captions)."""
    model = models.get(find_run(root, name))
    caps = model.family.capabilities
    if not caps.from_noise:
        raise GanforgeError(f"run {name} ({model.config.model.name}) does not sample from noise: use translate or "
                            "upscale")
    n = _whole(n, "n", 1, MAX_SAMPLES)
    seed = _whole(seed, "seed", 0, MAX_SEED)
    label = None
    if klass not in (None, "", "random"):
        if not caps.conditional:
            raise GanforgeError(f"run {name} is unconditional: it takes no class")
        if str(klass) not in model.classes:
            raise GanforgeError(f"unknown class '{klass}' (classes: {', '.join(model.classes)})")
        label = model.classes.index(str(klass))
    psi = float(truncation) if truncation is not None and caps.truncation is not None else None
    if caption and str(caption).strip():
        if not caps.captioned:
            raise GanforgeError(f"run {name} ({model.config.model.name}) is not text-conditioned: it takes no caption")
        inputs = model.sample_inputs(n, seed, labels=label, truncation=psi)
        return model.generate(model.family.caption_inputs(inputs, [str(caption)]))
    return model.sample(n, seed, labels=label, truncation=psi)


def interpolate(models: Models, root: Path, name: str, n=4, points=3, frames=8, seed=0):
    """`n` looping latent walks (ganforge.media Video) of run `name` through `points` random latents, `frames`
    frames per leg."""
    from ganforge.generation import latent_walk

    model = _loaded(models, root, name, "from_noise", "walk its latent space: it does not sample from noise")
    n, seed = _whole(n, "n", 1, MAX_WALKS), _whole(seed, "seed", 0, MAX_SEED)
    points, frames = _whole(points, "points", 2, MAX_POINTS), _whole(frames, "frames", 1, MAX_FRAMES)
    return latent_walk(model, n, points, frames, seed, WALK_FPS)


def style_mix(models: Models, root: Path, name: str, rows=3, cols=3, layers: str = "coarse", seed=0):
    """The style-mixing grid (ganforge.media Images, (rows + 1) x (cols + 1) cells) of run `name`: `layers` (coarse,
    middle, fine) of each column's styles mixed into each row."""
    from ganforge.generation import style_mix_grid

    model = _loaded(models, root, name, "style_mixing", "mix styles")
    rows, cols = _whole(rows, "rows", 1, MAX_MIX), _whole(cols, "cols", 1, MAX_MIX)
    if layers not in LAYERS:
        raise GanforgeError(f"layers must be one of {', '.join(LAYERS)}, got {layers!r}")
    return style_mix_grid(model, rows, cols, layers, seed=_whole(seed, "seed", 0, MAX_SEED))[0]


def reconstruct(models: Models, root: Path, name: str, upload, limit_mb: float = DEFAULT_UPLOAD_MB):
    """The upload at the model's size and its reconstruction by run `name` (ganforge.media Images of 2)."""
    import torch

    from ganforge import generation, media
    from ganforge.media.images import from_picture

    model = _loaded(models, root, name, "encode", "encode images")
    info = model.family.info
    picture = read_upload(upload, "L" if info.channels == 1 else "RGB", limit_mb)
    real = generation.fit_image(from_picture(picture), info.resolution)
    return media.Images(torch.cat([real, generation.reconstruct(model, real)]))


def write(samples, folder: Path, name: str, nrow: int | None = None) -> Path:
    """`samples` written through ganforge.media as `folder`/`name` (its suffix picks the format); the file shown
    and offered for download."""
    from ganforge import media

    media.save(samples, folder / name, nrow=nrow)
    return folder / name


def show(samples, folder: Path) -> dict[str, Path | str | None]:
    """Files the page shows for `samples`, written through ganforge.media into `folder`: 'picture' (image grid,
    GIF of clips or spectrograms), 'audio' (WAV), 'text' (token lines) and 'download' (.npz of all samples)."""
    from ganforge import media

    folder.mkdir(parents=True, exist_ok=True)
    shown = {"picture": None, "audio": None, "text": None, "download": folder / "samples.npz"}
    picture = {"image": ".png", "video": ".gif", "audio": ".png"}.get(samples.modality)
    if picture:
        shown["picture"] = folder / f"samples{picture}"
        media.save(samples, shown["picture"])
    if samples.modality == "audio":
        shown["audio"] = folder / "samples.wav"
        media.save(samples, shown["audio"])
    if samples.modality == "tokens":
        media.save(samples, folder / "samples.txt")
        shown["text"] = (folder / "samples.txt").read_text(encoding="utf-8")
    media.save(samples, shown["download"])
    return shown


def output_folder() -> Path:
    """A fresh folder for one request's files (gradio copies what it serves into its own cache)."""
    return Path(tempfile.mkdtemp(prefix="ganforge-ui-"))


def read_upload(path, mode: str, limit_mb: float = DEFAULT_UPLOAD_MB):
    """An uploaded file as a PIL image in `mode`, after checking its size and that it is an image."""
    from PIL import Image

    from ganforge.data import read_image

    if not path:
        raise GanforgeError("upload an image first")
    size = os.path.getsize(path)
    if size > limit_mb * 1e6:
        raise GanforgeError(f"the upload is too large: {size / 1e6:.1f} MB (the limit is {limit_mb:g} MB)")
    try:
        with Image.open(path) as opened:
            width, height = opened.size
    except Exception:  # PIL: anything that is not an image it knows
        raise GanforgeError("the upload is not an image (PNG, JPEG, WebP, BMP, TIFF, GIF...)") from None
    if width * height > MAX_PIXELS:
        raise GanforgeError(f"the image is too large: {width}x{height} pixels (at most {MAX_PIXELS} pixels)")
    return read_image(path, mode, name="the upload")


def translate(models: Models, root: Path, name: str, upload, direction: str = "AtoB",
              limit_mb: float = DEFAULT_UPLOAD_MB):
    """The uploaded image translated by run `name` in `direction` (same size, as a PIL image)."""
    from ganforge.media.images import from_picture, to_picture
    from ganforge.media import to_uint8
    from ganforge.tiling import tiled

    model = models.get(find_run(root, name))
    family = model.family
    if direction not in family.capabilities.translate:
        trained = ", ".join(family.capabilities.translate) or "none"
        raise GanforgeError(f"run {name} ({model.config.model.name}) does not translate {direction} "
                            f"(directions: {trained})")
    picture = read_upload(upload, "L" if family.info.channels == 1 else "RGB", limit_mb)
    image = from_picture(picture).to(model.device)
    result = tiled(lambda x: family.translate(model.generator, x, direction), image, TILE, OVERLAP, family.stride)
    return to_picture(to_uint8(result[0]))


def upscale(models: Models, root: Path, name: str, upload, limit_mb: float = DEFAULT_UPLOAD_MB):
    """(upscaled, bicubic) PIL images of the upload, `scale` times larger, by run `name` and by bicubic resizing."""
    from PIL import Image

    from ganforge.media.images import from_picture, to_picture
    from ganforge.media import to_uint8
    from ganforge.tiling import tiled

    model = models.get(find_run(root, name))
    family = model.family
    if not family.capabilities.upscale:
        raise GanforgeError(f"run {name} ({model.config.model.name}) is not a super-resolution model")
    picture = read_upload(upload, "L" if family.info.channels == 1 else "RGB", limit_mb)
    image = from_picture(picture).to(model.device)
    result = tiled(lambda x: model.generator(x).float(), image, TILE, OVERLAP, scale=family.scale)
    size = (picture.width * family.scale, picture.height * family.scale)
    return to_picture(to_uint8(result[0])), picture.resize(size, Image.Resampling.BICUBIC)
