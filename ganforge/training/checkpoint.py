"""Checkpoints: one safetensors file holding every tensor, with the JSON metadata in its header.

One file per checkpoint makes the write atomic (temp file + rename) and the load free of code execution.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from safetensors import safe_open

from ganforge.errors import GanforgeError

FORMAT = "ganforge-checkpoint-1"


def save(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write tensors and JSON metadata to `path` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ready = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    header = {"format": FORMAT, "meta": json.dumps(meta)}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        save_file(ready, tmp, metadata=header)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_meta(path: Path) -> dict[str, Any]:
    """Only the JSON metadata of a checkpoint (fast: no tensors are read)."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
    except (SafetensorError, OSError, Exception) as error:
        raise GanforgeError(f"{path}: not a readable ganforge checkpoint ({type(error).__name__})") from None
    if header.get("format") != FORMAT:
        raise GanforgeError(f"{path}: not a ganforge checkpoint (format {header.get('format')!r}, expected {FORMAT})")
    return json.loads(header["meta"])


def load(path: Path, device: torch.device | str = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and metadata of the checkpoint at `path`."""
    if not path.is_file():
        raise GanforgeError(f"checkpoint not found: {path}")
    meta = read_meta(path)
    return load_file(str(path), device=str(device)), meta


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
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


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
