"""Checkpoints: one safetensors file holding every tensor, with the JSON metadata and a content hash in its header.

One file per checkpoint makes the write atomic (temp file + rename) and the load free of code execution. The hash
(SHA-256 over the metadata and every tensor's name, dtype, shape and bytes) turns a flipped bit into an error instead
of a silently different model; checkpoints written before it existed load without the check.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from safetensors.torch import save as serialize

from ganforge import __version__
from ganforge.errors import GanforgeError

FORMAT = "ganforge-checkpoint-1"
TEMP_GLOB = ".*.safetensors.*"  # what a write killed before its rename leaves: .NAME.safetensors.RANDOM
# test hook of benchmarks/soak.py: pause this many seconds half-way through each write so that a kill lands there
PAUSE_ENV = "GANFORGE_SOAK_WRITE_PAUSE"
# what every ganforge checkpoint's metadata holds, with its type (read by load, resume and `ganforge info`)
REQUIRED_META = {"step": int, "config": dict, "data": dict, "info": dict, "versions": dict, "rollbacks": int,
                 "lr_scale": (int, float)}


def content_hash(tensors: dict[str, torch.Tensor], meta_json: str) -> str:
    """SHA-256 over the metadata text and every tensor's name, dtype, shape and bytes."""
    digest = hashlib.sha256(meta_json.encode())
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def save(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write tensors and JSON metadata to `path` atomically; a failed write leaves the previous file intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ready = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    meta_json = json.dumps(meta)
    data = serialize(ready, metadata={"format": FORMAT, "meta": meta_json, "sha256": content_hash(ready, meta_json)})
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    try:
        _write(tmp, data)
        os.replace(tmp, path)
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        if isinstance(error, (OSError, SafetensorError)):
            raise GanforgeError(_write_error(path, error)) from None
        raise


def _write(tmp: Path, data: bytes) -> None:
    # os.open with 0o666 lets the umask decide the mode, as for any other file (mkstemp would force 0600)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        view, half = memoryview(data), len(data) // 2
        for start, end in ((0, half), (half, len(data))):
            if start == half:
                time.sleep(float(os.environ.get(PAUSE_ENV) or 0))
            while start < end:
                start += os.write(fd, view[start:end])
        os.fsync(fd)  # the rename must not reach the disk before the data
    finally:
        os.close(fd)


def _write_error(path: Path, error: BaseException) -> str:
    code = getattr(error, "errno", None)
    if code == errno.ENOSPC or "No space left" in str(error) or "StorageFull" in str(error):
        return f"cannot write checkpoint {path}: disk full (no space left on device); the previous checkpoint is kept"
    reason = getattr(error, "strerror", None) or str(error).splitlines()[0]
    return f"cannot write checkpoint {path}: {reason}"


def remove_temporaries(folder: Path) -> list[Path]:
    """Delete the temp files of writes that were killed before their rename (call with the run locked)."""
    leftovers = sorted(folder.glob(TEMP_GLOB))
    for path in leftovers:
        path.unlink(missing_ok=True)
    return leftovers


def _header(path: Path) -> dict[str, str]:
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
    except Exception as error:  # SafetensorError, OSError, or a header that is not JSON
        raise GanforgeError(f"{path}: not a readable ganforge checkpoint ({type(error).__name__})") from None
    if header.get("format") != FORMAT:
        raise GanforgeError(f"{path}: not a ganforge checkpoint (format {header.get('format')!r}, expected {FORMAT})")
    return header


def _parse_meta(path: Path, header: dict[str, str]) -> dict[str, Any]:
    try:
        meta = json.loads(header.get("meta", ""))
    except (json.JSONDecodeError, TypeError):
        meta = None
    if not isinstance(meta, dict):
        raise GanforgeError(f"{path}: checkpoint metadata is not a JSON object (corrupt or edited)")
    for key, kind in REQUIRED_META.items():
        if not isinstance(meta.get(key), kind) or isinstance(meta.get(key), bool):
            raise GanforgeError(f"{path}: checkpoint metadata lacks a valid '{key}' (corrupt or edited)")
    for section in ("data", "model", "train"):
        if not isinstance(meta["config"].get(section), dict):
            raise GanforgeError(f"{path}: checkpoint metadata lacks config section '{section}' (corrupt or edited)")
    return meta


def read_meta(path: Path) -> dict[str, Any]:
    """Only the JSON metadata of a checkpoint (fast: no tensors are read)."""
    return _parse_meta(path, _header(path))


def load(path: Path, device: torch.device | str = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and metadata of the checkpoint at `path`, checked against its content hash and for NaN/inf."""
    if not path.is_file():
        raise GanforgeError(f"checkpoint not found: {path}")
    header = _header(path)
    meta = _parse_meta(path, header)
    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as error:
        raise GanforgeError(f"{path}: not a readable ganforge checkpoint ({type(error).__name__})") from None
    if "sha256" in header and content_hash(tensors, header["meta"]) != header["sha256"]:
        raise GanforgeError(f"checkpoint {path} is corrupt (content hash mismatch)")
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise GanforgeError(f"checkpoint {path} holds NaN/inf values in tensor '{name}'")
    return {k: v.to(device) for k, v in tensors.items()}, meta


def section(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors under `prefix.` with the prefix removed."""
    start = prefix + "."
    return {k[len(start):]: v for k, v in tensors.items() if k.startswith(start)}


def prefixed(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in state.items()}


def load_module(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str, path: Path) -> None:
    """Load `state` into `module`, turning architecture mismatches into one clear error."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        key = (missing or unexpected)[0]
        kind = "missing" if missing else "unexpected"
        raise GanforgeError(f"{path}: {what} weights do not fit this model ({kind} key '{key}'); was it trained with another model or config?")
    for key, value in state.items():
        if own[key].shape != value.shape:
            raise GanforgeError(f"{path}: {what} weight '{key}' has shape {tuple(value.shape)}, the model expects {tuple(own[key].shape)}; was it trained with another config?")
    module.load_state_dict(state)


def optimizer_state(optimizer: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimiser's state into tensors (for safetensors) and JSON-able settings."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{index}.{key}"] = value
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars, "n_tensors": len(tensors)}


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    for key, value in meta["scalars"].items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    for group in optimizer.param_groups:  # keep each state tensor in its parameter's memory layout (channels-last)
        for param in group["params"]:
            for key, value in optimizer.state.get(param, {}).items():
                if torch.is_tensor(value) and value.shape == param.shape:
                    optimizer.state[param][key] = torch.empty_like(param).copy_(value)


def trainer_state(trainer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Everything a Trainer needs to continue bit-exactly: weights, EMA, optimisers, RNG, data position, counters."""
    sampler = trainer.sampling_generator()
    tensors = prefixed("family", trainer.family.state_dict())
    if trainer.ema is not None:
        tensors |= prefixed("ema", sampler.state_dict())
    optimizers = {}
    for phase_name, optimizer in trainer.optimizers.items():
        opt_tensors, opt_meta = optimizer_state(optimizer, f"optim.{phase_name}")
        tensors |= opt_tensors
        optimizers[phase_name] = opt_meta
    batch_state = trainer.batches.state_dict()
    tensors["rng.cpu"] = torch.get_rng_state()
    tensors["rng.batches"] = batch_state["epoch_start"]
    if trainer.device.type == "cuda":
        tensors["rng.cuda"] = torch.cuda.get_rng_state(trainer.device)
    data = trainer.data
    meta = {
        "step": trainer.step, "config": trainer.config.to_dict(), "model": trainer.config.model.name,
        "versions": {"ganforge": __version__, "torch": torch.__version__},
        "optimizers": optimizers, "batch_offset": batch_state["offset"], "lr_scale": trainer.lr_scale,
        "rollbacks": trainer.rollbacks, "best": trainer.best, "has_ema": trainer.ema is not None,
        "data": {"channels": data.channels, "classes": data.classes, "n": len(data), "name": data.name},
        "info": dataclasses.asdict(trainer.family.info),
        "scaler": trainer.scaler.state_dict() if trainer.scaler is not None else None,
    }
    return tensors, meta


def restore_trainer(trainer, tensors: dict[str, torch.Tensor], meta: dict[str, Any], path: Path) -> None:
    """Put a Trainer back into the state `trainer_state` saved; refuse a checkpoint that lacks part of it."""
    lacking = [k for k in ("optimizers", "batch_offset") if k not in meta] + [
        k for k in ("rng.cpu", "rng.batches") if k not in tensors]
    if lacking:
        raise GanforgeError(f"{path}: checkpoint lacks '{lacking[0]}', so training cannot resume from it "
                            "(it can still be loaded for sampling)")
    check_same_model(meta["config"]["model"], trainer.config.to_dict()["model"], path)
    load_module(trainer.family, section(tensors, "family"), "model", path)
    if trainer.ema is not None:
        if not meta.get("has_ema"):
            raise GanforgeError(f"{path}: checkpoint has no EMA generator but this config asks for one (train.ema)")
        load_module(trainer.ema.module, section(tensors, "ema"), "EMA generator", path)
    for phase_name, optimizer in trainer.optimizers.items():
        saved, opt_tensors = meta["optimizers"].get(phase_name), section(tensors, f"optim.{phase_name}")
        if saved is None or len(opt_tensors) != saved.get("n_tensors", len(opt_tensors)):
            raise GanforgeError(f"{path}: checkpoint lacks the optimiser state of phase '{phase_name}'; resuming "
                                "would silently restart that optimiser")
        restore_optimizer(optimizer, opt_tensors, saved)
    torch.set_rng_state(tensors["rng.cpu"].cpu())
    if trainer.device.type == "cuda" and "rng.cuda" in tensors:
        torch.cuda.set_rng_state(tensors["rng.cuda"].cpu(), trainer.device)
    trainer.batches.load_state_dict({"epoch_start": tensors["rng.batches"].cpu(), "offset": meta["batch_offset"]})
    if trainer.scaler is not None and meta.get("scaler"):
        trainer.scaler.load_state_dict(meta["scaler"])
    trainer.step = int(meta["step"])
    trainer.lr_scale = float(meta["lr_scale"])
    trainer.rollbacks = int(meta["rollbacks"])
    trainer.best = dict(meta.get("best", {}))


def check_same_model(saved: dict, current: dict, path: Path) -> None:
    """Refuse a checkpoint whose model settings differ from the run's: its weights would not mean the same.
    `preset` is left out: it names where the settings came from (checkpoints older than named presets lack it),
    the resolved settings compared here are what the weights depend on."""
    for key in sorted((set(saved) | set(current)) - {"preset"}):
        if saved.get(key) != current.get(key):
            raise GanforgeError(f"{path}: checkpoint has model.{key}={saved.get(key)!r} but this run has "
                                f"{current.get(key)!r}; resume with the run's own model settings")
