"""The Python API: `train(...)` a run, `load(run)` it back and `sample` from it."""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path
from typing import Any

import torch

from ganforge import media
from ganforge.config import RunConfig, _flatten, apply_overrides, load_yaml, validate
from ganforge.errors import GanforgeError
from ganforge.families import DataInfo, Family, create, get
from ganforge.training import checkpoint as ckpt
from ganforge.training.lock import LOCK_NAME

# settings that may change when a run is resumed; everything else must match the checkpoint
RESUMABLE = {"train.steps", "train.sample_every", "train.checkpoint_every", "train.log_every", "train.device",
             "train.keep_checkpoints", "train.max_rollbacks", "train.divergence", "out", "name",
             "data.stream", "data.memory_budget_mb", "data.workers"}  # streamed or not, the batches are the same


def resolve_config(config_file: str | Path | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Defaults, then the family's preset, then the YAML file, then explicit overrides (e.g. CLI flags)."""
    layers = []
    if config_file is not None:
        layers.append((load_yaml(config_file), f"config file {config_file}"))
    if overrides:
        layers.append((overrides, "option"))
    probe = RunConfig()
    for tree, origin in layers:
        probe = apply_overrides(probe, tree, origin)
    family = get(probe.model.name)
    preset = probe.model.preset
    config = apply_overrides(RunConfig(), family.recipe(preset), f"{preset} preset of {family.name}")
    for tree, origin in layers:
        config = apply_overrides(config, tree, origin)
    given = {key for tree, _ in layers for key in _flatten(tree)}
    config = memory_aware(config, given, family.capabilities.from_noise)
    validate(config)
    family.parse_options(config.model.options)  # option values checked now, not when the networks are built
    return config


def memory_aware(config: RunConfig, given: set[str], from_noise: bool) -> RunConfig:
    """From 128 px up, cap the batch size and width that the user did not give (defaults and presets alike) so a
    run fits a common GPU: batch min(64, 4096 / resolution), stylegan2-ada's automatic choice (32 at 128 px, 4 at
    1024), and, for noise-to-image families (whose networks gain a stage per doubling), width 64 up to 256 px,
    halved per doubling above; --grad-accum K restores a larger effective batch."""
    res = config.data.resolution
    if res is None or res < 128:
        return config
    caps = {"train.batch_size": max(1, min(64, 4096 // res))}
    if from_noise:
        caps["model.width"] = max(16, 64 * 256 // max(res, 256))
    lower = {key: cap for key, cap in caps.items() if key not in given
             and getattr(getattr(config, key.split(".")[0]), key.split(".")[1]) > cap}
    return apply_overrides(config, lower, f"memory-aware defaults at {res} px") if lower else config


def _run_name(config: RunConfig) -> str:
    data = Path(config.data.source).stem or "data"
    data = re.sub(r"[^A-Za-z0-9_.-]+", "-", data)
    return f"{config.model.name}-{data}-{time.strftime('%Y%m%d-%H%M%S')}"


def prepare_run(config: RunConfig) -> Path:
    """Create (or check) the run folder for a new run."""
    run_dir = Path(config.out) / (config.name or _run_name(config))
    if (run_dir / "checkpoints" / "last.safetensors").exists():
        raise GanforgeError(f"run folder {run_dir} already holds a run: resume it with --resume {run_dir}, or pick another --name")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise GanforgeError(f"cannot write to the output folder {run_dir}: {error.strerror or error}") from None
    return run_dir


def resume_config(run_dir: Path, overrides: dict[str, Any] | None = None) -> RunConfig:
    """The saved config of `run_dir`, with only resumable settings overridden."""
    path = run_dir / "checkpoints" / "last.safetensors"
    if not path.exists():
        raise GanforgeError(f"--resume {run_dir}: no checkpoint found (expected {path})")
    meta = ckpt.read_meta(path)
    saved = apply_overrides(RunConfig(), meta["config"], f"checkpoint {path}")
    flat = {}
    for key, value in (overrides or {}).items():
        if isinstance(value, dict):
            flat |= {f"{key}.{k}": v for k, v in value.items()}
        else:
            flat[key] = value
    merged = apply_overrides(saved, flat, "option")
    for key in flat:
        section, _, name = key.partition(".")
        before = getattr(getattr(saved, section), name) if name else getattr(saved, section)
        after = getattr(getattr(merged, section), name) if name else getattr(merged, section)
        if key not in RESUMABLE and before != after:
            raise GanforgeError(f"--resume {run_dir}: the checkpoint was trained with {key}={before!r}, not {after!r}; "
                                f"only {', '.join(sorted(k for k in RESUMABLE if '.' in k))} may change on resume")
    if merged.train.steps <= meta["step"]:  # nothing to train: say so and leave the run folder as it is
        raise GanforgeError(f"--resume {run_dir}: the run is already at step {meta['step']} and train.steps is "
                            f"{merged.train.steps}; pass --steps above {meta['step']} to train further")
    return merged


def train(config: RunConfig | None = None, *, config_file: str | Path | None = None, resume: str | Path | None = None,
          quiet: bool = False, callbacks=None, **overrides: Any) -> Path:
    """Train a GAN and return its run folder. Overrides use dotted keys: train(**{"train.steps": 100}) or
    nested dicts: train(train={"steps": 100}, data={"source": "digits"})."""
    from ganforge.training.trainer import Trainer

    if resume is not None:
        run_dir = Path(resume)
        config = resume_config(run_dir, overrides)
    else:
        if config is None:
            config = resolve_config(config_file, overrides)
        elif overrides:
            config = apply_overrides(config, overrides, "option")
        validate(config)  # before the run folder exists: a bad setting must not leave an empty one behind
        run_dir = _prepare_on_main(config)
    fresh = resume is None and not any(run_dir.iterdir())
    try:
        trainer = Trainer(config, run_dir, resume=resume is not None, quiet=quiet, callbacks=callbacks)
    except BaseException:
        if fresh:
            _remove_unused(run_dir)
        raise
    return trainer.fit()


def _remove_unused(run_dir: Path) -> None:
    """Delete a run folder that a failed start left with nothing but its lock file and empty checkpoint folder."""
    with contextlib.suppress(OSError):
        (run_dir / LOCK_NAME).unlink(missing_ok=True)
        (run_dir / "checkpoints").rmdir()
    with contextlib.suppress(OSError):
        run_dir.rmdir()  # fails, and keeps it, if anything else is in there


def _prepare_on_main(config: RunConfig) -> Path:
    """Create the run folder; under torchrun only rank 0 does, and every process gets its path (or its error)."""
    from ganforge.device import resolve_device
    from ganforge.training.distributed import Distributed

    dist = Distributed.from_env(resolve_device(config.train.device, "train.device"))
    if not dist.active:
        return prepare_run(config)
    outcome: tuple[str, str] = ("error", "")
    if dist.is_main:
        config.name = config.name or _run_name(config)
        try:
            outcome = ("ok", str(prepare_run(config)))
        except GanforgeError as error:
            outcome = ("error", str(error))
    outcome = dist.broadcast_object(outcome)
    if outcome[0] == "error":
        raise GanforgeError(outcome[1])
    return Path(outcome[1])


def find_checkpoint(target: str | Path, which: str = "last") -> Path:
    """A checkpoint file from a run folder (its `which` checkpoint) or a direct path."""
    path = Path(target)
    if path.is_file():
        return path
    if not path.exists():
        raise GanforgeError(f"{path}: no such run folder or checkpoint")
    candidate = path / "checkpoints" / f"{which}.safetensors"
    if not candidate.exists():
        raise GanforgeError(f"{path}: not a ganforge run folder (no checkpoints/{which}.safetensors)")
    return candidate


class GAN:
    """A trained model loaded for use: sampling, interpolation, and the data it was trained on."""

    def __init__(self, family: Family, generator: torch.nn.Module, config: RunConfig, meta: dict[str, Any],
                 path: Path, device: torch.device):
        self.family, self.generator, self.config, self.meta, self.path, self.device = (
            family, generator, config, meta, path, device)
        self.generator.eval()

    def set_options(self, values: dict[str, Any]) -> None:
        """Change inference-only model options of the loaded run (its family's `inference_options`, e.g. restore's
        window and ensemble), checked as at training; one line naming any other key."""
        allowed = self.family.inference_options
        for key in values:
            if key not in allowed:
                raise GanforgeError(f"model.options.{key} cannot change after training: {self.config.model.name} "
                                    f"takes at inference only {', '.join(allowed) or 'no options'}")
        options = {**self.config.model.options, **values}
        self.family.options = self.family.parse_options(options)
        self.config.model.options = options

    @property
    def classes(self) -> list[str]:
        return list(self.meta["data"].get("classes") or [])

    @property
    def step(self) -> int:
        return int(self.meta["step"])

    @torch.no_grad()
    def generate(self, inputs: dict[str, torch.Tensor], batch_size: int = 256) -> media.Samples:
        """Samples of the model's modality (on the CPU; images, video and audio clamped to [-1, 1], labels from
        inputs["label"]) for explicit generator inputs (e.g. from `sample_inputs`), in batches of `batch_size`."""
        n = next(iter(inputs.values())).shape[0]
        out = []
        for start in range(0, n, batch_size):
            chunk = {k: v[start:start + batch_size].to(self.device) for k, v in inputs.items()}
            out.append(self.family.generate(self.generator, chunk).cpu())
        return media.wrap(torch.cat(out), self.family.capabilities.modality, labels=inputs.get("label"),
                          **self.family.sample_info())

    def sample_inputs(self, n: int, seed: int = 0, labels: torch.Tensor | int | None = None,
                      truncation: float | None = None) -> dict[str, torch.Tensor]:
        """Generator inputs for `n` samples: noise from `seed`, class `labels` for conditional models, and the
        truncation psi in [0, 1] (1: none; None: the run's own setting) for families that truncate."""
        rng = torch.Generator().manual_seed(seed)
        if isinstance(labels, int):
            labels = torch.full((n,), labels, dtype=torch.long)
        if self.family.conditional:
            if labels is None:
                labels = torch.randint(0, max(1, len(self.classes)), (n,), generator=rng)
            elif int(labels.max()) >= len(self.classes) or int(labels.min()) < 0:
                raise GanforgeError(f"class {int(labels.max())} out of range: this model has {len(self.classes)} classes")
        elif labels is not None:
            raise GanforgeError(f"model {self.config.model.name} is unconditional: it takes no class labels")
        inputs = self.family.sample_inputs(n, rng, labels=labels)
        if truncation is not None:
            kind = self.family.capabilities.truncation
            if kind is None:
                from ganforge.families import having

                raise GanforgeError(f"truncation: model {self.config.model.name} has no truncation trick "
                                    f"({', '.join(having('truncation'))} have)")
            if not 0.0 <= truncation <= 1.0:
                raise GanforgeError(f"truncation must be in [0, 1] (1: none), got {truncation}")
            inputs.pop("truncation", None)
            if truncation != kind.neutral:
                inputs["truncation"] = torch.full((n,), float(truncation))
        return inputs

    def sample(self, n: int, seed: int = 0, labels: torch.Tensor | int | None = None,
               truncation: float | None = None, batch_size: int = 256) -> media.Samples:
        """`n` samples of the model's modality (e.g. `.tensor` images (n, C, H, W) in [-1, 1]), reproducible for a
        given seed; `truncation` as in `sample_inputs`."""
        return self.generate(self.sample_inputs(n, seed, labels, truncation), batch_size)

    def real_images(self) -> torch.Tensor:
        """The training images (re-read from the run's data source) as float in [-1, 1]."""
        return type(self.family).load_data(self.config).as_float()


def load(target: str | Path, which: str = "last", device: str = "cpu") -> GAN:
    """Load a trained run (folder or checkpoint file) for sampling; the EMA generator when the run had one.
    `device` may be auto | cpu | cuda | cuda:N | mps."""
    from ganforge.device import resolve_device

    device = str(resolve_device(device))
    path = find_checkpoint(target, which)
    tensors, meta = ckpt.load(path, device)
    config = apply_overrides(RunConfig(), meta["config"], f"checkpoint {path}")
    info = DataInfo(**meta["info"])
    family = create(config, info).to(device)
    ckpt.load_module(family, ckpt.section(tensors, "family"), "model", path)
    generator = family.generator
    if meta.get("has_ema"):
        import copy

        generator = copy.deepcopy(family.generator)
        ckpt.load_module(generator, ckpt.section(tensors, "ema"), "EMA generator", path)
    return GAN(family, generator, config, meta, path, torch.device(device))


def generator_state(target: str | Path) -> dict[str, torch.Tensor]:
    """The generator weights of a run folder or checkpoint (its EMA copy when it has one)."""
    path = find_checkpoint(target)
    tensors, meta = ckpt.load(path)
    if meta.get("has_ema"):
        return ckpt.section(tensors, "ema")
    return ckpt.section(tensors, "family.generator")
