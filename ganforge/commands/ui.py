"""`ganforge ui`: the web app over a runs folder (gradio is imported only when the command runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ganforge.errors import GanforgeError

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def ui(
    runs: Path = typer.Option(Path("runs"), help="the runs folder: the only place runs are read from"),
    host: str = typer.Option("127.0.0.1", help="address to listen on (0.0.0.0: every interface; use --auth)"),
    port: int = typer.Option(7860, help="port to listen on"),
    auth: Optional[str] = typer.Option(None, help="USER:PASS required to open the page"),
    max_upload_mb: float = typer.Option(20.0, help="largest upload accepted, in MB"),
    concurrency: int = typer.Option(2, help="sampling / translate / upscale requests run at once (the rest queue)"),
    trainings: int = typer.Option(1, help="background trainings started from the page at a time"),
    data: Optional[Path] = typer.Option(None, help="folder whose sub-folders the Train tab offers as data"),
) -> None:
    """Serve a web page to browse runs, sample, translate, upscale and train (localhost only by default)."""
    credentials = None
    if auth is not None:
        user, sep, password = auth.partition(":")
        if not (sep and user and password):
            raise GanforgeError("--auth expects USER:PASS")
        credentials = (user, password)
    if max_upload_mb <= 0 or concurrency < 1 or trainings < 1:
        raise GanforgeError("--max-upload-mb must be above 0, --concurrency and --trainings at least 1")
    if not runs.is_dir():
        raise GanforgeError(f"--runs {runs}: no such folder")
    if host not in LOCAL_HOSTS and credentials is None:
        typer.echo(f"warning: serving on {host} without --auth: anyone who can reach this address can use the page "
                   "and start trainings", err=True)
    try:
        from ganforge.ui.app import Settings, launch
    except ImportError as error:
        raise GanforgeError(f"ganforge ui needs gradio: pip install 'ganforge[ui]' ({error})") from None

    launch(Settings(runs.resolve(), max_upload_mb, concurrency, trainings, data and data.resolve()), host, port,
           credentials)


def register(app: typer.Typer) -> None:
    app.command()(ui)
