"""`ganforge export`: ONNX and TorchScript files of a run's generator match PyTorch on new inputs (dynamic batch,
image size for image inputs), carry the model's metadata, and a generator that does not export is one line."""

from importlib.util import find_spec

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge.errors import GanforgeError
from ganforge.export import example_inputs, export, read_metadata, run_file

from test_sampling_commands import cli  # the CLI entry point run in this process

needs_onnx = pytest.mark.skipif(any(find_spec(p) is None for p in ("onnx", "onnxruntime", "onnxscript")),
                                reason="the 'export' extra (onnx, onnxruntime, onnxscript) is not installed")


def image_pairs(root, n: int = 4, size: int = 16):
    """A/ and B/ folders of same-named RGB images (B a brightened A)."""
    rng = np.random.default_rng(0)
    for side in ("A", "B"):
        (root / side).mkdir(parents=True)
    for i in range(n):
        a = rng.integers(0, 200, (size, size, 3), dtype=np.uint8)
        Image.fromarray(a).save(root / "A" / f"{i}.png")
        Image.fromarray(a + 50).save(root / "B" / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny two-step runs: a noise family, a conditional one, a translation one and a super-resolution one."""
    root = tmp_path_factory.mktemp("export")
    pairs = image_pairs(root / "pairs")
    data = {"dcgan": "digits", "cgan": "digits", "pix2pix": str(pairs), "srresnet": str(pairs / "A")}
    options = {"pix2pix": {"d_layers": 1}, "srresnet": {"blocks": 1, "scale": 2, "perceptual": "none"}}
    made = {}
    for name, source in data.items():
        torch.manual_seed(0)
        made[name] = ganforge.train(quiet=True, **{
            "model.name": name, "data.source": source, "data.resolution": 16, "data.limit": 32, "model.width": 8,
            "model.latent_dim": 16, "model.options": options.get(name, {}), "train.batch_size": 4,
            "train.steps": 2, "train.sample_every": 2, "train.checkpoint_every": 2, "train.ema": 0.9,
            "out": str(root), "name": name})
    return made


def largest_difference(path, model, inputs, generator=None) -> float:
    with torch.no_grad():
        expected = model.family.generate(generator or model.generator, inputs)
    return (run_file(path, inputs) - expected).abs().max().item()


@needs_onnx
@pytest.mark.parametrize("name", ["dcgan", "cgan", "pix2pix", "srresnet"])
def test_onnx_matches_pytorch(name, runs, tmp_path):
    import onnxruntime

    model = ganforge.load(runs[name])
    meta, reported = export(model, tmp_path / "g.onnx")
    assert reported < 1e-4
    inputs = example_inputs(model, 5, seed=7)  # a batch size the file was neither traced nor checked at
    assert largest_difference(tmp_path / "g.onnx", model, inputs) < 1e-4
    session = onnxruntime.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == list(inputs) == list(meta["inputs"])
    assert [o.name for o in session.get_outputs()] == ["image"]
    stored = read_metadata(tmp_path / "g.onnx")
    assert stored == meta
    assert stored["family"] == name and stored["value_range"] == [-1, 1] and stored["resolution"] == 16
    assert stored["weights"] == "ema" and stored["layout"] == "(N, C, H, W)"
    assert stored["capabilities"]["conditional"] == (name == "cgan")
    if name in ("dcgan", "cgan"):
        assert stored["latent_dim"] == 16
    if name == "cgan":
        assert stored["classes"] == [str(i) for i in range(10)] and list(inputs) == ["noise", "label"]
    if name == "srresnet":
        assert stored["scale"] == 2 and list(inputs) == ["lr"]
    if name == "pix2pix":  # the image size is free too (in multiples of the U-Net's stride)
        assert list(inputs) == ["source"] and stored["inputs"]["source"]["shape"] == ["batch", 3, "height", "width"]
        wide = example_inputs(model, 2, seed=3, size=(32, 48))
        assert largest_difference(tmp_path / "g.onnx", model, wide) < 1e-4


@needs_onnx
@pytest.mark.parametrize("name", ["biggan", "stylegan"])
def test_onnx_of_truncating_families(name, tmp_path):
    """BigGAN's truncation (an inverse normal CDF from elementary operators when exporting) and StyleGAN's
    modulated convolutions (activations modulated when exporting: ONNX has no batch-sized group count)."""
    torch.manual_seed(0)
    run = ganforge.train(quiet=True, **{
        "model.name": name, "data.source": "digits", "data.resolution": 16, "data.limit": 32, "model.width": 8,
        "model.latent_dim": 16, "model.options": {"n_mapping": 2} if name == "stylegan" else {},
        "train.batch_size": 4, "train.steps": 2, "train.ema": 0.9, "out": str(tmp_path), "name": name})
    model = ganforge.load(run)
    meta, reported = export(model, tmp_path / "g.onnx")
    assert reported < 1e-4 and meta["exporter"] == "torch.export"
    inputs = example_inputs(model, 5, seed=7)
    inputs["truncation"][0] = 1.0  # psi 1 (none) and psi below 1 in one batch
    assert largest_difference(tmp_path / "g.onnx", model, inputs) < 1e-4
    assert list(meta["inputs"]) == list(inputs) and "truncation" in inputs


@needs_onnx
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_text_gan_exports_its_decoding_step_and_the_documented_loop_reproduces_sampling(fmt, tmp_path):
    """An autoregressive sampler exports one decoding step (token, h, c -> logits, h, c); running the loop the
    metadata describes on the file, with the same uniforms, gives the very sentences the run samples."""
    from ganforge.export import run_outputs
    from ganforge.nn.text import draw, finish

    torch.manual_seed(0)
    options = {"oracle_vocabulary": 20, "oracle_length": 6, "oracle_hidden": 4, "oracle_sequences": 64,
               "embedding_dim": 8, "d_embedding": 8, "d_scale": 0.05, "mle_steps": 2, "d_steps": 1, "d_repeat": 1,
               "rollouts": 2}
    run = ganforge.train(quiet=True, **{"model.name": "seqgan", "data.source": "oracle", "model.width": 8,
                                        "model.options": options, "train.batch_size": 8, "train.steps": 3,
                                        "out": str(tmp_path), "name": "text"})
    model = ganforge.load(run)
    path = tmp_path / ("step.onnx" if fmt == "onnx" else "step.pt")
    meta, reported = export(model, path, fmt)
    assert reported < 1e-5 and meta["outputs"] == ["logits", "h_next", "c_next"] and "decoding" in meta
    assert meta["inputs"]["h"]["shape"] == [1, "batch", meta["hidden"]]
    assert len(meta["vocabulary"]) == model.generator.vocabulary
    n, uniform = 5, torch.rand(5, meta["length"], generator=torch.Generator().manual_seed(3))
    token = torch.full((n,), meta["start"], dtype=torch.long)
    h = c = torch.zeros(1, n, meta["hidden"])
    drawn = []
    for position in range(meta["length"]):
        logits, h, c = run_outputs(path, {"token": token, "h": h, "c": c})
        token = draw(logits, uniform[:, position])
        drawn.append(token)
    generator = model.generator
    expected = model.family.generate(generator, {"uniform": uniform})
    assert torch.equal(finish(torch.stack(drawn, 1), generator.eos, generator.pad), expected)


def test_torchscript_matches_pytorch_and_holds_metadata(runs, tmp_path):
    model = ganforge.load(runs["dcgan"])
    meta, reported = export(model, tmp_path / "g.pt", "torchscript", ema=False)
    assert reported < 1e-4
    inputs = example_inputs(model, 5, seed=7)
    assert largest_difference(tmp_path / "g.pt", model, inputs, model.family.generator) < 1e-4
    assert largest_difference(tmp_path / "g.pt", model, inputs) > 0  # not the EMA weights
    assert read_metadata(tmp_path / "g.pt") == meta and meta["weights"] == "live" and meta["family"] == "dcgan"


def test_generator_that_does_not_trace_is_one_line(runs, tmp_path, monkeypatch):
    model = ganforge.load(runs["dcgan"])
    # a value taken into Python while tracing becomes a constant of the file: it differs on new inputs
    monkeypatch.setattr(model.family, "generate", lambda g, inputs: g(inputs["noise"]) * float(inputs["noise"].std()))
    with pytest.raises(GanforgeError) as error:
        export(model, tmp_path / "g.pt", "torchscript")
    message = str(error.value)
    assert message.startswith("dcgan: its generator does not export to TorchScript:") and "\n" not in message
    assert not list(tmp_path.iterdir())  # no file, not even a partial one


@needs_onnx
def test_onnx_falls_back_to_the_torchscript_exporter_then_fails_in_one_line(runs, tmp_path, monkeypatch):
    model = ganforge.load(runs["dcgan"])
    # control flow on a tensor's value: torch.export cannot capture it, the TorchScript-based exporter fixes it
    monkeypatch.setattr(model.family, "generate", lambda g, inputs: g(inputs["noise"]) * (
        1.0 if float(next(g.parameters()).abs().sum()) > 0 else 0.5))
    meta, difference = export(model, tmp_path / "g.onnx")
    assert meta["exporter"] == "torchscript" and difference < 1e-4
    # an operator ONNX lacks: neither exporter writes it
    monkeypatch.setattr(model.family, "generate", lambda g, inputs: torch.special.ndtri(g(inputs["noise"]) / 2 + 0.5))
    with pytest.raises(GanforgeError) as error:
        export(model, tmp_path / "h.onnx")
    message = str(error.value)
    assert message.startswith("dcgan: its generator does not export to ONNX:") and "ndtri" in message
    assert "\n" not in message and not (tmp_path / "h.onnx").exists()


def test_export_command(runs, tmp_path, monkeypatch, capsys):
    code, out, err = cli(monkeypatch, capsys, "export", runs["dcgan"], "--out", tmp_path / "g.pt",
                         "--checkpoint", "step_000002")
    assert code == 0, err
    assert "TorchScript dcgan generator" in out and "largest difference from PyTorch" in out
    assert read_metadata(tmp_path / "g.pt")["step"] == 2
    code, _, err = cli(monkeypatch, capsys, "export", runs["dcgan"], "--format", "tflite")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "onnx, torchscript" in err
