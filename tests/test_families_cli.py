"""End to end through the command line in a subprocess: train, sample and evaluate every generation family, then
style-mix, reconstruct and interpolate-images. One interpreter runs the real typer app for every command (a
fresh interpreter per command would cost most of the test budget in imports)."""

import json
import subprocess
import sys

import numpy as np
from PIL import Image

FAMILIES = ["cgan", "wgan", "wgan-gp", "sngan", "stylegan", "progan", "biggan", "vaegan"]

DRIVER = r"""
import json, sys
from ganforge.cli import app
from ganforge.errors import GanforgeError

out, families = sys.argv[1], json.loads(sys.argv[2])

def cli(*args):
    app([str(a) for a in args], standalone_mode=False)

for name in families:
    cli("train", "--model", name, "--data", "digits", "--resolution", 16, "--width", 8, "--latent-dim", 24,
        "--steps", 3, "--batch-size", 16, "--limit", 64, "--out", out, "--name", name, "--quiet")
    extra = ["--class", 3] if name in ("cgan", "biggan") else []
    extra += ["--truncation", 0.7] if name in ("stylegan", "biggan") else []
    cli("sample", f"{out}/{name}", "--n", 6, "--out", f"{out}/{name}.npz", *extra)
    cli("evaluate", f"{out}/{name}", "--metrics", "fid,kid", "--n", 32, "--json", f"{out}/{name}.json")
cli("style-mix", f"{out}/stylegan", "--out", f"{out}/mix.png", "--rows", 3, "--cols", 4, "--truncation", 0.7)
cli("reconstruct", f"{out}/vaegan", f"{out}/a.png", f"{out}/b.png", "--out", f"{out}/recon")
cli("interpolate-images", f"{out}/vaegan", f"{out}/a.png", f"{out}/b.png", "--out", f"{out}/morph.png", "--frames", 5)
"""


def test_train_sample_evaluate_every_family_and_generation_commands(tmp_path, cli_env):
    for i, name in enumerate("ab"):
        pixels = np.random.default_rng(i).integers(0, 255, (20, 30), dtype=np.uint8)  # not square, not 16 px
        Image.fromarray(pixels).save(tmp_path / f"{name}.png")
    env = cli_env | {"GANFORGE_CACHE": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, "-c", DRIVER, str(tmp_path), json.dumps(FAMILIES)], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    for name in FAMILIES:
        samples = np.load(tmp_path / f"{name}.npz")
        assert samples["images"].shape == (6, 16, 16, 1)
        if name in ("cgan", "biggan"):
            assert samples["labels"].tolist() == [3] * 6
        scores = json.loads((tmp_path / f"{name}.json").read_text())
        assert np.isfinite(scores["scores"]["fid"] if "scores" in scores else scores["fid"])
    # style-mix grid: (cols + 1) x (rows + 1) cells of 16 px with 2 px padding
    assert Image.open(tmp_path / "mix.png").size == (5 * 18 + 2, 4 * 18 + 2)
    assert Image.open(tmp_path / "recon" / "a_recon.png").size == (16, 16)  # at the model resolution
    assert Image.open(tmp_path / "recon" / "grid.png").size == (2 * 18 + 2, 2 * 18 + 2)
    assert Image.open(tmp_path / "morph.png").size == (7 * 18 + 2, 20)
    # a command given the wrong family fails with one line and exit code 2
    result = subprocess.run([sys.executable, "-m", "ganforge", "style-mix", str(tmp_path / "wgan")], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {tmp_path / 'wgan'}: model wgan has no style mixing; "
                                                  "this command works with stylegan runs"]
