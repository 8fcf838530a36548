"""Typed run configuration: data, model and training settings, YAML in and out, unknown keys rejected."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from ganforge.errors import GanforgeError


@dataclass
class DataConfig:
    source: str = "digits"  # digits | mnist | fashion-mnist | cifar10 | celeba | a folder | a .npy/.npz file
    resolution: int | None = None  # None: from the data (power of two >= the shorter side, 16..64)
    channels: int | None = None  # None: chosen from the data
    root: str | None = None  # torchvision download cache (default ~/.cache/ganforge/datasets)
    flip: bool = False  # random horizontal flips (on the device, per batch)
    limit: int | None = None  # use at most this many images


@dataclass
class ModelConfig:
    name: str = "dcgan"
    latent_dim: int = 64
    width: int = 64  # channels of the widest-but-one layer; scales both networks
    g_norm: str = "batch"  # batch | instance | none | spectral
    d_norm: str = "batch"
    loss: str = "nonsaturating"  # nonsaturating | minimax | hinge | wasserstein | least-squares
    penalty: str = "none"  # none | gp | r1
    penalty_weight: float = 10.0
    options: dict[str, Any] = field(default_factory=dict)  # family-specific settings, checked by the family


@dataclass
class TrainConfig:
    steps: int = 3000
    batch_size: int = 64
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    n_critic: int = 1
    ema: float = 0.999  # decay of the generator's moving average (warmed up over early steps); 0 turns it off
    ema_start: int = 0  # before this step the EMA copies G; from it on it averages
    amp: bool = False  # mixed precision; only used where the device supports it
    sync_batchnorm: bool = False  # batch statistics over all processes under torchrun
    channels_last: bool = False  # NHWC memory layout for convolutions (faster on CPU oneDNN and tensor cores)
    compile: bool = False  # torch.compile G and D (falls back to eager with a warning if compilation fails)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    sample_every: int = 500
    checkpoint_every: int = 500
    log_every: int = 50
    eval_every: int = 0  # score samples every N steps (0: never) and keep the best checkpoint
    eval_metrics: str = "fid"  # comma-separated; the first one picks the best checkpoint
    eval_n: int = 1000  # samples per evaluation
    eval_extractor: str | None = None  # None: ganforge's own extractor matching the data (digits / cifar10)
    keep_checkpoints: int = 2  # periodic step_N files kept besides last
    max_rollbacks: int = 3


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    out: str = "runs"
    name: str | None = None  # run folder name; default: model-data-timestamp

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


def coerce(value: Any, hint: Any, where: str) -> Any:
    """Check a YAML/CLI value against a field's type hint, converting int -> float where harmless."""
    text = str(hint)
    if value is None:
        if "None" in text:
            return None
        raise GanforgeError(f"config field {where}: expected a value, got null")
    if hint is bool or text == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise GanforgeError(f"config field {where}: expected true/false, got {value!r}")
    if hint is float or text.startswith("float"):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise GanforgeError(f"config field {where}: expected a number, got {value!r}") from None
    if hint is int or text.startswith("int"):
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise GanforgeError(f"config field {where}: expected an integer, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise GanforgeError(f"config field {where}: expected an integer, got {value!r}") from None
    if text.startswith("dict"):
        if not isinstance(value, dict):
            raise GanforgeError(f"config field {where}: expected a mapping, got {value!r}")
        return dict(value)
    if hint is str or text.startswith("str"):
        return str(value)
    return value


def apply_overrides(config: RunConfig, overrides: dict[str, Any], origin: str = "config") -> RunConfig:
    """Return a copy of `config` with nested overrides ({'train': {'steps': 5}} or {'train.steps': 5}) applied."""
    config = dataclasses.replace(
        config,
        data=dataclasses.replace(config.data),
        model=dataclasses.replace(config.model, options=dict(config.model.options)),
        train=dataclasses.replace(config.train),
    )
    for key, value in _flatten(overrides).items():
        section, _, name = key.partition(".")
        if not name:
            if section not in ("out", "name"):
                known = ", ".join([*SECTIONS, "out", "name"])
                raise GanforgeError(f"{origin}: unknown key '{section}' (expected one of: {known})")
            setattr(config, section, None if value is None else str(value))
            continue
        if section not in SECTIONS:
            raise GanforgeError(f"{origin}: unknown section '{section}' (expected one of: {', '.join(SECTIONS)})")
        target = getattr(config, section)
        if section == "model" and name.startswith("options."):
            target.options[name.split(".", 1)[1]] = value
            continue
        hints = get_type_hints(type(target))
        if name not in hints:
            known = ", ".join(f.name for f in fields(target))
            raise GanforgeError(f"{origin}: unknown key '{key}' (known {section} keys: {known})")
        if name == "options" and isinstance(value, dict):
            target.options.update(value)
            continue
        setattr(target, name, coerce(value, hints[name], key))
    return config


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict) and full in SECTIONS:
            flat.update(_flatten(value, full + "."))
        else:
            flat[full] = value
    return flat


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into a nested dict, with a clear error for missing or malformed files."""
    path = Path(path)
    if not path.is_file():
        raise GanforgeError(f"config file not found: {path}")
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise GanforgeError(f"config file {path} is not valid YAML: {str(error).splitlines()[0]}") from None
    if not isinstance(loaded, dict):
        raise GanforgeError(f"config file {path}: expected a mapping at the top level, got {type(loaded).__name__}")
    return loaded


def from_dict(tree: dict[str, Any], origin: str = "config") -> RunConfig:
    return apply_overrides(RunConfig(), tree, origin)


def save_yaml(config: RunConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


def validate(config: RunConfig) -> None:
    """Reject settings that cannot work, each with one line naming the field."""
    res = config.data.resolution
    if res is not None and (res < 8 or res > 1024 or res & (res - 1)):
        raise GanforgeError(f"data.resolution must be a power of two between 8 and 1024, got {res}")
    if config.data.channels not in (None, 1, 3):
        raise GanforgeError(f"data.channels must be 1 or 3, got {config.data.channels}")
    t = config.train
    for name in ("steps", "batch_size", "n_critic", "sample_every", "checkpoint_every", "log_every"):
        if getattr(t, name) < 1:
            raise GanforgeError(f"train.{name} must be at least 1, got {getattr(t, name)}")
    if not 0.0 <= t.ema < 1.0:
        raise GanforgeError(f"train.ema must be in [0, 1), got {t.ema}")
    for name in ("lr_g", "lr_d"):
        if getattr(t, name) <= 0:
            raise GanforgeError(f"train.{name} must be positive, got {getattr(t, name)}")
    m = config.model
    if m.latent_dim < 1 or m.width < 1:
        raise GanforgeError("model.latent_dim and model.width must be positive")
