"""The family contract, generated from the registry: every family found (in this package or through the
`ganforge.families` entry point) builds, trains a step, round-trips its checkpoint and writes samples in its
modality's format, with no list of families kept here."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge import media
from ganforge.api import resolve_config
from ganforge.config import apply_overrides
from ganforge.families import available, get, refresh

FAMILIES_DIR = Path(ganforge.__file__).parent / "families"


def image_folders(root: Path, n: int = 8, size: int = 20) -> Path:
    """A/ and B/ folders of `n` same-named RGB images (B a brightened A): paired, unpaired or plain images."""
    rng = np.random.default_rng(0)
    for side in ("A", "B"):
        (root / side).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        a = rng.integers(0, 200, (size, size, 3), dtype=np.uint8)
        Image.fromarray(a).save(root / "A" / f"{i}.png")
        Image.fromarray(a + 50).save(root / "B" / f"{i}.png")
    return root


def contract_config(name: str, tmp_path: Path):
    """The family's tiny recipe on data its capabilities ask for: image pairs to translate, images to upscale,
    labelled digits otherwise."""
    family = get(name)
    caps = family.capabilities
    source = "digits"
    if caps.translate:
        source = str(image_folders(tmp_path / "data"))
    elif caps.upscale:
        source = str(image_folders(tmp_path / "data") / "A")
    overrides = {"model.name": name, "data.source": source, "data.resolution": 16, "data.limit": 64,
                 "model.width": 8, "model.latent_dim": 16, "train.batch_size": 4, "train.steps": 2,
                 "train.log_every": 1, "train.sample_every": 2, "train.checkpoint_every": 1, "train.ema": 0.9,
                 "out": str(tmp_path), "name": name}
    return apply_overrides(resolve_config(overrides=overrides), family.tiny, f"tiny recipe of {name}")


def model_inputs(model, n: int = 3) -> dict:
    caps = model.family.capabilities
    if caps.from_noise:
        return model.sample_inputs(n, seed=5)
    image = torch.rand(n, model.family.info.channels, 16, 16, generator=torch.Generator().manual_seed(5)) * 2 - 1
    return {"source": image} if caps.translate else {"lr": image[..., :8, :8]}


@pytest.mark.parametrize("name", available())
def test_family_contract(name, tmp_path):
    torch.manual_seed(0)
    run = ganforge.train(contract_config(name, tmp_path), quiet=True)
    caps = get(name).capabilities
    # one training step ran, its losses were logged finite, and samples were written in the modality's format
    rows = (run / "metrics.csv").read_text().splitlines()
    assert len(rows) >= 3, rows
    for suffix in media.PREVIEW[caps.modality][0]:
        assert (run / "samples" / f"step_000002{suffix}").exists(), suffix
    # the checkpoint rebuilds the same model: loading twice gives the same outputs, and equals the weights saved
    a, b = ganforge.load(run), ganforge.load(run, "step_000002")
    inputs = model_inputs(a)
    out_a, out_b = a.generate(inputs), b.generate(inputs)
    tensor_a = out_a.tensor
    assert torch.equal(tensor_a, out_b.tensor)
    if caps.modality == "tokens":  # ids into the vocabulary the checkpoint keeps
        assert 0 <= int(tensor_a.min()) and int(tensor_a.max()) < len(out_a.vocabulary)
    else:
        assert torch.isfinite(tensor_a).all() and tensor_a.abs().max() <= 1
    if caps.modality == "image":
        expected = {"lr": 2 * 16 // 2} if caps.upscale else {}
        assert tensor_a.ndim == 4 and tensor_a.shape[-1] == expected.get("lr", tensor_a.shape[-1])
    # the samples are typed by the family's modality and written in each of that modality's formats
    assert out_a.modality == caps.modality
    for suffix in media.FORMATS[caps.modality]:
        target = tmp_path / "written" / f"samples{suffix}"
        media.save(out_a, target)
        assert target.exists() and (target.is_dir() or target.stat().st_size > 0), suffix
    # resuming continues from the checkpoint to a later step
    resumed = ganforge.train(resume=run, quiet=True, **{"train.steps": 3})
    assert ganforge.load(resumed).step == 3


@pytest.fixture
def toygan():
    """`ganforge/families/toygan.py`: a copy of dcgan.py with only its family name changed."""
    path = FAMILIES_DIR / "toygan.py"
    source = (FAMILIES_DIR / "dcgan.py").read_text()
    assert source.count('name = "dcgan"') == 1
    path.write_text(source.replace('name = "dcgan"', 'name = "toygan"'))
    refresh()
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
        refresh()


def test_a_copied_family_file_is_a_new_family(toygan, tmp_path, cli_env):
    assert "toygan" in available()
    run = [sys.executable, "-m", "ganforge"]
    trained = subprocess.run(run + ["train", "--model", "toygan", "--steps", "5", "--resolution", "16",
                                    "--width", "8", "--out", str(tmp_path), "--name", "toy", "--quiet"],
                             env=cli_env, capture_output=True, text=True, timeout=300)
    assert trained.returncode == 0, trained.stderr[-2000:]
    sampled = subprocess.run(run + ["sample", str(tmp_path / "toy"), "--n", "4", "--out", str(tmp_path / "g.png")],
                             env=cli_env, capture_output=True, text=True, timeout=300)
    assert sampled.returncode == 0, sampled.stderr[-2000:]
    assert Image.open(tmp_path / "g.png").size[0] > 16
    assert ganforge.load(tmp_path / "toy").config.model.name == "toygan"


PLUGIN = '''
from ganforge.families import register
from ganforge.families.dcgan import DCGAN


@register
class PluginGAN(DCGAN):
    """A family published by another package."""

    name = "plugingan"
'''


def test_a_family_from_an_installed_package(tmp_path, cli_env):
    """A package registering a family through the `ganforge.families` entry point is found, trained, sampled."""
    package = tmp_path / "pkg"
    (package / "toy_plugin").mkdir(parents=True)
    (package / "toy_plugin" / "__init__.py").write_text(PLUGIN)
    (package / "pyproject.toml").write_text(textwrap.dedent('''
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "toy-plugin"
        version = "0.1"
        [project.entry-points."ganforge.families"]
        plugingan = "toy_plugin"
        '''))
    site = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                              "--no-index", "--target", str(site), str(package)], capture_output=True, text=True,
                             timeout=300)
    assert install.returncode == 0, install.stderr[-2000:]
    env = cli_env | {"PYTHONPATH": str(site) + os.pathsep + cli_env["PYTHONPATH"]}
    script = textwrap.dedent(f'''
        import ganforge
        from ganforge.families import available
        assert "plugingan" in available(), available()
        run = ganforge.train(quiet=True, **{{"model.name": "plugingan", "data.resolution": 16, "model.width": 8,
                                           "train.steps": 2, "out": r"{tmp_path}", "name": "plug"}})
        print(tuple(ganforge.load(run).sample(2).tensor.shape))
        ''')
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "(2, 1, 16, 16)"


@pytest.mark.parametrize("name", [n for n in available() if get(n).capabilities.truncation])
def test_truncation_one_is_no_truncation(name, tmp_path, cli_env):
    """`ganforge sample RUN --truncation 1` gives the same output as without the flag, for every family that
    truncates; a lower psi changes it."""
    run = ganforge.train(contract_config(name, tmp_path), quiet=True)
    outputs = {}
    for label, flags in (("plain", []), ("one", ["--truncation", "1"]), ("half", ["--truncation", "0.5"])):
        out = tmp_path / f"{label}.npz"
        result = subprocess.run([sys.executable, "-m", "ganforge", "sample", str(run), "--n", "6", "--out", str(out),
                                 *flags], env=cli_env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        outputs[label] = np.load(out)["images"]
    assert np.array_equal(outputs["plain"], outputs["one"])
    assert not np.array_equal(outputs["plain"], outputs["half"])
