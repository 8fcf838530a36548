"""`ganforge report`: one self-contained HTML page about a run. Heavy imports happen inside, so the CLI starts
without torch."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def report_command(
    run: Path = typer.Argument(..., help="run folder"),
    out: Optional[Path] = typer.Option(None, help="the HTML file to write; by default RUN/report.html"),
) -> None:
    """Write one HTML file (figures embedded, no server, nothing fetched) with the resolved config, loss and
    evaluation curves, the samples over training and their animation, evaluation records and the environment."""
    from ganforge.report import write

    path, figures = write(run, out)
    typer.echo(f"wrote {path}: {figures} embedded figures, {path.stat().st_size / 1e6:.1f} MB")


def register(app: typer.Typer) -> None:
    """Add `report` to the ganforge CLI."""
    app.command("report")(report_command)
