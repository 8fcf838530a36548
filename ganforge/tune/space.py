"""The search space: a YAML mapping of dotted config keys to ranges or choices, checked against the config's types."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_type_hints

from ganforge.config import SECTIONS, RunConfig, apply_overrides, load_yaml
from ganforge.errors import GanforgeError

SPEC_KEYS = {"type", "low", "high", "log", "step", "choices"}


@dataclass
class Param:
    """One searchable setting: a dotted config key and its range or choices."""

    key: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] | None = None

    def suggest(self, trial) -> Any:
        if self.type == "categorical":
            return trial.suggest_categorical(self.key, self.choices)
        if self.type == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)

    def grid_values(self) -> list[Any]:
        """The values a grid search visits: the choices, or low..high in steps (ints step by 1 by default)."""
        if self.type == "categorical":
            return list(self.choices)
        if self.type == "int":
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.step is None:
            raise GanforgeError(f"search space key '{self.key}': the grid sampler needs discrete values; give "
                                "'choices' or a 'step' for this float range")
        count = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        return [round(self.low + i * self.step, 12) for i in range(count)]

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "key" and v not in (None, False)}


def _field_hint(key: str) -> Any:
    """The type hint of a dotted config key (None for model.options.*); unknown keys are an error."""
    section, _, name = key.partition(".")
    if section not in SECTIONS or not name:
        raise GanforgeError(f"search space key '{key}': not a config key (expected data.*, model.*, train.* "
                            "or model.options.*)")
    if section == "model" and name.startswith("options.") and len(name) > len("options."):
        return None
    hints = get_type_hints(SECTIONS[section])
    if name not in hints or name == "options":
        known = ", ".join(h for h in hints if h != "options")
        raise GanforgeError(f"search space key '{key}': unknown {section} setting (known: {known})")
    return hints[name]


def parse_space(tree: dict[str, Any], origin: str = "search space") -> list[Param]:
    """Validate a search space ({dotted key: {type, low, high, log, step} | {type: categorical, choices} | [choices]})."""
    if not isinstance(tree, dict) or not tree:
        raise GanforgeError(f"{origin}: expected a mapping of config keys to ranges, got {tree!r}")
    params = []
    for key, spec in tree.items():
        key = str(key)
        hint = _field_hint(key)
        where = f"{origin}, key '{key}'"
        if isinstance(spec, list):
            spec = {"type": "categorical", "choices": spec}
        if not isinstance(spec, dict):
            raise GanforgeError(f"{where}: expected {{type: ..., low/high or choices}}, got {spec!r}")
        unknown = set(spec) - SPEC_KEYS
        if unknown:
            raise GanforgeError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))} "
                                f"(expected {', '.join(sorted(SPEC_KEYS))})")
        kind = spec.get("type")
        if kind not in ("float", "int", "categorical"):
            raise GanforgeError(f"{where}: unknown type {kind!r} (expected float, int or categorical)")
        if kind == "categorical":
            choices = spec.get("choices")
            if not isinstance(choices, list) or not choices:
                raise GanforgeError(f"{where}: 'choices' must be a non-empty list, got {choices!r}")
            if any(not isinstance(c, (str, int, float, bool)) and c is not None for c in choices):
                raise GanforgeError(f"{where}: choices must be plain values (text, numbers, true/false, null)")
            if hint is not None:
                for choice in choices:  # the config's own type check, e.g. a text choice for an int setting
                    apply_overrides(RunConfig(), {key: choice}, where)
            params.append(Param(key, kind, choices=list(choices)))
            continue
        if "choices" in spec:
            raise GanforgeError(f"{where}: 'choices' belongs to type categorical, not {kind}")
        text = str(hint)
        if hint is not None and kind == "float" and not (hint is float or text.startswith("float")):
            raise GanforgeError(f"{where}: the setting is {text}, not a number range; use type "
                                f"{'int' if hint is int or text.startswith('int') else 'categorical'}")
        if hint is not None and kind == "int" and not (hint in (int, float) or text.startswith(("int", "float"))):
            raise GanforgeError(f"{where}: the setting is {text}, not a number range; use type categorical")
        low, high, step, log = spec.get("low"), spec.get("high"), spec.get("step"), spec.get("log", False)
        for name, value in (("low", low), ("high", high)) + ((("step", step),) if step is not None else ()):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise GanforgeError(f"{where}: '{name}' must be a number, got {value!r}")
            if kind == "int" and not float(value).is_integer():
                raise GanforgeError(f"{where}: '{name}' must be an integer for type int, got {value!r}")
        if not isinstance(log, bool):
            raise GanforgeError(f"{where}: 'log' must be true or false, got {log!r}")
        if not low < high:
            raise GanforgeError(f"{where}: empty range, low ({low}) must be below high ({high})")
        if log and low <= 0:
            raise GanforgeError(f"{where}: a log range needs low > 0, got {low}")
        if step is not None and step <= 0:
            raise GanforgeError(f"{where}: 'step' must be positive, got {step}")
        if step is not None and log and kind == "float":
            raise GanforgeError(f"{where}: a float range takes 'step' or 'log', not both")
        params.append(Param(key, kind, float(low) if kind == "float" else int(low),
                            float(high) if kind == "float" else int(high), log,
                            None if step is None else (float(step) if kind == "float" else int(step))))
    return params


def load_space(space: str | Path | dict[str, Any]) -> list[Param]:
    """A search space from a YAML file or a dict."""
    if isinstance(space, dict):
        return parse_space(space)
    return parse_space(load_yaml(space), f"search space {space}")
