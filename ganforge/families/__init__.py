"""The registry of GAN families: `create(config, info)` builds the family named by config.model.name.

A family is one module: any `ganforge/families/NAME.py` defining a class decorated with `@register` is found by
scanning this package, and other installed packages add theirs through the `ganforge.families` entry-point group
(`name = "package.module"`). Listing reads the sources and the entry-point metadata without importing torch; a
family's module is imported only when the family is used.
"""

from __future__ import annotations

import ast
import importlib
from functools import lru_cache
from pathlib import Path

from typing import TYPE_CHECKING

from ganforge.errors import GanforgeError

if TYPE_CHECKING:
    from ganforge.families.base import DataInfo, Family

ENTRY_POINT_GROUP = "ganforge.families"
REGISTRY: dict[str, type[Family]] = {}


def register(cls: type[Family]) -> type[Family]:
    """Class decorator: make a family available by its `name`."""
    if not cls.name:
        raise TypeError(f"{cls.__qualname__}: a registered family needs a `name`")
    REGISTRY[cls.name] = cls
    return cls


def _registered_names(source: str) -> list[str]:
    """`name = "..."` of every `@register` class in a module's source."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and any(
                getattr(d, "id", getattr(d, "attr", None)) == "register" for d in node.decorator_list):
            for statement in node.body:
                if (isinstance(statement, ast.Assign) and any(getattr(t, "id", None) == "name" for t in statement.targets)
                        and isinstance(statement.value, ast.Constant) and isinstance(statement.value.value, str)):
                    names.append(statement.value.value)
    return names


@lru_cache(maxsize=1)
def _builtin() -> dict[str, str]:
    """name -> module for the families in this package, read from their sources."""
    found = {}
    for path in sorted(Path(__file__).parent.glob("*.py")):
        if path.stem.startswith("_") or path.stem == "base":
            continue
        for name in _registered_names(path.read_text(encoding="utf-8")):
            found.setdefault(name, f"{__name__}.{path.stem}")
    return found


@lru_cache(maxsize=1)
def _plugins() -> dict[str, object]:
    """name -> entry point for families published by other installed packages."""
    from importlib.metadata import entry_points

    return {point.name: point for point in entry_points(group=ENTRY_POINT_GROUP)}


def refresh() -> None:
    """Forget the cached listing (after installing a plugin or adding a family file in a running process)."""
    _builtin.cache_clear()
    _plugins.cache_clear()


def available() -> list[str]:
    """Names of every family: this package's and those registered through the entry-point group."""
    return sorted(set(REGISTRY) | set(_builtin()) | set(_plugins()))


def get(name: str) -> type[Family]:
    """The family class registered under `name`, importing its module on first use."""
    if name not in REGISTRY:
        if name in _builtin():
            importlib.import_module(_builtin()[name])
        elif name in _plugins():
            _load_plugin(name)
    if name not in REGISTRY:
        raise GanforgeError(f"model.name: unknown model '{name}' (available: {', '.join(available())})")
    return REGISTRY[name]


def having(capability: str) -> list[str]:
    """Names of the families whose capabilities declare `capability` (imports every family: for messages)."""
    names = []
    for name in available():
        try:
            if getattr(get(name).capabilities, capability):
                names.append(name)
        except GanforgeError:  # a broken plugin does not hide the others
            continue
    return names


def _load_plugin(name: str) -> None:
    point = _plugins()[name]
    try:
        loaded = point.load()
    except Exception as error:  # a broken third-party package: say which one
        raise GanforgeError(f"model.name: family '{name}' from entry point {point.value} failed to import "
                            f"({type(error).__name__}: {error})") from None
    from ganforge.families.base import Family

    if isinstance(loaded, type) and issubclass(loaded, Family) and name not in REGISTRY:
        register(loaded)


def create(config, info: DataInfo) -> Family:
    """Build the family named by config.model.name for data described by `info`."""
    return get(config.model.name)(config, info)


def __getattr__(attribute: str):
    """The family contract (`Family`, `Phase`, `DataInfo`, `Capabilities`) is imported on first use, so that
    listing families does not import torch."""
    if attribute in ("Capabilities", "DataInfo", "Family", "Phase", "Truncation"):
        from ganforge.families import base

        return getattr(base, attribute)
    raise AttributeError(f"module {__name__!r} has no attribute {attribute!r}")


__all__ = ["Capabilities", "DataInfo", "Family", "Phase", "REGISTRY", "Truncation", "available", "create", "get", "having", "register",
           "refresh"]
