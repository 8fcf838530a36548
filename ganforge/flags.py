"""Command-line flags generated from the config dataclasses: a field added to a config section gets a flag (with
its default and comment in `--help`) in every command that takes training settings (`train`, `tune`), and the
flags' values become config overrides. Not a command module: commands import it, it imports none."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Optional, get_args, get_type_hints

import typer
from rich.markup import escape

from ganforge.config import FieldDoc, RunConfig, apply_overrides, field_docs, settings
from ganforge.errors import GanforgeError

# flag names users know, where a field's own name would clash (--name is the run folder's) or say less
FLAG_NAMES = {"data.source": "data", "data.root": "data-root", "model.name": "model"}
# train's flags that are not config fields of their own (and so not available as field flags)
OWN_FLAGS = {"scale", "opt", "set", "config", "resume", "dry-run", "quiet", "help"}


def _config_flags() -> dict[str, tuple[str, str, FieldDoc]]:
    """Python parameter -> (config key, flag, field) for every setting of RunConfig: a field added to a config
    dataclass gets its flag here. Mappings (model.options) are set with --opt / --set."""
    flags: dict[str, tuple[str, str, FieldDoc]] = {}
    for key, doc in settings():
        if getattr(doc.hint, "__origin__", doc.hint) is dict:
            continue
        flag = FLAG_NAMES.get(key, doc.name.replace("_", "-"))
        if flag in OWN_FLAGS or flag.replace("-", "_") in flags:  # e.g. a train.name field: --train-name
            flag = key.replace(".", "-").replace("_", "-")
        flags[flag.replace("-", "_")] = (key, flag, doc)
    return flags


CONFIG_FLAGS = _config_flags()
# CLI flag -> config field; flags map one-to-one onto config fields
TRAIN_FLAGS = {param: key for param, (key, _, _) in CONFIG_FLAGS.items()} | {"scale": "model.options.scale"}


def shown(value: Any, flag: str) -> str:
    """A default as `--help` shows it."""
    if isinstance(value, bool):
        return f"--{flag}" if value else f"--no-{flag}"
    return str(value)


def _flag_type(hint: Any) -> type:
    """The type typer parses a flag's value as (str for anything else; the config coerces it)."""
    choices = [arg for arg in get_args(hint) if arg is not type(None)] or [hint]
    return choices[0] if len(choices) == 1 and choices[0] in (bool, int, float, str) else str


def with_config_flags(function, exclude: frozenset[str] = frozenset()):
    """Give `function` an option per config setting (less the parameters named in `exclude`) after its own
    parameters; it receives them in **flags, None when not given, so presets and YAML still apply. `--help` shows
    each field's default and comment."""
    own = inspect.signature(function)
    hints = get_type_hints(function)
    parameters = [p for p in own.parameters.values() if p.kind != inspect.Parameter.VAR_KEYWORD]
    for param, (key, flag, doc) in CONFIG_FLAGS.items():
        if param in exclude or param in own.parameters:  # the command's own option of that name wins
            continue
        kind = _flag_type(doc.hint)
        section = key.partition(".")[0] if "." in key else "run"
        option = typer.Option(None, f"--{flag}/--no-{flag}" if kind is bool else f"--{flag}", help=escape(doc.help),
                              show_default=shown(doc.default, flag), rich_help_panel=f"Settings: {section}")
        hints[param] = Optional[kind]
        parameters.append(inspect.Parameter(param, inspect.Parameter.KEYWORD_ONLY, default=option,
                                            annotation=hints[param]))
    function.__signature__ = own.replace(parameters=parameters)
    function.__annotations__ = hints
    return function


def _parse_pairs(pairs: list[str], flag: str, prefix: str = "") -> dict[str, Any]:
    """key=value pairs (values parsed as YAML scalars) into {prefix + key: value}."""
    import yaml

    parsed = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise GanforgeError(f"{flag} expects key=value, got '{pair}'")
        try:
            parsed[f"{prefix}{key.strip()}"] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise GanforgeError(f"{flag} {pair}: the value is not a valid YAML scalar") from None
    return parsed


def parse_options(pairs: list[str]) -> dict[str, Any]:
    """--opt key=value pairs (values parsed as YAML scalars) into model.options overrides."""
    return _parse_pairs(pairs, "--opt", "model.options.")


def config_overrides(flags: dict[str, Any], opt: list[str], assignments: list[str]) -> dict[str, Any]:
    """The config overrides given by field flags (None: not given), --opt and --set, as {'section.key': value}."""
    overrides = {TRAIN_FLAGS[param]: value for param, value in flags.items() if value is not None}
    overrides |= parse_options(opt)
    assigned = _parse_pairs(assignments, "--set")
    apply_overrides(RunConfig(), assigned, "--set")  # unknown keys and bad values: one line naming --set
    for key in assigned.keys() & overrides.keys():
        if assigned[key] != overrides[key]:
            raise GanforgeError(f"{key} is given twice: --set {key}={assigned[key]} and a flag with {overrides[key]!r}")
    return assigned | overrides


def family_lines(family: type) -> list[str]:
    """What a family offers: capabilities, preset and --opt keys with types, defaults and descriptions."""
    capabilities = []
    for item in field_docs(type(family.capabilities)):
        value = getattr(family.capabilities, item.name)
        if value is True:
            capabilities.append(item.name)
        elif value and not isinstance(value, bool):
            shown = ", ".join(value) if isinstance(value, tuple) else getattr(value, "kind", value)
            capabilities.append(f"{item.name} {shown}")
    lines = [f"family {family.name}: {', '.join(capabilities)}",
             "preset: " + (", ".join(f"{key}={value}" for key, value in _leaves(family.preset)) or "none")]
    lines += [f"--preset {name}: " + (", ".join(f"{key}={value}" for key, value in _leaves(recipe)) or "ganforge's defaults")
              for name, recipe in family.presets.items()]
    if family.Options is None:
        return [*lines, "options: none"]
    lines.append("options (--opt key=value):")
    for item in field_docs(family.Options):
        kind = getattr(item.hint, "__name__", None) if not get_args(item.hint) else None
        default = "required" if item.default is dataclasses.MISSING else repr(item.default)
        accepts = item.metadata.get("choices") and f"one of {', '.join(map(str, item.metadata['choices']))}"
        accepts = accepts or item.metadata.get("interval") and f"in {item.metadata['interval']}"
        described = "; ".join(text for text in (item.help, accepts) if text)
        lines.append(f"  {item.name}: {kind or item.hint} = {default}" + (f"  {described}" if described else ""))
    return lines


def _leaves(tree: dict[str, Any], prefix: str = ""):
    """('model.options.blocks', 16) for every value of a nested mapping."""
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value
