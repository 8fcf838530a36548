"""Video data: clips of T frames (uint8 (N, T, C, H, W)) from a folder of videos (GIF, MP4... read by
ganforge.media.video), folders of frame images, `.npy`/`.npz` arrays, or the built-in synthetic `moving-digits`
(bouncing digits in the manner of Moving MNIST, Srivastava et al. 2015). Frames are resized like images."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganforge.data.batches import ShuffledEpochs
from ganforge.data.image_files import IMAGE_SUFFIXES, pixels_to_uint8, read_image
from ganforge.data.sources import _fit, auto_resolution
from ganforge.errors import GanforgeError
from ganforge.media import from_uint8
from ganforge.media.video import VIDEO_SUFFIXES, read_frames

MOVING_DIGITS = "moving-digits"
DIGIT_SOURCES = ("auto", "mnist", "sklearn")
SYNTHETIC_CLIPS = 10000  # clips in an epoch of moving digits when data.limit does not say


def digit_size(resolution: int) -> int:
    """Side of a digit in a moving-digits frame: 28 px in 64 px frames as in Moving MNIST, to scale."""
    return max(4, round(resolution * 28 / 64))


class ClipSource:
    """What every video data set offers the trainer and the metrics: clips by index, batches, facts."""

    frames: int
    fps: float
    resolution: int
    channels: int
    name: str
    classes: list[str] = []
    labels = None  # video families here are unconditional

    def __len__(self) -> int:
        raise NotImplementedError

    def clips(self, index: torch.Tensor) -> torch.Tensor:
        """uint8 clips (len(index), T, C, H, W) at `index` (CPU)."""
        raise NotImplementedError

    @property
    def facts(self) -> dict:
        """What sampling needs without the data: the clip length and frame rate."""
        return {"frames": self.frames, "fps": self.fps}

    def take(self, n: int | None = None) -> torch.Tensor:
        """The first `n` clips (all by default) as uint8."""
        return self.clips(torch.arange(len(self) if n is None else min(n, len(self))))

    def as_float(self, n: int | None = None) -> torch.Tensor:
        """The first `n` clips (all by default) as float (N, T, C, H, W) in [-1, 1]."""
        return from_uint8(self.take(n))

    def batches(self, batch_size: int, device: torch.device, seed: int, flip: bool = False) -> "ClipBatches":
        """Endless shuffled training batches {"video": (B, T, C, H, W) in [-1, 1]} on `device`."""
        return ClipBatches(self, batch_size, device, seed, flip)


class ClipBatches(ShuffledEpochs):
    """Shuffled epochs over a clip source; a batch's clips are made or gathered on the CPU, then moved."""

    def __init__(self, data: ClipSource, batch_size: int, device: torch.device, seed: int, flip: bool = False):
        if batch_size > len(data):
            raise GanforgeError(f"train.batch_size {batch_size} is larger than the data set ({len(data)} clips)")
        self.data, self.device, self.flip = data, device, flip
        super().__init__(len(data), batch_size, seed)

    def next(self) -> dict[str, torch.Tensor]:
        index, seed = self.take()
        video = from_uint8(self.data.clips(index)).to(self.device, non_blocking=True)
        if self.flip:  # the same flip for every frame of a clip, drawn from the batch's own seed (resumable)
            flip = torch.rand(video.shape[0], generator=torch.Generator().manual_seed(seed)) < 0.5
            video = torch.where(flip.view(-1, 1, 1, 1, 1).to(video.device), video.flip(-1), video)
        return {"video": video}


@dataclass
class VideoSet(ClipSource):
    """Clips held in memory: uint8 (N, T, C, H, W), played at `fps`."""

    videos: torch.Tensor
    fps: float
    name: str = ""
    skipped: list[str] = field(default_factory=list)  # files left out (unreadable or shorter than a clip)

    def __len__(self) -> int:
        return self.videos.shape[0]

    @property
    def frames(self) -> int:
        return self.videos.shape[1]

    @property
    def channels(self) -> int:
        return self.videos.shape[2]

    @property
    def resolution(self) -> int:
        return self.videos.shape[-1]

    def clips(self, index: torch.Tensor) -> torch.Tensor:
        return self.videos[index]


class MovingDigits(ClipSource):
    """Bouncing digits (1, 2 or 1-2 per clip) in black frames, made on demand: clip i depends only on (seed, i),
    so a data set of any length costs no memory and every run with the same seed sees the same clips.

    Each digit starts at a random place with a random direction and a speed of resolution/32 to resolution/12
    pixels per frame, and bounces off the frame's edges; overlapping digits combine by their maximum."""

    def __init__(self, glyphs: torch.Tensor, glyph_labels: torch.Tensor, n: int, frames: int, resolution: int,
                 per_clip: tuple[int, int], fps: float, seed: int, name: str = MOVING_DIGITS):
        if not 8 <= resolution <= 256:
            raise GanforgeError(f"data.resolution: moving digits are made at 8 to 256 px, got {resolution}")
        self.size = digit_size(resolution)
        if glyphs.shape[-1] != self.size:
            glyphs = F.interpolate(glyphs.float(), size=(self.size, self.size), mode="bilinear", antialias=True,
                                   align_corners=False).round().clamp(0, 255).to(torch.uint8)
        self.glyphs = glyphs[:, 0].numpy()
        self.glyph_labels = glyph_labels.numpy()
        self.n, self.frames, self.resolution, self.per_clip = n, frames, resolution, per_clip
        self.fps, self.seed, self.name, self.channels = float(fps), seed, name, 1

    def __len__(self) -> int:
        return self.n

    @property
    def facts(self) -> dict:
        return super().facts | {"digit_size": self.size, "digits_per_clip": list(self.per_clip)}

    def clip(self, i: int) -> tuple[np.ndarray, list[int]]:
        """Clip `i`: uint8 frames (T, R, R) and the digits in it."""
        rng = np.random.default_rng([self.seed, int(i)])
        count = int(rng.integers(self.per_clip[0], self.per_clip[1] + 1))
        room = self.resolution - self.size
        frames = np.zeros((self.frames, self.resolution, self.resolution), np.uint8)
        digits = []
        for _ in range(count):
            pick = int(rng.integers(len(self.glyphs)))
            digits.append(int(self.glyph_labels[pick]))
            position = rng.uniform(0, room, 2)
            angle = rng.uniform(0, 2 * np.pi)
            velocity = rng.uniform(self.resolution / 32, self.resolution / 12) * np.array([np.sin(angle), np.cos(angle)])
            for t in range(self.frames):
                top, left = np.rint(position).astype(int)
                window = frames[t, top:top + self.size, left:left + self.size]
                np.maximum(window, self.glyphs[pick], out=window)
                position = position + velocity
                for axis in range(2):  # bounce: reflect the position and the velocity at the edges
                    if position[axis] < 0 or position[axis] > room:
                        velocity[axis] = -velocity[axis]
                        position[axis] = -position[axis] if position[axis] < 0 else 2 * room - position[axis]
        return frames, digits

    def clips(self, index: torch.Tensor) -> torch.Tensor:
        made = [self.clip(i)[0] for i in index.tolist()]
        return torch.from_numpy(np.stack(made)).unsqueeze(2)

    def digits(self, index: torch.Tensor) -> list[list[int]]:
        """The digits shown in each clip at `index`."""
        return [self.clip(i)[1] for i in index.tolist()]


def parse_per_clip(text: str) -> tuple[int, int]:
    """'1', '2' or '1-2' as (fewest, most) digits per clip."""
    low, _, high = str(text).partition("-")
    try:
        bounds = (int(low), int(high or low))
    except ValueError:
        bounds = (0, 0)
    if not 1 <= bounds[0] <= bounds[1] <= 4:
        raise GanforgeError(f"digits per clip: expected 1, 2 or a range such as 1-2 (at most 4), got '{text}'")
    return bounds


def moving_digits(resolution: int | None, frames: int, n: int | None, per_clip: str = "1-2",
                  digit_source: str = "auto", root: str | None = None, fps: float = 8.0,
                  seed: int = 0) -> MovingDigits:
    """Moving digits from MNIST (torchvision files under `root`; digit_source 'auto' uses them when `root` is
    given) or from scikit-learn's bundled 8x8 digits (no files needed)."""
    from ganforge.data.sources import load_images

    if digit_source not in DIGIT_SOURCES:
        raise GanforgeError(f"digit source must be one of {', '.join(DIGIT_SOURCES)}; got '{digit_source}'")
    mnist = digit_source == "mnist" or (digit_source == "auto" and root is not None)
    glyphs = load_images("mnist", 28, 1, root) if mnist else load_images("digits", 8, 1)
    name = f"{MOVING_DIGITS} ({'MNIST' if mnist else 'scikit-learn digits'})"
    return MovingDigits(glyphs.images, glyphs.labels, n or SYNTHETIC_CLIPS, frames, resolution or 32,
                        parse_per_clip(per_clip), fps, seed, name)


def load_video(source: str, resolution: int | None, channels: int | None, root: str | None, limit: int | None,
               frames: int = 16, fps: float = 8.0, per_clip: str = "1-2", digit_source: str = "auto",
               seed: int = 0) -> ClipSource:
    """Clips of `frames` frames from `source`: 'moving-digits', a video file, a folder of video files and/or
    frame folders (searched recursively), or a .npy/.npz array (N, T, H, W[, C]). Longer videos give several
    consecutive clips; `fps` applies where the files do not say."""
    if frames < 2:
        raise GanforgeError(f"clips need at least 2 frames, got {frames}")
    if source.lower() == MOVING_DIGITS:
        return moving_digits(resolution, frames, limit, per_clip, digit_source, root, fps, seed)
    path = Path(source).expanduser()
    if not path.exists():
        raise GanforgeError(f"--data {source}: no such file or folder, and not '{MOVING_DIGITS}'")
    skipped: list[str] = []
    if path.suffix.lower() in (".npy", ".npz"):
        videos, rate = _array(path), None
    else:
        videos, rates = [], []
        for item in _videos(path):
            try:
                array, rate = _read(item)
            except GanforgeError as error:
                skipped.append(str(error))
                continue
            videos.append(array)
            rates.append(rate)
        rate = float(np.median([r for r in rates if r])) if any(rates) else None
    clips = [c for video in videos for c in _windows(video, frames)]
    if not clips:
        raise GanforgeError(f"--data {source}: no clip of {frames} frames in it ({len(videos)} videos, the longest "
                            f"{max((len(v) for v in videos), default=0)} frames; {len(skipped)} unreadable)")
    if limit is not None:
        clips = clips[:limit]
    if channels is None:
        channels = 1 if all((c[..., :1] == c).all() for c in clips[:50]) else 3  # grey: equal R, G and B
    if resolution is None:
        resolution = auto_resolution(*clips[0].shape[1:3])
    fitted = [_fit(torch.from_numpy(c).permute(0, 3, 1, 2), resolution, channels) for c in clips]
    return VideoSet(torch.stack(fitted), rate or float(fps), str(source), skipped)


def _videos(path: Path) -> list[Path]:
    """The videos under `path`: video files, and folders holding frame images (one video per folder)."""
    if path.is_file():
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            raise GanforgeError(f"--data {path}: expected a video ({', '.join(sorted(VIDEO_SUFFIXES))}), a folder "
                                f"or a .npy/.npz array, got a {path.suffix or 'plain'} file")
        return [path]
    found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    frame_folders = sorted({p.parent for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES})
    if not found and not frame_folders:
        raise GanforgeError(f"--data {path}: no videos ({', '.join(sorted(VIDEO_SUFFIXES))}) and no folders of "
                            "frame images found")
    return found + frame_folders


def _read(item: Path) -> tuple[np.ndarray, float | None]:
    """uint8 frames (T, H, W, C) of a video file or a folder of frames (in name order), and its frame rate."""
    if item.is_file():
        return read_frames(item)
    files = sorted(p for p in item.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    frames = [np.asarray(read_image(p, "RGB", name=str(p)), dtype=np.uint8) for p in files]
    if len({f.shape for f in frames}) > 1:
        raise GanforgeError(f"{item}: its frame images differ in size")
    return np.stack(frames), None


def _windows(video: np.ndarray, frames: int) -> list[np.ndarray]:
    """Consecutive, non-overlapping clips of `frames` frames (a shorter tail is dropped)."""
    return [video[start:start + frames] for start in range(0, len(video) - frames + 1, frames)]


def _array(path: Path) -> list[np.ndarray]:
    """Videos (T, H, W, C) from a .npy/.npz array shaped (N, T, H, W) or (N, T, H, W, C) (ganforge's own .npz
    samples, key 'videos', included)."""
    where = f"--data {path}"
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                key = next((k for k in ("videos", "x", "arr_0") if k in loaded.files), None)
                if key is None:
                    raise GanforgeError(f"{where}: expected a 'videos' (or 'x') array, found keys {loaded.files}")
                array = loaded[key]
        else:
            array = loaded
    except GanforgeError:
        raise
    except Exception as error:  # object arrays (never unpickled), truncated files, bad zip members...
        raise GanforgeError(f"{where}: cannot read the array ({str(error).splitlines()[0]})") from None
    if array.dtype.kind not in "biuf":
        raise GanforgeError(f"{where}: pixel values must be numbers, got dtype {array.dtype}")
    if array.ndim == 4:
        array = array[..., None]
    if array.ndim != 5 or array.shape[-1] not in (1, 3, 4) or 0 in array.shape:
        raise GanforgeError(f"{where}: expected videos shaped (N, T, H, W) or (N, T, H, W, C) with 1, 3 or 4 "
                            f"channels, got {array.shape}")
    array = pixels_to_uint8(array[..., :3], where)
    return list(np.repeat(array, 3, -1) if array.shape[-1] == 1 else array)
