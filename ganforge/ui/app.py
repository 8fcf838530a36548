"""The page: Runs (table, info, curves, sample grids over time), Play (controls from the run's declared
capabilities) and Train (a background run with progress and stop), and how it is served. Imports gradio: only the
`ganforge ui` command imports this module."""

from __future__ import annotations

import functools
import os
import shutil
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: no calls home

import gradio as gr  # noqa: E402

from ganforge.config import RunConfig  # noqa: E402
from ganforge.errors import GanforgeError  # noqa: E402
from ganforge.ui import actions, runs  # noqa: E402
from ganforge.ui.training import Training, TrainRequest, data_choices  # noqa: E402

# small samples enlarged in the page without blurring (the served file keeps its size)
CSS = ".pixelated img { image-rendering: pixelated; width: 100%; height: 100%; object-fit: contain; }"
THEME_FONTS = {"font": ["ui-sans-serif", "system-ui", "sans-serif"], "font_mono": ["ui-monospace", "monospace"]}
KEEP_OUTPUTS = 64  # request folders kept for gradio to copy from


@dataclass
class Settings:
    """How the app is served; `runs` is the only folder it reads runs from."""

    runs: Path
    upload_mb: float = actions.DEFAULT_UPLOAD_MB
    concurrency: int = 2  # sampling / translate / upscale requests run at once; the rest queue
    trainings: int = 1  # background trainings at a time
    data: Path | None = None  # folders under it may be picked as training data
    models: actions.Models = field(default_factory=actions.Models)


def guarded(function):
    """Turn failures into a message in the page (gr.Error) instead of a server error."""

    @functools.wraps(function)
    def call(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except gr.Error:
            raise
        except GanforgeError as error:
            raise gr.Error(str(error), print_exception=False) from None
        except Exception as error:  # an internal bug: keep the trace for the log, tell the user in one line
            traceback.print_exc(file=sys.stderr)
            raise gr.Error(f"failed: {type(error).__name__}: {error}", print_exception=False) from None

    return call


class Outputs:
    """Request folders for the files the page shows, in one temporary folder; old ones are pruned."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="ganforge-ui-"))

    def new(self) -> Path:
        folders = sorted(self.root.iterdir(), key=lambda p: p.stat().st_mtime)
        for old in folders[:max(0, len(folders) - KEEP_OUTPUTS)]:
            shutil.rmtree(old, ignore_errors=True)
        return Path(tempfile.mkdtemp(dir=self.root))

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _long(series: dict[str, list[tuple[float, float]]]):
    """Curves as the long table gr.LinePlot draws (step, value, series)."""
    import pandas as pd

    rows = [(step, value, name) for name, points in series.items() for step, value in points]
    return pd.DataFrame(rows, columns=["step", "value", "series"])


def _shown(action: str, key: str, shown: str, download: str):
    """An action's button, the picture it shows and the file it offers (elem ids KEY-go, KEY-out, KEY-file)."""
    button = gr.Button(action, variant="primary", elem_id=f"{key}-go")
    picture = gr.Image(label=shown, type="filepath", interactive=False, elem_classes="pixelated", height=360,
                       elem_id=f"{key}-out")
    return button, picture, gr.File(label=f"download {download}", interactive=False, elem_id=f"{key}-file")


def _saved(picture, path: Path) -> str:
    picture.save(path)
    return str(path)


def _names(settings: Settings) -> list[str]:
    return list(runs.list_runs(settings.runs))


def runs_tab(settings: Settings):
    """The runs table, the selected run's info and curves, and its sample grids over time; returns the table, its
    listing function, the run picker and the refresh button (the Play tab follows them too)."""
    with gr.Row():
        refresh = gr.Button("Refresh", scale=0)
        live = gr.Checkbox(True, label="follow live (every 5 s)", scale=0)
    table = gr.Dataframe(headers=runs.COLUMNS, interactive=False, wrap=True, elem_id="runs-table")
    run = gr.Dropdown(label="run", choices=_names(settings), value=None, elem_id="runs-run")
    info = gr.Markdown(elem_id="runs-info")
    with gr.Row():
        losses = gr.LinePlot(x="step", y="value", color="series", label="losses (metrics.csv)")
        scores = gr.LinePlot(x="step", y="value", color="series", label="evaluation (eval.csv)")
    step = gr.Slider(0, 1, step=1, label="sample grid (by checkpoint step)", elem_id="runs-step")
    grid = gr.Image(label="samples", type="filepath", interactive=False, elem_classes="pixelated", height=360,
                    elem_id="runs-grid")

    @guarded
    def listing():
        """The runs table: run, family, data, step, of, scores, updated."""
        return runs.runs_table(settings.runs)

    @guarded
    def selected(name):
        if not name:
            return "", None, None, gr.Slider(0, 1, value=0), None
        found = runs.find_run(settings.runs, name)
        grids = runs.sample_grids(found)
        last = len(grids) - 1
        at = f" (step {grids[-1][0]})" if grids else ""
        slider = gr.Slider(0, max(1, last), value=max(0, last), step=1,
                           label=f"sample grid {last + 1} of {len(grids)}{at}")
        return (runs.describe(found), _long(runs.curves(found, "metrics")), _long(runs.curves(found, "eval")), slider,
                str(grids[-1][1]) if grids else None)

    @guarded
    def curves(name, follow):
        if not (name and follow):
            return gr.skip(), gr.skip()
        found = runs.find_run(settings.runs, name)
        return _long(runs.curves(found, "metrics")), _long(runs.curves(found, "eval"))

    @guarded
    def grid_at(name, index):
        grids = runs.sample_grids(runs.find_run(settings.runs, name)) if name else []
        if not grids:
            return None
        return str(grids[max(0, min(int(index), len(grids) - 1))][1])

    run.change(selected, run, [info, losses, scores, step, grid], api_visibility="private")
    step.release(grid_at, [run, step], grid, api_visibility="private")
    gr.Timer(5).tick(curves, [run, live], [losses, scores], api_visibility="private", show_progress="hidden")
    return table, listing, run, refresh


def follow(settings: Settings, table, listing, refresh, pickers: list) -> None:
    """Refresh updates the table and every run picker; clicking a table row picks that run everywhere."""

    def refreshed():
        names = _names(settings)
        return [listing()] + [gr.Dropdown(choices=names) for _ in pickers]

    def clicked(event: gr.SelectData):
        return [gr.Dropdown(value=event.row_value[0]) for _ in pickers]

    refresh.click(refreshed, None, [table, *pickers], api_visibility="private")
    table.select(clicked, None, pickers, api_visibility="private")


def play_tab(settings: Settings, outputs: Outputs):
    """Sample, interpolate, style-mix, reconstruct, translate and upscale with a run; the controls shown are those
    its family declares; each action's output is also a file to download."""
    run = gr.Dropdown(label="run", choices=_names(settings), value=None, allow_custom_value=True,
                      elem_id="play-run")
    offered = gr.Markdown("pick a run: the controls follow what its family can do", elem_id="play-offer")
    with gr.Group(visible=False) as sampling:
        with gr.Row():
            n = gr.Slider(1, actions.MAX_SAMPLES, value=16, step=1, label="n", elem_id="play-n")
            seed = gr.Number(0, precision=0, minimum=0, label="seed", elem_id="play-seed")
            klass = gr.Dropdown(["random"], value="random", label="class", visible=False, elem_id="play-class")
            truncation = gr.Slider(0, 1, value=1, step=0.05, label="truncation psi (1: none)", visible=False,
                                   elem_id="play-truncation")
        caption = gr.Textbox("", label="caption (empty: training captions)", visible=False, elem_id="play-caption")
        sample_button = gr.Button("Sample", variant="primary", elem_id="play-sample")
        picture = gr.Image(label="samples", type="filepath", interactive=False, elem_classes="pixelated",
                           height=360, elem_id="play-picture")
        sound = gr.Audio(label="audio", type="filepath", interactive=False, visible=False)
        text = gr.Textbox(label="samples", lines=8, visible=False)
        download = gr.File(label="download all samples (.npz)", interactive=False)
    with gr.Group(visible=False) as walking:
        with gr.Row():
            walks = gr.Slider(1, actions.MAX_WALKS, value=4, step=1, label="walks", elem_id="walk-n")
            points = gr.Slider(2, actions.MAX_POINTS, value=3, step=1, label="key points", elem_id="walk-points")
            frames = gr.Slider(1, actions.MAX_FRAMES, value=8, step=1, label="frames per leg", elem_id="walk-frames")
            walk_seed = gr.Number(0, precision=0, minimum=0, label="seed", elem_id="walk-seed")
        walk_button, walk_out, walk_file = _shown("Interpolate", "walk", "latent walk (GIF)", "the walk (.gif)")
    with gr.Group(visible=False) as mixing:
        with gr.Row():
            rows = gr.Slider(1, actions.MAX_MIX, value=3, step=1, label="rows (destinations)", elem_id="mix-rows")
            cols = gr.Slider(1, actions.MAX_MIX, value=3, step=1, label="columns (sources)", elem_id="mix-cols")
            layers = gr.Radio(list(actions.LAYERS), value="coarse", label="styles taken from the sources",
                              elem_id="mix-layers")
            mix_seed = gr.Number(0, precision=0, minimum=0, label="seed", elem_id="mix-seed")
        mix_button, mix_out, mix_file = _shown("Style-mix", "mix", "style mixing", "the grid (.png)")
    with gr.Group(visible=False) as encoding:
        recon_in = gr.File(label="image to reconstruct", file_types=["image"], type="filepath",
                           elem_id="recon-upload")
        recon_button, recon_out, recon_file = _shown("Reconstruct", "recon", "input | reconstruction",
                                                     "the pair (.png)")
    with gr.Group(visible=False) as translating:
        with gr.Row():
            translate_in = gr.File(label="image to translate", file_types=["image"], type="filepath",
                                   elem_id="translate-upload")
            direction = gr.Radio(["AtoB"], value="AtoB", label="direction", elem_id="translate-direction")
        translate_button = gr.Button("Translate", variant="primary", elem_id="translate-go")
        translated = gr.Image(label="translated", type="pil", format="png", interactive=False, height=360,
                                 elem_classes="pixelated", elem_id="translate-out")
        translate_file = gr.File(label="download (.png)", interactive=False, elem_id="translate-file")
    with gr.Group(visible=False) as upscaling:
        upscale_in = gr.File(label="image to upscale", file_types=["image"], type="filepath",
                             elem_id="upscale-upload")
        upscale_button = gr.Button("Upscale", variant="primary", elem_id="upscale-go")
        with gr.Row():
            upscaled = gr.Image(label="upscaled", type="pil", format="png", interactive=False, height=360,
                                 elem_classes="pixelated", elem_id="upscale-out")
            bicubic = gr.Image(label="bicubic", type="pil", format="png", interactive=False, height=360,
                                 elem_classes="pixelated", elem_id="upscale-bicubic")
        upscale_files = gr.File(label="download (.png)", file_count="multiple", interactive=False,
                                elem_id="upscale-files")

    @guarded
    def chosen(name):
        hidden = gr.Group(visible=False)
        if not name:
            return ("pick a run", *[hidden] * 6, gr.Dropdown(visible=False), gr.Slider(visible=False), gr.Radio(),
                    gr.Textbox(visible=False))
        o = actions.offer(settings.models, settings.runs, name)
        can = [what for what, yes in (("sample", o.from_noise), ("pick a class", o.classes),
                                      ("truncate", o.truncation), ("caption", o.captioned),
                                      ("interpolate", o.interpolate),
                                      ("style-mix", o.style_mixing), ("reconstruct", o.encode),
                                      (f"translate {', '.join(o.translate)}", o.translate),
                                      (f"upscale x{o.upscale}", o.upscale)) if yes]
        return (f"**{name}**: {o.modality} samples; " + ", ".join(can),
                *[gr.Group(visible=bool(yes)) for yes in (o.from_noise, o.interpolate, o.style_mixing, o.encode,
                                                           o.translate, o.upscale)],
                gr.Dropdown(["random", *o.classes], value="random", visible=bool(o.classes)),
                gr.Slider(value=1, visible=o.truncation),
                gr.Radio(list(o.translate) or ["AtoB"], value=(o.translate or ("AtoB",))[0]),
                gr.Textbox(visible=o.captioned))

    @guarded
    def sample(run: str, n: int = 16, seed: int = 0, klass: str = "random", truncation: float = 1.0,
               caption: str = ""):
        """Samples of a listed run as an image (a grid; GIF for video, spectrograms for audio; None for tokens);
        `caption` for text-to-image runs."""
        shown = actions.show(actions.sample(settings.models, settings.runs, run, n, seed, klass, truncation,
                                            caption), outputs.new())
        return None if shown["picture"] is None else str(shown["picture"])

    @guarded
    def sample_files(run, n, seed, klass, truncation, caption=""):
        shown = actions.show(actions.sample(settings.models, settings.runs, run, n, seed, klass, truncation,
                                            caption), outputs.new())
        return (gr.Audio(shown["audio"], visible=shown["audio"] is not None),
                gr.Textbox(shown["text"], visible=shown["text"] is not None), str(shown["download"]))

    @guarded
    def interpolate(run: str, n: int = 4, points: int = 3, frames: int = 8, seed: int = 0):
        """Looping latent walks of a listed run that samples images from noise, as an animated GIF (walks side by
        side, `frames` frames between `points` random latents)."""
        walk = actions.interpolate(settings.models, settings.runs, run, n, points, frames, seed)
        return str(actions.write(walk, outputs.new(), "walk.gif", nrow=len(walk)))

    @guarded
    def style_mix(run: str, rows: int = 3, cols: int = 3, layers: str = "coarse", seed: int = 0):
        """The style-mixing grid of a listed style-mixing run: sources across the top, destinations down the left,
        each destination with the `layers` styles (coarse, middle, fine) of each source."""
        grid = actions.style_mix(settings.models, settings.runs, run, rows, cols, layers, seed)
        return str(actions.write(grid, outputs.new(), "style_mix.png", nrow=int(cols) + 1))

    @guarded
    def reconstruct(run: str, image: str):
        """An uploaded image at the model's size beside its reconstruction by a listed run that encodes images."""
        pair = actions.reconstruct(settings.models, settings.runs, run, image, settings.upload_mb)
        return str(actions.write(pair, outputs.new(), "reconstruction.png", nrow=2))

    @guarded
    def as_files(*pictures):
        """What an action showed, as files to download (paths as they are; PIL images written as PNG)."""
        folder = outputs.new()
        files = [picture if isinstance(picture, str) else _saved(picture, folder / f"{i}.png")
                 for i, picture in enumerate(pictures) if picture is not None]
        return files[0] if len(files) == 1 else files

    @guarded
    def translate(run: str, image: str, direction: str = "AtoB"):
        """An uploaded image translated by a listed image-to-image run (same size)."""
        return actions.translate(settings.models, settings.runs, run, image, direction, settings.upload_mb)

    @guarded
    def upscale(run: str, image: str):
        """An uploaded image upscaled by a listed super-resolution run, and bicubic resizing to compare."""
        return actions.upscale(settings.models, settings.runs, run, image, settings.upload_mb)

    run.change(chosen, run, [offered, sampling, walking, mixing, encoding, translating, upscaling, klass, truncation,
                             direction, caption], api_visibility="private")
    inputs = [run, n, seed, klass, truncation, caption]
    sample_button.click(sample, inputs, picture, api_name="sample").success(
        sample_files, inputs, [sound, text, download], api_visibility="private")
    for button, action, given, shown, download, name in (
            (walk_button, interpolate, [run, walks, points, frames, walk_seed], [walk_out], walk_file, "interpolate"),
            (mix_button, style_mix, [run, rows, cols, layers, mix_seed], [mix_out], mix_file, "style_mix"),
            (recon_button, reconstruct, [run, recon_in], [recon_out], recon_file, "reconstruct"),
            (translate_button, translate, [run, translate_in, direction], [translated], translate_file, "translate"),
            (upscale_button, upscale, [run, upscale_in], [upscaled, bicubic], upscale_files, "upscale")):
        button.click(action, given, shown, api_name=name).success(as_files, shown, download,
                                                                   api_visibility="private")
    return run


def train_tab(settings: Settings, training: Training):
    """A form that starts `ganforge train` in the background, its progress, and stop."""
    from ganforge import families

    with gr.Row():
        model = gr.Dropdown(families.available(), value=RunConfig().model.name, label="family", elem_id="train-model")
        data = gr.Dropdown(data_choices(settings.data), value="digits", label="data", elem_id="train-data")
        name = gr.Textbox(label="run name", placeholder="letters, digits, . _ -", elem_id="train-name")
    with gr.Row():
        steps = gr.Number(1000, precision=0, minimum=1, label="steps", elem_id="train-steps")
        resolution = gr.Number(None, precision=0, label="resolution (empty: the family's)", elem_id="train-resolution")
        batch = gr.Number(None, precision=0, label="batch size", elem_id="train-batch")
        width = gr.Number(None, precision=0, label="width", elem_id="train-width")
    with gr.Row():
        start = gr.Button("Start training", variant="primary", elem_id="train-start")
        stop = gr.Button("Stop (checkpoints first)", variant="stop", elem_id="train-stop")
    bar = gr.HTML(elem_id="train-progress")
    state = gr.Textbox(label="status", interactive=False, elem_id="train-status")

    def progress():
        done, line = training.status()
        return f'<progress value="{done:.3f}" max="1" style="width:100%"></progress>', line

    @guarded
    def begin(model, data, steps, name, resolution, batch, width):
        training.start(TrainRequest(model, data, steps, name, resolution, batch, width))
        return progress()

    @guarded
    def end():
        training.stop()
        return progress()

    start.click(begin, [model, data, steps, name, resolution, batch, width], [bar, state], api_visibility="private")
    stop.click(end, None, [bar, state], api_visibility="private")
    gr.Timer(1).tick(progress, None, [bar, state], api_visibility="private", show_progress="hidden")


def build(settings: Settings) -> tuple[gr.Blocks, Training, Outputs]:
    """The app over `settings.runs`, the background training it controls and its output folders."""
    training = Training(settings.runs, settings.trainings, settings.data)
    outputs = Outputs()
    theme = gr.themes.Default(**THEME_FONTS)  # system fonts: no font downloads, the page works offline
    with gr.Blocks(title="ganforge", analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        gr.Markdown("## ganforge: runs, samples and training")
        with gr.Tabs():
            with gr.Tab("Runs", id="runs"):
                table, listing, run, refresh = runs_tab(settings)
            with gr.Tab("Play", id="play"):
                play_run = play_tab(settings, outputs)
            with gr.Tab("Train", id="train"):
                train_tab(settings, training)
        follow(settings, table, listing, refresh, [run, play_run])
        app.load(listing, None, table, api_name="runs")
    app.ganforge_launch = {"theme": theme, "css": CSS}
    return app, training, outputs


def launch(settings: Settings, host: str = "127.0.0.1", port: int | None = 7860,
           auth: tuple[str, str] | None = None, block: bool = True, quiet: bool = False):
    """Serve the app (no share link, no analytics); with block=False return (app, url, training, outputs) at once."""
    app, training, outputs = build(settings)
    app.queue(default_concurrency_limit=settings.concurrency)
    try:
        _, url, _ = app.launch(server_name=host, server_port=port, auth=auth, share=False, quiet=quiet,
                               prevent_thread_lock=not block, max_file_size=int(settings.upload_mb * 1e6),
                               footer_links=["api"], ssr_mode=False, mcp_server=False, enable_monitoring=False,
                               pwa=False, **app.ganforge_launch)
    except OSError as error:  # gradio: the port is taken
        outputs.close()
        raise GanforgeError(f"cannot serve on {host}:{port}: {error}") from None
    if block:
        training.close()
        outputs.close()
        return None
    return app, url, training, outputs
