"""Tiled super-resolution inference and the `ganforge upscale` / `sr-eval` commands."""
import subprocess
import sys

import pytest
import torch
from PIL import Image

from ganforge.errors import GanforgeError
from ganforge.nn.srresnet import SRResNet
from ganforge.tiling import tiled


def test_tiling_equals_whole_image_inference():
    torch.manual_seed(0)
    net = SRResNet(3, 8, 1, 2, "batch").eval()
    for p in net.parameters():
        p.data.normal_(0, 0.2)
    image = torch.rand(1, 3, 21, 27) * 2 - 1
    with torch.no_grad():
        whole = net(image)
    result = tiled(net, image, tile=8, overlap=12, scale=2)  # overlap covers the ~10-px receptive radius
    assert result.shape == (1, 3, 42, 54)
    assert torch.allclose(result, whole, atol=1e-5)
    seams = tiled(net, image, tile=8, overlap=0, scale=2)  # without context the tile borders differ
    assert not torch.allclose(seams, whole, atol=1e-3)


def test_tiling_checks_the_network_scale():
    with pytest.raises(GanforgeError, match="not"):
        tiled(lambda x: x, torch.zeros(1, 3, 8, 8), tile=4, overlap=0, scale=2)


def test_cli_train_upscale_and_evaluate(tmp_path, cli_env):
    hr = tmp_path / "hr"
    hr.mkdir()
    for i in range(2):
        Image.effect_mandelbrot((48, 40), (-2 + i / 3, -1.2, 1, 1.2), 60).convert("RGB").save(hr / f"{i}.png")
    run = [sys.executable, "-m", "ganforge"]
    done = subprocess.run(run + ["train", "--model", "srresnet", "--data", str(hr), "--resolution", "16",
                                 "--width", "8", "--opt", "blocks=1", "--opt", "scale=2", "--steps", "3",
                                 "--batch-size", "4", "--out", str(tmp_path), "--name", "sr", "--quiet"],
                          capture_output=True, text=True, env=cli_env, timeout=120)
    assert done.returncode == 0, done.stderr
    inputs = tmp_path / "in"
    (inputs / "sub").mkdir(parents=True)
    Image.new("RGB", (13, 7), (200, 30, 10)).save(inputs / "odd.png")
    Image.new("L", (9, 11), 90).save(inputs / "sub" / "grey.jpg")
    out = tmp_path / "out"
    done = subprocess.run(run + ["upscale", str(tmp_path / "sr"), str(inputs), "--out", str(out), "--tile", "4"],
                          capture_output=True, text=True, env=cli_env, timeout=120)
    assert done.returncode == 0, done.stderr
    with Image.open(out / "odd.png") as a, Image.open(out / "sub" / "grey.jpg") as b:
        assert a.size == (26, 14) and b.size == (18, 22)
    from ganforge.commands.superres import sr_eval, upscale

    with pytest.raises(GanforgeError, match="overwrite"):
        upscale(tmp_path / "sr", [inputs], out=inputs, tile=0, overlap=0, alpha=None, psnr=None, checkpoint="last",
                device="cpu")
    sr_eval(tmp_path / "sr", [str(hr)], tile=16, alpha=None, psnr=None, checkpoint="last", device="cpu",
            json_out=tmp_path / "s.json")
    import json

    scores = json.loads((tmp_path / "s.json").read_text())
    assert scores["n"] == 2 and scores["bicubic_psnr"] > 10 and 0 < scores["ssim"] <= 1
