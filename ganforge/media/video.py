"""Video samples: an animated GIF or an MP4 of a grid of clips (nearest-neighbour zoom), a folder of GIFs, `.npz`;
and the frames of GIF and video files read back (imageio, with imageio-ffmpeg for MP4)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from ganforge.errors import GanforgeError
from ganforge.media.batches import Video, to_uint8
from ganforge.media.files import save_npz, writing
from ganforge.media.images import grid, to_picture


def grid_frames(samples: Video, zoom: int = 1, nrow: int | None = None) -> tuple[torch.Tensor, int]:
    """The clips side by side: uint8 frames (T, C, H', W') and the number of clips shown."""
    levels = to_uint8(samples.tensor)
    frames = [grid(levels[:, t], nrow, zoom) for t in range(levels.shape[1])]
    return torch.stack([frame for frame, _ in frames]), frames[0][1]


def gif_bytes(frames: torch.Tensor, fps: float) -> bytes:
    """uint8 frames (T, C, H, W) as a looping animated GIF."""
    pictures = [to_picture(frame) for frame in frames]
    buffer = io.BytesIO()
    pictures[0].save(buffer, format="GIF", save_all=True, append_images=pictures[1:],
                     duration=max(1, round(1000 / fps)), loop=0)
    return buffer.getvalue()


def write_gif(samples: Video, path: Path, zoom: int = 1, nrow: int | None = None, **_) -> str:
    frames, shown = grid_frames(samples, zoom, nrow)
    data = gif_bytes(frames, samples.fps)
    with writing(path):
        path.write_bytes(data)
    return f"{len(frames)} frames of {shown} clips, {frames.shape[-1]}x{frames.shape[-2]} px"


def write_mp4(samples: Video, path: Path, zoom: int = 1, nrow: int | None = None, **_) -> str:
    from importlib.util import find_spec

    if find_spec("imageio") is None or find_spec("imageio_ffmpeg") is None:  # the encoder comes with imageio-ffmpeg
        raise GanforgeError("MP4 output needs the packages imageio and imageio-ffmpeg: "
                            "pip install imageio imageio-ffmpeg")
    import imageio.v2 as imageio

    frames, shown = grid_frames(samples, zoom, nrow)
    array = frames.permute(0, 2, 3, 1).numpy()
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, -1)
    # H.264 in yuv420p needs even sides: pad with black rather than let the encoder resize
    height, width = array.shape[1:3]
    array = np.pad(array[..., :3], ((0, 0), (0, height % 2), (0, width % 2), (0, 0)))
    with writing(path):
        with imageio.get_writer(path, format="FFMPEG", mode="I", fps=samples.fps, codec="libx264",
                                pixelformat="yuv420p", macro_block_size=1, quality=8) as video:
            for frame in array:
                video.append_data(frame)
    return f"{len(frames)} frames of {shown} clips, {array.shape[2]}x{array.shape[1]} px"


def write_folder(samples: Video, path: Path, zoom: int = 1, progress: bool = False, **_) -> str:
    from ganforge.media.progress import track

    with writing(path, folder=True):
        for i in track(range(len(samples)), "writing", enabled=progress):
            frames, _ = grid_frames(samples.select(slice(i, i + 1)), zoom)
            (path / f"{i:05d}.gif").write_bytes(gif_bytes(frames, samples.fps))
    return f"{len(samples)} GIF files"


def write_npz(samples: Video, path: Path, **_) -> str:
    arrays = {"videos": to_uint8(samples.tensor).permute(0, 1, 3, 4, 2).numpy(), "fps": np.float64(samples.fps)}
    save_npz(path, arrays, samples.labels)
    return f"{len(samples)} clips as uint8 (N, T, H, W, C)"


VIDEO_SUFFIXES = {".gif", ".mp4", ".avi", ".mov", ".mkv", ".webm"}


def read_frames(path: str | Path, limit: int | None = None) -> tuple[np.ndarray, float | None]:
    """The frames of a GIF or video file (MP4 and the others ffmpeg decodes, through imageio-ffmpeg) as uint8
    (T, H, W, 3), at most `limit` of them, and the file's frames per second (None when it does not say)."""
    import imageio.v2 as imageio

    path = Path(path)
    frames, fps = [], None
    try:
        with imageio.get_reader(path) as reader:
            meta = reader.get_meta_data()
            gif = path.suffix.lower() == ".gif" and meta.get("duration")  # GIFs give a frame's duration in ms
            fps = meta.get("fps") or (1000 / meta["duration"] if gif else None)
            for frame in reader:
                array = np.asarray(frame)
                array = np.repeat(array[..., None], 3, -1) if array.ndim == 2 else array[..., :3]
                frames.append(array.astype(np.uint8))
                if limit is not None and len(frames) >= limit:
                    break
    except Exception as error:  # imageio raises OSError, ValueError, RuntimeError... for undecodable files
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise GanforgeError(f"{path}: cannot read the video ({reason})") from None
    if not frames:
        raise GanforgeError(f"{path}: no frames in the video")
    return np.stack(frames), (float(fps) if fps else None)
