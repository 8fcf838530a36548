"""A trained generator as one ONNX or TorchScript file: the family's own `generate` on its named inputs, with a
dynamic batch (and image size for image inputs), the model's description stored in the file, and a check of the
file against PyTorch on new inputs."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ganforge.errors import GanforgeError

# format -> (suffix, name in messages, packages it needs beyond torch)
FORMATS = {"onnx": (".onnx", "ONNX", ("onnx", "onnxruntime", "onnxscript")),
           "torchscript": (".pt", "TorchScript", ())}
METADATA_FILE = "ganforge.json"  # the TorchScript extra file holding the metadata
TOLERANCE = 1e-3  # largest difference from PyTorch the check accepts (outputs are in [-1, 1])


class GeneratorGraph(nn.Module):
    """A family's `generate(generator, inputs)` with the named inputs given positionally: what an exported file
    runs. Only the generator is a sub-module, so the discriminator stays out of the file."""

    def __init__(self, family, generator: nn.Module, names: list[str]):
        super().__init__()
        self.generator = generator
        self.names = tuple(names)
        self.generate = family.generate  # a bound method, not a sub-module

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.generate(self.generator, dict(zip(self.names, inputs)))


def image_input(model) -> bool:
    """Whether the generator's input is an image (to translate or upscale), whose height and width are free."""
    return not model.family.capabilities.from_noise


def input_side(model) -> int:
    """The side of the image input the model was trained on (the low-resolution side for upscaling)."""
    family = model.family
    return family.info.resolution // (family.scale if family.capabilities.upscale else 1)


def size_multiple(model) -> int:
    """Image inputs' sides must be multiples of this: a translation network's stride (the exported graph keeps
    the padding branch of the size it was traced at, so it does not pad other sizes as PyTorch does)."""
    return model.family.stride if model.family.capabilities.translate else 1


def example_inputs(model, n: int, seed: int = 0, size: tuple[int, int] | None = None) -> dict[str, torch.Tensor]:
    """Random generator inputs for `n` samples, as the family's capabilities declare them: noise (labels,
    truncation psi) for noise families, an image `source` to translate, or an image `lr` to upscale, `size`
    (height, width) pixels (default: the training size)."""
    caps = model.family.capabilities
    rng = torch.Generator().manual_seed(seed)
    if caps.from_noise:
        inputs = model.sample_inputs(n, seed)
        if caps.truncation is not None:  # always an input, so the exported model keeps the trick (1: none)
            inputs["truncation"] = torch.rand(n, generator=rng).mul(0.5).add(0.5)
        return inputs
    height, width = size or (input_side(model), input_side(model))
    image = torch.rand(n, model.family.info.channels, height, width, generator=rng) * 2 - 1
    if caps.translate:
        return {"source": image}
    if caps.upscale:
        return {"lr": image}
    raise GanforgeError("its capabilities declare no generator input to export (neither from_noise, translate "
                        "nor upscale)")


def describe_inputs(inputs: dict[str, torch.Tensor], spatial: bool) -> dict[str, dict[str, Any]]:
    """Each input's dtype and shape, its dynamic axes named (batch; height and width of image inputs)."""
    described = {}
    for name, x in inputs.items():
        shape: list[Any] = ["batch", *x.shape[1:]]
        if spatial and x.ndim == 4:
            shape[2:] = ["height", "width"]
        described[name] = {"dtype": str(x.dtype).removeprefix("torch."), "shape": shape}
    return described


def metadata(model, inputs: dict[str, torch.Tensor], weights: str, exporter: str) -> dict[str, Any]:
    """What a user of the file needs to feed it and read its output."""
    from ganforge import __version__
    from ganforge.media.batches import TYPES

    family, caps, config = model.family, model.family.capabilities, model.config
    meta: dict[str, Any] = {
        "family": config.model.name, "inputs": describe_inputs(inputs, image_input(model)),
        "output": caps.modality, "layout": TYPES[caps.modality].layout, "channels": family.info.channels,
        "resolution": family.info.resolution,
        "capabilities": dataclasses.asdict(caps), "step": model.step, "weights": weights, "exporter": exporter,
        "ganforge": __version__, "torch": torch.__version__,
    }
    if caps.modality != "tokens":
        meta["value_range"] = [-1, 1]
    if caps.from_noise:
        meta["latent_dim"] = config.model.latent_dim
    if caps.conditional:
        meta["classes"] = model.classes
    if caps.truncation is not None:
        meta["truncation"] = f"one psi per sample in [0, 1]; {caps.truncation.neutral:g} is none"
    if caps.upscale:
        meta["scale"] = model.family.scale
    if image_input(model):
        meta["size_multiple"] = size_multiple(model)
    return json.loads(json.dumps(meta | family.sample_info()))  # as read back from the file: tuples as lists


def _onnx(graph: GeneratorGraph, inputs: dict[str, torch.Tensor], output: str, spatial: bool, path: Path) -> str:
    """Write the ONNX file with torch.export (torch's maintained exporter) or, for generators it cannot capture
    (e.g. control flow read from a buffer, as ProGAN's growth stage), the TorchScript-based one. Returns which."""
    args = tuple(inputs.values())
    axes = [({0: "batch", 2: "height", 3: "width"} if spatial and x.ndim == 4 else {0: "batch"}) for x in args]
    common = dict(input_names=list(inputs), output_names=[output], verbose=False)
    try:
        from torch.export import Dim

        shapes = tuple({axis: Dim.DYNAMIC for axis in named} for named in axes)
        torch.onnx.export(graph, args, str(path), dynamo=True, dynamic_shapes=(shapes,), external_data=False,
                          **common)
        return "torch.export"
    except Exception:  # noqa: BLE001 - whatever the new exporter fails on, the older one may handle
        pass
    output_axes = {0: "batch", 2: "out_height", 3: "out_width"} if spatial else {0: "batch"}
    try:
        torch.onnx.export(graph, args, str(path), dynamo=False,
                          dynamic_axes=dict(zip(inputs, axes)) | {output: output_axes}, **common)
    except Exception as error:  # noqa: BLE001
        raise GanforgeError(_reason(error)) from None
    return "torchscript"


def _stamp_onnx(path: Path, meta: dict[str, Any]) -> None:
    """Store `meta` in the file's metadata_props (strings; other values as JSON)."""
    import onnx

    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)
    onnx.save(proto, str(path))


def _torchscript(graph: GeneratorGraph, inputs: dict[str, torch.Tensor], path: Path, meta: dict[str, Any]) -> None:
    try:
        traced = torch.jit.trace(graph, tuple(inputs.values()), check_trace=False)
    except Exception as error:  # noqa: BLE001
        raise GanforgeError(_reason(error)) from None
    torch.jit.save(traced, str(path), _extra_files={METADATA_FILE: json.dumps(meta)})


def _reason(error: BaseException) -> str:
    """An exporter's or runtime's error in one short line."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [type(error).__name__]
    # the TorchScript interpreter puts its traceback first and the error itself last
    line = lines[-1] if lines[0].startswith("The following operation failed") else lines[0]
    line = line.split(" [Caused by")[0]  # the TorchScript-based ONNX exporter appends the graph value
    return line if len(line) <= 200 else line[:197] + "..."


def is_torchscript(path: str | Path) -> bool:
    """TorchScript files are zip archives; ONNX files are protobuf."""
    return zipfile.is_zipfile(path)


def _jit_load(path: str | Path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated, and still what loads its files
        return torch.jit.load(str(path), **kwargs)


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata an exported file holds (ONNX metadata_props or the TorchScript extra file)."""
    if is_torchscript(path):
        files = {METADATA_FILE: ""}
        _jit_load(path, _extra_files=files)
        return json.loads(files[METADATA_FILE])
    import onnx

    values = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    return {key: _decoded(value) for key, value in values.items()}


def _decoded(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def run_file(path: str | Path, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """The exported file's (first) output for the named `inputs`: through torch.jit.load or onnxruntime (CPU)."""
    return run_outputs(path, inputs)[0]


def run_outputs(path: str | Path, inputs: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """Every output of the exported file for the named `inputs`."""
    if is_torchscript(path):
        with torch.no_grad():
            out = _jit_load(path)(*inputs.values())
        return list(out) if isinstance(out, (tuple, list)) else [out]
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [torch.from_numpy(x) for x in session.run(None, {k: v.numpy() for k, v in inputs.items()})]


def check_file(model, graph: GeneratorGraph, path: Path, n: int = 3, seed: int = 1) -> float:
    """The largest absolute difference between the file and PyTorch on random inputs of batch `n` (image inputs
    also at a non-square size unlike the traced one)."""
    sizes = [None]
    if image_input(model):
        sizes.append((input_side(model), input_side(model) + max(size_multiple(model), 8)))
    largest = 0.0
    for size in sizes:
        inputs = example_inputs(model, n, seed, size)
        with torch.no_grad():
            expected = graph(*inputs.values())
        try:
            got = run_file(path, inputs)
        except Exception as error:  # noqa: BLE001 - the file does not run where PyTorch does
            raise GanforgeError(f"the file fails on new inputs (batch {n}): {_reason(error)}") from None
        if got.shape != expected.shape:
            raise GanforgeError(f"the file gives shape {tuple(got.shape)} where PyTorch gives "
                                f"{tuple(expected.shape)} (batch {n})")
        largest = max(largest, (got.double() - expected.double()).abs().max().item())
    return largest


def check_packages(fmt: str) -> None:
    """A one-line error naming the extra when a package the format needs is missing."""
    from importlib.util import find_spec

    missing = [package for package in FORMATS[fmt][2] if find_spec(package) is None]
    if missing:
        raise GanforgeError(f"--format {fmt} needs {', '.join(missing)}: pip install 'ganforge[export]'")


def export(model, path: str | Path, fmt: str = "onnx", ema: bool = True) -> tuple[dict[str, Any], float]:
    """Write the generator of a loaded run (`ganforge.load`; its EMA copy unless `ema` is False) to `path` as `fmt`
    (onnx | torchscript) with its metadata, and check the file against PyTorch. Returns the metadata and the
    largest absolute difference found; a generator that does not export is a one-line error."""
    if fmt not in FORMATS:
        raise GanforgeError(f"--format must be one of {', '.join(FORMATS)}, got '{fmt}'")
    check_packages(fmt)
    path = Path(path)
    name, kind, caps = model.config.model.name, FORMATS[fmt][1], model.family.capabilities
    generator = model.generator if ema else model.family.generator
    weights = "ema" if ema and model.meta.get("has_ema") else "live"
    partial = path.with_name(path.name + ".partial")  # renamed when checked: a failure leaves no file behind
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        step = model.family.decoding_step(generator)
        if step is not None:  # autoregressive: one decoding step and the loop in the metadata
            with _silenced():
                meta, difference = _export_step(model, step.eval(), partial, fmt, weights)
            os.replace(partial, path)
            return meta, difference
        inputs = example_inputs(model, 2)
        graph = GeneratorGraph(model.family, generator, list(inputs)).eval()
        with _silenced():
            if fmt == "onnx":
                exporter = _onnx(graph, inputs, caps.modality, image_input(model), partial)
                meta = metadata(model, inputs, weights, exporter)
                _stamp_onnx(partial, meta)
            else:
                meta = metadata(model, inputs, weights, "torch.jit.trace")
                _torchscript(graph, inputs, partial, meta)
            difference = check_file(model, graph, partial)
        if not difference <= TOLERANCE:
            raise GanforgeError(f"the file differs from PyTorch by {difference:.3g} on new inputs (the generator "
                                "does not trace cleanly)")
        os.replace(partial, path)
    except OSError as error:
        raise GanforgeError(f"cannot write {path}: {error.strerror or error}") from None
    except GanforgeError as error:
        raise GanforgeError(f"{name}: its generator does not export to {kind}: {error}") from None
    finally:
        partial.unlink(missing_ok=True)
    return meta, difference


def _export_step(model, step: nn.Module, path: Path, fmt: str, weights: str) -> tuple[dict[str, Any], float]:
    """Write an autoregressive family's decoding step (inputs `step.names`, outputs `step.outputs`, the batch
    dynamic in every one) and check it against PyTorch on a new batch; the sampling loop goes in the metadata."""
    from ganforge import __version__

    inputs = step.example(2, torch.Generator().manual_seed(0))
    args = tuple(inputs.values())
    with torch.no_grad():
        expected_shapes = [tuple(x.shape) for x in step(*args)]
    axes = {name: {list(x.shape).index(2): "batch"} for name, x in zip(step.names, args)}
    axes |= {name: {list(shape).index(2): "batch"} for name, shape in zip(step.outputs, expected_shapes)}
    meta = {"family": model.config.model.name, "output": "tokens", "inputs": {n: {"dtype": str(x.dtype).removeprefix(
        "torch."), "shape": ["batch" if i in axes[n] else d for i, d in enumerate(x.shape)]} for n, x in inputs.items()},
        "outputs": list(step.outputs), "layout": "(N, V) logits of one decoding step (the loop: 'decoding')",
        "step": model.step, "weights": weights, "ganforge": __version__,
        "torch": torch.__version__} | step.describe() | model.family.sample_info()
    try:
        if fmt == "onnx":
            torch.onnx.export(step, args, str(path), dynamo=False, input_names=list(step.names),
                              output_names=list(step.outputs), dynamic_axes=axes, verbose=False)
            meta = json.loads(json.dumps(meta | {"exporter": "torchscript"}))
            _stamp_onnx(path, meta)
        else:
            meta = json.loads(json.dumps(meta | {"exporter": "torch.jit.trace"}))
            traced = torch.jit.trace(step, args, check_trace=False)
            torch.jit.save(traced, str(path), _extra_files={METADATA_FILE: json.dumps(meta)})
    except Exception as error:  # noqa: BLE001
        raise GanforgeError(_reason(error)) from None
    new = step.example(3, torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = step(*new.values())
    try:
        got = run_outputs(path, new)
    except Exception as error:  # noqa: BLE001
        raise GanforgeError(f"the file fails on new inputs (batch 3): {_reason(error)}") from None
    difference = 0.0
    for a, b in zip(got, expected):
        if a.shape != b.shape:
            raise GanforgeError(f"the file gives shape {tuple(a.shape)} where PyTorch gives {tuple(b.shape)}")
        same = a == b  # forbidden ids are -inf in both
        difference = max(difference, torch.where(same, 0.0, (a.double() - b.double()).abs()).max().item())
    if not difference <= TOLERANCE:
        raise GanforgeError(f"the file differs from PyTorch by {difference:.3g} on new inputs")
    return meta, difference


@contextlib.contextmanager
def _silenced():
    """The exporters' own output kept off the terminal: deprecation and tracer warnings, progress lines, and the
    TorchScript-based ONNX exporter's graph dump on failure (written from C++ whatever `verbose` says). The check
    against PyTorch decides whether the file is good."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as sink, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
