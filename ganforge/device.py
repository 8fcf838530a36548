"""Which torch device a setting names: 'auto' picks CUDA, then MPS, then the CPU; a device that is not there is a
one-line error naming the setting."""

from __future__ import annotations

import torch

from ganforge.errors import GanforgeError


def resolve_device(name: str, setting: str = "--device") -> torch.device:
    """The device `name` (auto | cpu | cuda | cuda:N | mps) means on this machine; `setting` names it in errors."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise GanforgeError(f"{setting}: unknown device '{name}' (expected auto, cpu, cuda, cuda:N or mps)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GanforgeError(f"{setting} is '{name}' but CUDA is not available on this machine")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise GanforgeError(f"{setting} is '{name}' but this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise GanforgeError(f"{setting} is '{name}' but MPS is not available on this machine")
    return device
