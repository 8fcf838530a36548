"""The `ganforge` command line: thin wrappers that turn flags into configs and call the Python API."""

from __future__ import annotations

import dataclasses
import functools
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand

from ganforge.config import RunConfig, apply_overrides
from ganforge.flags import CONFIG_FLAGS, config_overrides, family_lines, shown, with_config_flags
from ganforge.errors import GanforgeError


def _print_version(value: bool) -> None:
    if value:
        from ganforge import __version__

        print(f"ganforge {__version__}")
        raise typer.Exit()


app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                       help="print the version and exit")) -> None:
    """Train, sample, evaluate and use GANs on your own data."""


console = Console()

class _TrainCommand(TyperCommand):
    """`train --help` lists the families; with --model NAME also that family's preset defaults and --opt keys."""

    def parse_args(self, ctx, args):
        ctx.meta["ganforge.args"] = list(args)  # --help is handled before --model is parsed: keep the raw args
        return super().parse_args(ctx, args)

    def format_help(self, ctx, formatter):
        from ganforge import families

        args = ctx.meta.get("ganforge.args", [])
        name = next((value for flag, value in zip(args, args[1:]) if flag == "--model"), None)
        name = next((arg.split("=", 1)[1] for arg in args if arg.startswith("--model=")), name)
        for param in self.params:
            if param.name == "model":
                param.help = f"{param.help}; one of: {', '.join(families.available())}"
        if name is not None:
            family = families.get(name)
            preset = apply_overrides(RunConfig(), family.preset, f"preset of {name}")
            for param in self.params:
                key, flag, doc = CONFIG_FLAGS.get(param.name, (None, None, None))
                value = functools.reduce(getattr, key.split("."), preset) if key else None
                if key and value != doc.default:
                    param.show_default = f"{shown(value, flag)}, {name} preset"
            self.epilog = escape("\n".join(family_lines(family)))
        return super().format_help(ctx, formatter)


@app.command(cls=_TrainCommand)
@with_config_flags
def train(
    scale: Optional[int] = typer.Option(None, help="upscaling factor of super-resolution families, 2 or 4 "
                                        "(model.options.scale)", show_default="the family's"),
    opt: list[str] = typer.Option([], help="family option key=value (model.options.KEY), repeatable; "
                                  "ganforge info --model NAME lists the keys"),
    assignments: list[str] = typer.Option([], "--set", help="any setting section.key=value, repeatable, "
                                          "e.g. --set train.eval_every=500"),
    config: Optional[Path] = typer.Option(None, help="YAML config file; flags override it"),
    resume: Optional[Path] = typer.Option(None, help="continue the run in this folder"),
    dry_run: bool = typer.Option(False, "--dry-run", help="print the fully resolved config (family options "
                                 "included) and exit"),
    quiet: bool = typer.Option(False, help="no progress output"),
    **flags: Any,
) -> None:
    """Train a GAN; writes config, checkpoints, sample grids, TensorBoard logs and metrics.csv to the run folder.

    Defaults shown are ganforge's own; a family's preset (its paper's recipe) overrides some of them:
    `ganforge train --model NAME --help` shows them. A --config file overrides both, and flags win.
    """
    import yaml

    from ganforge import api

    overrides = config_overrides(flags | {"scale": scale}, opt, assignments)
    if resume is not None:
        if config is not None:
            raise GanforgeError("--resume uses the run's saved config; drop --config")
        resolved = api.resume_config(resume, overrides)
    else:
        resolved = api.resolve_config(config, overrides)
    if dry_run:
        console.print(yaml.safe_dump(with_option_defaults(resolved).to_dict(), sort_keys=False), end="", markup=False)
        return
    run_dir = api.train(resolved, resume=resume, quiet=quiet, **({} if resume is None else overrides))
    console.print(f"run folder: {run_dir}", markup=False)


def with_option_defaults(config: RunConfig) -> RunConfig:
    """A checked copy of `config` whose model.options hold every option of its family, defaults filled in."""
    from ganforge.config import validate
    from ganforge.families import get

    validate(config)
    family = get(config.model.name)
    options = family.parse_options(config.model.options)  # the family's own check, without building it
    model = dataclasses.replace(config.model, options={} if options is None else dataclasses.asdict(options))
    return dataclasses.replace(config, model=model)


@app.command()
def info(
    run: Optional[Path] = typer.Argument(None, help="run folder or checkpoint file"),
    model: Optional[str] = typer.Option(None, help="describe this family instead: capabilities, preset, --opt keys"),
) -> None:
    """Show a run's model, data, progress, checkpoints and latest metrics, or what a family (--model) offers."""
    import csv

    from ganforge import families

    if (run is None) == (model is None):
        raise GanforgeError(f"info: give a run folder or --model NAME (one of: {', '.join(families.available())})")
    if model is not None:
        for line in family_lines(families.get(model)):
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        return

    from rich.table import Table

    from ganforge import api
    from ganforge.training import checkpoint as ckpt

    path = api.find_checkpoint(run)
    meta = ckpt.read_meta(path)
    config = apply_overrides(RunConfig(), meta["config"], f"checkpoint {path}")  # missing keys: the defaults
    m, data = config.model, meta.get("data") or {}
    table = Table(show_header=False, title=str(run))
    table.add_row("model", f"{m.name} (latent {m.latent_dim}, width {m.width}, loss {m.loss}, penalty {m.penalty})")
    table.add_row("data", f"{data.get('name', '?')}: {data.get('n', '?')} images, {data.get('channels', '?')} "
                          f"channel(s), {config.data.resolution} px, {len(data.get('classes') or [])} classes")
    table.add_row("progress", f"step {meta['step']} of {config.train.steps}, rollbacks {meta.get('rollbacks', 0)}, "
                              f"lr x{meta.get('lr_scale', 1.0):g}")
    table.add_row("versions", ", ".join(f"{k} {v}" for k, v in (meta.get("versions") or {}).items()))
    if path.parent.name == "checkpoints":
        table.add_row("checkpoints", ", ".join(p.stem for p in sorted(path.parent.glob("*.safetensors"))))
        metrics = path.parent.parent / "metrics.csv"
        if metrics.exists():
            with metrics.open(newline="") as handle:
                rows = list(csv.DictReader(handle))
            if rows:
                table.add_row("latest", ", ".join(f"{k} {_number(v)}" for k, v in rows[-1].items() if v))
    if meta.get("best"):
        table.add_row("best", ", ".join(f"{k} {v}" for k, v in meta["best"].items()))
    console.print(table)


def _number(text: str) -> str:
    try:
        return f"{float(text):.4g}"
    except ValueError:
        return text


# modules adding commands of their own (image-to-image, super-resolution, tuning...): each defines
# `register(app)`; a module missing from this install is skipped
COMMAND_MODULES = (
    "ganforge.commands.sampling",
    "ganforge.commands.generation",
    "ganforge.commands.translation",
    "ganforge.commands.superres",
    "ganforge.commands.tune",
    "ganforge.commands.evaluate",
    "ganforge.commands.ui",
    "ganforge.commands.export",
    "ganforge.commands.report",
    "ganforge.commands.prepare",
    "ganforge.commands.project",
)


def _register_commands() -> None:
    import importlib
    from importlib.util import find_spec

    for module in COMMAND_MODULES:
        try:
            present = find_spec(module) is not None
        except ModuleNotFoundError:
            present = False
        if present:
            importlib.import_module(module).register(app)


_register_commands()


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2, never a traceback; Ctrl-C before
    training has started (imports included) prints `interrupted` and exits 130."""
    try:
        result = typer.main.get_command(app).main(standalone_mode=False)
        sys.exit(result if isinstance(result, int) else 0)  # --help and --version return their exit code
    except GanforgeError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as error:
        kinds = {kind.__name__ for kind in type(error).__mro__}  # click's, or the copy newer typers vendor
        if "Abort" in kinds:
            print("interrupted", file=sys.stderr)
            sys.exit(130)
        if "NoArgsIsHelpError" in kinds:  # bare `ganforge`: the help was printed, nothing more to say
            sys.exit(0)
        if "UsageError" not in kinds:
            raise
        context = getattr(error, "ctx", None)  # a malformed flag or command: one line, as any other bad input
        where = f" (see ganforge {context.info_name} --help)" if context is not None and context.parent else ""
        print(f"error: {error.format_message()}{where}", file=sys.stderr)
        sys.exit(2)
    except SystemExit as exit:
        if exit.code == 130:  # typer turns a KeyboardInterrupt inside a command into a silent exit 130
            print("interrupted", file=sys.stderr)
        raise


if __name__ == "__main__":
    main()
