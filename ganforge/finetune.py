"""Fine-tuning: start a new run from another run's weights (`train.init`) and optionally freeze the first layers of
its discriminator (`train.freeze_d`, FreezeD: Mo et al. 2020, "Freeze the Discriminator: a Simple Baseline for
Fine-Tuning GANs"). Used by the trainer; names no family."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from ganforge.errors import GanforgeError
from ganforge.training import checkpoint as ckpt


def source_checkpoint(target: str | Path) -> Path:
    """The checkpoint file a `train.init` value names (a run folder's last checkpoint, or a file)."""
    from ganforge.api import find_checkpoint

    try:
        return find_checkpoint(target).resolve()
    except GanforgeError as error:
        raise GanforgeError(f"train.init: {error}") from None


def initialise(family: nn.Module, ema: nn.Module | None, model_name: str, source: Path) -> dict:
    """Load the generator, discriminator (the whole family state) and EMA generator of the checkpoint `source`
    into a new run's `family` and `ema` module; returns the source's metadata. Shapes that do not fit are one line
    naming the tensor. The optimisers stay fresh: the new run starts at step 0."""
    tensors, meta = ckpt.load(source)
    trained = meta["config"]["model"].get("name")
    if trained != model_name:
        raise GanforgeError(f"train.init: {source} holds a {trained} model; this run trains {model_name} "
                            "(fine-tune with --model " + str(trained) + ")")
    _load(family, ckpt.section(tensors, "family"), source)
    if ema is not None:
        # a source without an EMA copy starts the new EMA from its live generator
        state = ckpt.section(tensors, "ema") if meta.get("has_ema") else family.generator.state_dict()
        _load(ema, state, source, "ema.")
    return meta


def _load(module: nn.Module, state: dict[str, torch.Tensor], source: Path, prefix: str = "") -> None:
    own = module.state_dict()
    for key in own:
        if key not in state:
            raise GanforgeError(f"train.init: {source} has no tensor '{prefix}{key}' that this model needs; "
                                "was it trained with another architecture?")
        if tuple(state[key].shape) != tuple(own[key].shape):
            raise GanforgeError(f"train.init: tensor '{prefix}{key}' has shape {tuple(state[key].shape)} in {source}, "
                                f"expected {tuple(own[key].shape)} (model, width, latent size, channels, resolution "
                                "and classes must match the source run)")
    extra = sorted(set(state) - set(own))
    if extra:
        raise GanforgeError(f"train.init: {source} has tensor '{prefix}{extra[0]}' that this model lacks; "
                            "was it trained with other model options?")
    module.load_state_dict(state)


def layers(module: nn.Module) -> list[tuple[str, list[nn.Parameter]]]:
    """The layers of `module` as FreezeD counts them: each sub-module that holds parameters itself (a convolution,
    linear map, normalisation's affine weights, embedding; a spectrally normalised weight counts as its layer's),
    in the order the module registers them (its forward order in every ganforge discriminator)."""
    found: dict[str, list[nn.Parameter]] = {}
    for name, parameter in module.named_parameters():
        layer = name.split(".parametrizations.")[0] if ".parametrizations." in name else name.rpartition(".")[0]
        found.setdefault(layer or name, []).append(parameter)
    return list(found.items())


def frozen_parameters(discriminator: nn.Module, count: int) -> tuple[list[str], set[int]]:
    """Names and parameter ids of the first `count` layers of `discriminator` (see `layers`): not optimised."""
    if count <= 0:
        return [], set()
    found = layers(discriminator)
    if count >= len(found):
        raise GanforgeError(f"train.freeze_d: the discriminator has {len(found)} layers with parameters; freezing "
                            f"{count} would leave nothing to train (use at most {len(found) - 1})")
    names = [name for name, _ in found[:count]]
    return names, {id(p) for _, params in found[:count] for p in params}
