"""Typed run configuration: data, model and training settings, YAML in and out, unknown keys rejected."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import math
import re
import textwrap
import tokenize
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from ganforge.errors import GanforgeError


@dataclass
class DataConfig:
    source: str = "digits"  # digits | mnist | fashion-mnist | cifar10 | celeba | a folder | a .npy/.npz file
    resolution: int | None = None  # image size, a power of two; None: from the data (>= its shorter side, 16..64)
    channels: int | None = None  # 1 (grey) or 3 (RGB); None: from the data
    root: str | None = None  # torchvision download cache (default ~/.cache/ganforge/datasets)
    flip: bool = False  # random horizontal flips (on the device, per batch)
    limit: int | None = None  # use at most this many images
    stream: bool = False  # read images lazily in DataLoader workers instead of decoding the whole set into memory
    # (chosen automatically when the decoded set would exceed memory_budget_mb)
    memory_budget_mb: float = 4096  # the most memory a decoded in-memory data set may take; larger ones stream
    workers: int = 2  # worker processes decoding and resizing streamed images (0: in the training process)
    transparent: bool = False  # keep the alpha channel (4 channels, RGBA) instead of putting images on white


@dataclass
class ModelConfig:
    name: str = "dcgan"  # GAN family (its --opt keys: ganforge info --model NAME)
    preset: str = "default"  # the family's recipe under your settings: default (ganforge's, tuned for small budgets where it differs) | paper (the paper's) | one the family names (ganforge info --model NAME)
    latent_dim: int = 64  # size of the noise vector z the generator starts from
    width: int = 64  # channels of the widest-but-one layer; scales both networks
    g_norm: str = "batch"  # normalisation in the generator: batch | instance | none | spectral
    d_norm: str = "batch"  # normalisation in the discriminator: batch | instance | none | spectral
    loss: str = "nonsaturating"  # nonsaturating | minimax | hinge | wasserstein | least-squares
    penalty: str = "none"  # none | gp | r1
    penalty_weight: float = 10.0  # weight of the gradient penalty (gp) or R1 term
    options: dict[str, Any] = field(default_factory=dict)  # family-specific settings, checked by the family


@dataclass
class TrainConfig:
    steps: int = 3000  # total training steps of the run (also when resuming)
    batch_size: int = 64  # images per step (under torchrun: the global batch, split across processes)
    lr_g: float = 2e-4  # generator learning rate
    lr_d: float = 2e-4  # discriminator learning rate
    beta1: float = 0.5  # Adam's first-moment decay
    beta2: float = 0.999  # Adam's second-moment decay
    n_critic: int = 1  # discriminator steps per generator step
    grad_accum: int = 1  # micro-batches of batch_size per optimiser step (effective batch: batch_size * grad_accum)
    ema: float = 0.999  # decay of the generator's moving average (warmed up over early steps); 0 turns it off
    ema_start: int = 0  # before this step the EMA copies G; from it on it averages
    amp: bool = False  # mixed precision; only used where the device supports it
    sync_batchnorm: bool = False  # batch statistics over all processes under torchrun
    channels_last: bool = False  # NHWC memory layout for convolutions (faster on CPU oneDNN and tensor cores)
    compile: bool = False  # torch.compile G and D (falls back to eager with a warning if compilation fails)
    seed: int = 0  # seeds the weights, data order and noise
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    sample_every: int = 500  # write a sample grid every N steps
    checkpoint_every: int = 500  # write a checkpoint every N steps
    log_every: int = 50  # log losses and speed every N steps
    eval_every: int = 0  # score samples every N steps (0: never) and keep the best checkpoint
    eval_metrics: str = "fid"  # comma-separated; the first one picks the best checkpoint
    eval_n: int = 1000  # samples per evaluation
    eval_extractor: str | None = None  # None: ganforge's own extractor matching the data (digits / cifar10)
    keep_checkpoints: int = 2  # periodic step_N files kept besides last
    max_rollbacks: int = 3  # after NaN or divergence, roll back to the last good checkpoint at most this often
    divergence: float = 1e4  # roll back when a loss or weight norm exceeds this many times its recent median (0: off)
    init: str | None = None  # fine-tune: start from this run's (folder or checkpoint) G, D and EMA weights,
    # fresh optimisers, step 0; the resolved config records the checkpoint file
    freeze_d: int = 0  # FreezeD: leave the discriminator's first N layers (modules holding parameters) untrained


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    out: str = "runs"  # folder holding the run folders
    name: str | None = None  # run folder name; default: model-data-timestamp

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


@dataclass(frozen=True)
class FieldDoc:
    """One field of a config dataclass, as `--help` and `ganforge info` describe it."""

    name: str
    hint: Any  # the resolved type hint
    default: Any  # dataclasses.MISSING when the field has none
    help: str  # the comment after the field in its class's source ("" when there is none)
    metadata: Any = None  # the field's metadata mapping (e.g. the values it accepts)


def field_docs(cls: type) -> list[FieldDoc]:
    """The fields of dataclass `cls` (a config section, a family's Options) with type, default and comment."""
    hints = get_type_hints(cls)
    comments: dict[str, str] = {}
    for klass in reversed(cls.__mro__):  # a subclass's comment wins over its base's
        if dataclasses.is_dataclass(klass):
            comments.update(_field_comments(klass))
    return [FieldDoc(item.name, hints[item.name],
                     item.default if item.default_factory is dataclasses.MISSING else item.default_factory(),
                     comments.get(item.name, ""), item.metadata) for item in fields(cls)]


def _field_comments(cls: type) -> dict[str, str]:
    """field name -> the comment ending its line, with the comment-only lines right below it that continue it, in
    the class's source (nothing when the source is unavailable)."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    tokens = [t for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.COMMENT]
    comments = {token.start[0]: token.string.lstrip("#").strip() for token in tokens}
    continuations = {token.start[0] for token in tokens if token.line.lstrip().startswith("#")}
    found = {}
    for node in ast.parse(source).body[0].body:
        line = node.end_lineno
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and line in comments:
            parts = [comments[line]]
            while line + 1 in continuations:
                line += 1
                parts.append(comments[line])
            found[node.target.id] = " ".join(parts)
    return found


def settings() -> list[tuple[str, FieldDoc]]:
    """Every setting of a run as (key, field), sections expanded: ('data.source', ...), ..., ('out', ...)."""
    found = []
    for doc in field_docs(RunConfig):
        if dataclasses.is_dataclass(doc.hint):
            found += [(f"{doc.name}.{item.name}", item) for item in field_docs(doc.hint)]
        else:
            found.append((doc.name, doc))
    return found


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
            number = float(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None:
            raise GanforgeError(f"config field {where}: expected a number, got {value!r}")
        if not math.isfinite(number):
            raise GanforgeError(f"config field {where}: expected {_finite(where)}, got {value!r}")
        return number
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
        if isinstance(value, (dict, list, tuple, set)):
            raise GanforgeError(f"config field {where}: expected a string, got a {_kind(value)} {value!r}")
        return str(value)
    return value


def _kind(value: Any) -> str:
    """'mapping', 'list' or the type name, for messages about YAML values of the wrong shape."""
    return "mapping" if isinstance(value, dict) else "list" if isinstance(value, (list, tuple)) else type(value).__name__


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
            if section in SECTIONS:
                if value is None:  # `train:` with every key commented out
                    continue
                raise GanforgeError(f"{origin}: section '{section}' expects a mapping of {section} settings, "
                                    f"got a {_kind(value)} ({value!r})")
            if section not in ("out", "name"):
                known = ", ".join([*SECTIONS, "out", "name"])
                raise GanforgeError(f"{origin}: unknown key '{section}' (expected one of: {known})")
            setattr(config, section, coerce(value, str | None, section))
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


# Allowed ranges of numeric fields, as intervals ("[1, inf)": at least 1); None values (auto) are not checked.
LOSSES = ("nonsaturating", "minimax", "hinge", "wasserstein", "least-squares")
PENALTIES = ("none", "gp", "r1")
NORMS = ("batch", "instance", "none", "spectral")
CHOICES = {"model.loss": LOSSES, "model.penalty": PENALTIES, "model.g_norm": NORMS, "model.d_norm": NORMS}
DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def option(default: Any, *, choices: tuple | None = None, interval: str | None = None, check=None) -> Any:
    """A family option (a field of its Options dataclass) with the values it accepts: `choices`, an `interval`
    such as "[0, 1)", or a `check(value)` raising GanforgeError; checked with the config, before anything is
    built, and listed by `ganforge info`."""
    return field(default=default, metadata={"choices": choices, "interval": interval, "check": check})


def check_value(key: str, value: Any, interval: str | None = None, choices: tuple | None = None) -> None:
    """One line naming `key`, what it accepts and `value`, unless `value` is within `interval` / `choices`."""
    if isinstance(value, float) and not math.isfinite(value):
        raise GanforgeError(f"{key} must be {'a finite number ' + _expected(interval) if interval else 'finite'}, "
                            f"got {value}")
    if interval and value is not None and not _in_range(value, interval):
        raise GanforgeError(f"{key} must be {_expected(interval)}, got {value}")
    if choices and value not in choices:
        raise GanforgeError(f"{key} must be one of {', '.join(map(str, choices))}; got {value!r}")


RANGES = {
    "data.limit": "[1, inf)",
    "data.memory_budget_mb": "[0, inf)",
    "data.workers": "[0, inf)",
    "model.latent_dim": "[1, inf)",
    "model.width": "[1, inf)",
    "model.penalty_weight": "[0, inf)",
    "train.steps": "[1, inf)",
    "train.batch_size": "[1, inf)",
    "train.lr_g": "(0, inf)",
    "train.lr_d": "(0, inf)",
    "train.beta1": "[0, 1)",  # Adam's betas (Kingma & Ba 2015): 1 or more never forgets, negative is undefined
    "train.beta2": "[0, 1)",
    "train.n_critic": "[1, inf)",
    "train.grad_accum": "[1, inf)",
    "train.ema": "[0, 1)",
    "train.ema_start": "[0, inf)",
    "train.seed": "[0, 2^63)",  # torch generators take 64 bits; derived seeds add small offsets
    "train.sample_every": "[1, inf)",
    "train.checkpoint_every": "[1, inf)",
    "train.log_every": "[1, inf)",
    "train.eval_every": "[0, inf)",
    "train.keep_checkpoints": "[0, inf)",
    "train.max_rollbacks": "[0, inf)",
    "train.freeze_d": "[0, inf)",
}


def _in_range(value: float, interval: str) -> bool:
    low, high = (_bound(v) for v in interval[1:-1].split(","))
    above = value > low if interval[0] == "(" else value >= low
    below = value < high if interval[-1] == ")" else value <= high
    return above and below


def _bound(text: str) -> float:
    base, _, power = text.strip().partition("^")
    return float(base) ** float(power) if power else float(base)


def _expected(interval: str) -> str:
    """'[1, inf)' -> 'at least 1', '(0, inf)' -> 'greater than 0', otherwise 'in [0, 1)'."""
    low, high = (v.strip() for v in interval[1:-1].split(","))
    if high == "inf":
        return f"at least {low}" if interval[0] == "[" else f"greater than {low}"
    return f"in {interval}"


def _finite(key: str) -> str:
    return f"a finite number {_expected(RANGES[key])}" if key in RANGES else "a finite number"


def validate(config: RunConfig) -> None:
    """Reject settings that cannot work, each with one line naming the field, its allowed range and the value."""
    for section in SECTIONS:
        for item in fields(getattr(config, section)):
            key = f"{section}.{item.name}"
            check_value(key, getattr(getattr(config, section), item.name), RANGES.get(key), CHOICES.get(key))
    if not DEVICE.fullmatch(config.train.device):
        raise GanforgeError(f"train.device: unknown device '{config.train.device}' (expected auto, cpu, cuda, cuda:N "
                            "or mps)")
    if config.name is not None and (not config.name.strip() or config.name in (".", "..")
                                    or any(sep in config.name for sep in "/\\")):
        raise GanforgeError(f"name must be a plain folder name inside --out (no '/', '\\' or '..'), got "
                            f"{config.name!r}")
    res = config.data.resolution
    if res is not None and (res < 8 or res > 1024 or res & (res - 1)):
        raise GanforgeError(f"data.resolution must be a power of two between 8 and 1024, got {res}")
    if config.data.channels not in (None, 1, 3) and not (config.data.transparent and config.data.channels == 4):
        raise GanforgeError(f"data.channels must be 1 or 3 (4 with data.transparent), got {config.data.channels}")
    if config.data.transparent and config.data.channels not in (None, 4):
        raise GanforgeError(f"data.transparent keeps an alpha channel (4 channels, RGBA); data.channels must be unset "
                            f"or 4, got {config.data.channels}")
    t = config.train
    if t.eval_every > 0 and t.eval_n < 2:  # a score needs statistics over at least 2 samples
        raise GanforgeError(f"train.eval_n must be at least 2 when train.eval_every is on ({t.eval_every}), "
                            f"got {t.eval_n}")
    if t.divergence != 0 and not t.divergence > 1:  # a factor of 1 or less would flag ordinary noise
        raise GanforgeError(f"train.divergence must be 0 (off) or greater than 1, got {t.divergence}")
