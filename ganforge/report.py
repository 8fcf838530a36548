"""A run as one self-contained HTML page: resolved config, loss and evaluation curves, the periodic samples and an
animation of them, evaluation records and the environment; every figure embedded, nothing fetched from anywhere."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import platform
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from ganforge.errors import GanforgeError

MAX_GRIDS = 12  # sample grids shown (evenly spaced over training, the last always); the animation uses them all
MAX_FRAMES = 200  # frames of the progress animation (evenly spaced when there are more samples)
FPS = 4
STEP_FILE = re.compile(r"step_(\d+)$")
MIME = {".png": "image/png", ".jpg": "image/jpeg", ".gif": "image/gif", ".wav": "audio/wav", ".mp4": "video/mp4"}
CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{margin-bottom:0}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.2em .6em;text-align:left}
pre{background:#f6f6f6;padding:1em;overflow:auto}figure{display:inline-block;margin:.5em;text-align:center}
img,video{max-width:100%;image-rendering:pixelated}.sample{min-width:256px}.note{color:#666}
.wide{overflow-x:auto}"""


def data_uri(data: bytes, suffix: str) -> str:
    """`data` embedded as a data: URI of the type its suffix names."""
    return f"data:{MIME[suffix]};base64,{base64.b64encode(data).decode('ascii')}"


def read_table(path: Path) -> dict[str, list[float]]:
    """A CSV the trainer wrote (step first) as columns of floats; missing or empty cells are NaN."""
    if not path.exists():
        return {}
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns: dict[str, list[float]] = {key: [] for key in (rows[0] if rows else {})}
    for row in rows:
        for key in columns:
            try:
                columns[key].append(float(row.get(key) or "nan"))
            except ValueError:
                columns[key].append(math.nan)
    return columns


def curves(columns: dict[str, list[float]], title: str) -> bytes | None:
    """Small multiples, one per column against the step, as a PNG; None when there is nothing to draw."""
    from matplotlib.figure import Figure

    steps = columns.get("step", [])
    shown = [key for key, values in columns.items()
             if key != "step" and any(math.isfinite(v) for v in values)]
    if not steps or not shown:
        return None
    cols = min(3, len(shown))
    rows = math.ceil(len(shown) / cols)
    figure = Figure(figsize=(4 * cols, 2.6 * rows), layout="constrained")
    figure.suptitle(title)
    for index, key in enumerate(shown):
        axes = figure.add_subplot(rows, cols, index + 1)
        points = [(s, v) for s, v in zip(steps, columns[key]) if math.isfinite(v)]
        axes.plot([s for s, _ in points], [v for _, v in points], marker="." if len(points) < 30 else None)
        axes.set_title(key.removeprefix("eval/"), fontsize=10)
        axes.set_xlabel("step", fontsize=8)
        axes.tick_params(labelsize=8)
        axes.grid(alpha=0.3)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def periodic_samples(run_dir: Path) -> dict[str, list[tuple[int, Path]]]:
    """The trainer's samples/step_N.* files by suffix, in step order."""
    found: dict[str, list[tuple[int, Path]]] = {}
    for path in sorted((run_dir / "samples").glob("step_*.*")):
        match = STEP_FILE.match(path.stem)
        if match and path.is_file():
            found.setdefault(path.suffix.lower(), []).append((int(match.group(1)), path))
    return {suffix: sorted(files) for suffix, files in found.items()}


def evenly(items: list, count: int) -> list:
    """At most `count` of `items`, evenly spaced, first and last kept."""
    if len(items) <= count:
        return items
    return [items[round(i * (len(items) - 1) / (count - 1))] for i in range(count)]


def progress_animation(pictures: list[Path]) -> tuple[bytes, str] | None:
    """The periodic sample pictures as one animation through ganforge.media: MP4 when imageio-ffmpeg is there,
    else GIF. Returns (bytes, suffix); None for fewer than two pictures."""
    if len(pictures) < 2:
        return None
    import numpy as np
    import torch
    from PIL import Image

    from ganforge import media

    frames = []
    size = Image.open(pictures[-1]).size
    for path in evenly(pictures, MAX_FRAMES):
        with Image.open(path) as picture:
            frames.append(np.asarray(picture.convert("RGB").resize(size, Image.NEAREST)))
    levels = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)
    clip = media.Video(media.from_uint8(levels)[None], fps=FPS)
    from importlib.util import find_spec

    suffix = ".mp4" if find_spec("imageio") and find_spec("imageio_ffmpeg") else ".gif"
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / f"progress{suffix}"
        media.save(clip, target)
        return target.read_bytes(), suffix


def embedded(data: bytes, suffix: str, caption: str, sample: bool = False) -> str:
    """A figure, an audio clip or a video as an element with its data inline; samples shown at least 256 px
    wide (nearest neighbour)."""
    uri, alt, kind = data_uri(data, suffix), html.escape(caption), ' class="sample"' if sample else ""
    if suffix == ".wav":
        element = f'<audio controls src="{uri}"></audio>'
    elif suffix == ".mp4":
        element = f'<video{kind} controls autoplay loop muted playsinline src="{uri}" title="{alt}"></video>'
    else:
        element = f'<img{kind} src="{uri}" alt="{alt}">'
    return f"<figure>{element}<figcaption>{alt}</figcaption></figure>"


def key_values(values: dict[str, Any]) -> str:
    """A two-column table of a (flattened) mapping."""
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_shown(v))}</td></tr>"
                   for k, v in _flat(values).items())
    return f"<table>{rows}</table>"


def evaluation_records(run_dir: Path) -> str:
    """One row per eval/*.json (scores and the record they were measured under), one column per field."""
    rows = {}
    for path in sorted((run_dir / "eval").glob("*.json")):
        try:
            loaded = json.loads(path.read_text())
        except (OSError, ValueError):
            loaded = {"error": "unreadable"}
        rows[path.name] = _flat(loaded if isinstance(loaded, dict) else {"value": loaded})
    if not rows:
        return '<p class="note">no evaluation records (eval/*.json)</p>'
    columns = list(dict.fromkeys(key for row in rows.values() for key in row))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["file", *columns])
    body = "".join("<tr>" + f"<th>{html.escape(name)}</th>" + "".join(
        f"<td>{html.escape(_shown(row[c])) if c in row else ''}</td>" for c in columns) + "</tr>"
        for name, row in rows.items())
    return f'<div class="wide"><table><tr>{head}</tr>{body}</table></div>'


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat |= _flat(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return json.dumps(value) if isinstance(value, (list, tuple)) else str(value)


def _checkpoint_meta(run_dir: Path) -> tuple[dict[str, Any], str]:
    """The last checkpoint's metadata, and a note when there is none or it cannot be read."""
    from ganforge.training import checkpoint as ckpt

    path = run_dir / "checkpoints" / "last.safetensors"
    if not path.exists():
        return {}, "no checkpoint"
    try:
        return ckpt.read_meta(path), ""
    except GanforgeError as error:  # a damaged checkpoint: report what the folder still has
        return {}, str(error)


def curves_section(run_dir: Path) -> tuple[list[str], int]:
    parts, figures = ["<h2>Training curves</h2>"], 0
    for table, title in (("metrics", "losses and speed"), ("eval", "evaluation")):
        picture = curves(read_table(run_dir / f"{table}.csv"), title)
        if picture is not None:
            parts.append(embedded(picture, ".png", f"{title} ({table}.csv)"))
            figures += 1
        elif table == "eval":
            parts.append('<p class="note">no evaluation during training (eval.csv): train with --eval-every N</p>')
        else:
            parts.append('<p class="note">no losses logged (metrics.csv)</p>')
    return parts, figures


def samples_section(run_dir: Path) -> tuple[list[str], int]:
    parts, figures = ["<h2>Samples over training</h2>"], 0
    samples = periodic_samples(run_dir)
    if not samples:
        parts.append('<p class="note">no periodic samples (samples/step_N.*)</p>')
    pictures = samples.get(".png", [])
    animation = progress_animation([path for _, path in pictures])
    if animation is not None:
        caption = f"progress over {len(pictures)} sample grids, steps {pictures[0][0]} to {pictures[-1][0]}"
        parts.append(embedded(*animation, caption, sample=True))
        figures += 1
    for suffix, files in samples.items():
        for step, path in evenly(files, MAX_GRIDS):
            if suffix in MIME:
                parts.append(embedded(path.read_bytes(), suffix, f"step {step}", sample=True))
                figures += 1
            else:  # text samples (token sequences)
                parts.append(f"<h3>step {step}</h3><pre>{html.escape(path.read_text(errors='replace'))}</pre>")
    return parts, figures


def environment_section(meta: dict[str, Any], note: str) -> str:
    from ganforge import __version__

    trained = key_values(meta["versions"]) if meta.get("versions") else f'<p class="note">{html.escape(note)}</p>'
    here = key_values({"ganforge": __version__, "python": sys.version.split()[0], "platform": platform.platform()})
    return f"<h2>Environment</h2><h3>Trained with (from the checkpoint)</h3>{trained}<h3>This report</h3>{here}"


def build(run_dir: str | Path) -> tuple[str, int]:
    """The report of the run in `run_dir` as HTML, and the number of figures, clips and videos embedded in it."""
    import yaml

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise GanforgeError(f"{run_dir}: no such run folder")
    meta, note = _checkpoint_meta(run_dir)
    config_file = run_dir / "config.yaml"
    if meta:  # what the weights were trained with
        config_text, source = yaml.safe_dump(meta["config"], sort_keys=False), "the last checkpoint"
    elif config_file.exists():
        config_text, source = config_file.read_text(), "config.yaml"
    else:
        raise GanforgeError(f"{run_dir}: not a ganforge run folder (no config.yaml, no readable "
                            "checkpoints/last.safetensors)")
    config = yaml.safe_load(config_text) or {}
    name = html.escape(run_dir.resolve().name)
    summary = (f"{config.get('model', {}).get('name', '?')} on {config.get('data', {}).get('source')}"
               + (f", step {meta['step']}" if meta else f" ({note})"))
    curve_parts, curve_figures = curves_section(run_dir)
    sample_parts, sample_figures = samples_section(run_dir)
    parts = [f"<h1>{name}</h1>", f'<p class="note">{html.escape(summary)}</p>', *curve_parts, *sample_parts,
             "<h2>Evaluation records</h2>" + evaluation_records(run_dir),
             f"<h2>Resolved config</h2><p class=\"note\">from {source}</p><pre>{html.escape(config_text)}</pre>"]
    if meta.get("data"):
        parts.append("<h3>Data</h3>" + key_values(meta["data"]))
    parts.append(environment_section(meta, note))
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>ganforge report: {name}</title><style>{CSS}</style></head>"
            "<body>\n" + "\n".join(parts) + "\n</body></html>\n")
    return page, curve_figures + sample_figures


def write(run_dir: str | Path, out: str | Path | None = None) -> tuple[Path, int]:
    """Write the report of `run_dir` (default: RUN/report.html); returns its path and the figures in it."""
    from ganforge.media.files import writing

    page, figures = build(run_dir)
    out = Path(out) if out is not None else Path(run_dir) / "report.html"
    with writing(out):
        out.write_text(page, encoding="utf-8")
    return out, figures
