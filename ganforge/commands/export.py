"""`ganforge export`: a run's generator as an ONNX or TorchScript file, checked against PyTorch. Heavy imports
happen inside, so the CLI starts without torch."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ganforge.errors import GanforgeError

SUFFIXES = {".onnx": "onnx", ".pt": "torchscript", ".pth": "torchscript", ".ts": "torchscript"}


def export_command(
    run: Path = typer.Argument(..., help="run folder or checkpoint file"),
    fmt: Optional[str] = typer.Option(None, "--format", help="onnx | torchscript; by default from the --out suffix "
                                      "(.pt, .pth, .ts: torchscript), else onnx"),
    out: Optional[Path] = typer.Option(None, help="the file to write; by default the run folder's (or checkpoint's) name + .onnx or .pt"),
    checkpoint: str = typer.Option("last", help="which checkpoint: last, best, step_000500..."),
    ema: bool = typer.Option(True, "--ema/--live", help="the EMA generator (when the run kept one) or the live one"),
) -> None:
    """Export the generator to ONNX or TorchScript (dynamic batch, named inputs, metadata in the file) and print
    the largest difference from PyTorch on new random inputs."""
    from ganforge.export import FORMATS

    fmt = fmt or SUFFIXES.get(out.suffix.lower() if out else "", "onnx")
    if fmt not in FORMATS:
        raise GanforgeError(f"--format must be one of {', '.join(FORMATS)}, got '{fmt}'")
    import ganforge
    from ganforge.export import export

    out = out or Path((run.stem if run.is_file() else run.resolve().name) + FORMATS[fmt][0])
    model = ganforge.load(run, checkpoint)
    meta, difference = export(model, out, fmt, ema)
    inputs = ", ".join(meta["inputs"])
    typer.echo(f"wrote {out}: {FORMATS[fmt][1]} {meta['family']} generator ({meta['weights']} weights, step "
               f"{meta['step']}), inputs {inputs} -> {meta['output']} {meta['layout']}")
    typer.echo(f"largest difference from PyTorch on new inputs (batch 3): {difference:.3g}")


def register(app: typer.Typer) -> None:
    """Add `export` to the ganforge CLI."""
    app.command("export")(export_command)
