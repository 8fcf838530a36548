"""Translation inference: stride padding and tiling restore the input size; the CLI keeps names and sizes."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge.errors import GanforgeError
from ganforge.nn.unet import UNetGenerator
from ganforge.tiling import pad_run, tiled
from ganforge.translate import paired_scores, translate_files


def test_pad_run_restores_odd_sizes():
    torch.manual_seed(0)
    calls = []

    def net(x):
        calls.append(tuple(x.shape[-2:]))
        return x[:, :1] * 2

    x = torch.randn(1, 3, 13, 30)
    out = pad_run(net, x, 8)
    assert calls == [(16, 32)] and out.shape == (1, 1, 13, 30)
    torch.testing.assert_close(out, x[:, :1] * 2)


def test_tiles_equal_the_whole_image_result_for_a_local_net():
    torch.manual_seed(0)
    net = torch.nn.Conv2d(3, 2, 1)  # pointwise: tiles cannot differ from the whole image
    x = torch.randn(1, 3, 70, 101)
    with torch.no_grad():
        whole = net(x)
    result = tiled(net, x, tile=32, overlap=8, stride=4)
    torch.testing.assert_close(result, whole, rtol=1e-5, atol=1e-5)


def test_tiled_unet_keeps_size_and_stays_close_to_the_whole_image():
    torch.manual_seed(0)
    net = UNetGenerator(3, 3, depth=2, width=4, dropout=0.0).eval()
    x = torch.nn.functional.interpolate(torch.randn(1, 3, 9, 12), size=(45, 61), mode="bilinear")
    with torch.no_grad():
        whole = net(x)
    seams = (tiled(net, x, tile=24, overlap=0, stride=net.stride) - whole).abs()
    result = tiled(net, x, tile=24, overlap=8, stride=net.stride)
    assert result.shape == whole.shape
    error = (result - whole).abs()
    assert error.mean() < 0.05 * whole.abs().mean()
    assert error.max() < 0.5 * seams.max()  # context around each tile hides the seams
    with pytest.raises(GanforgeError, match="multiple of the generator's stride"):
        tiled(net, x, tile=30, overlap=8, stride=4)


def _write_pairs(root, n=6, size=20):
    rng = np.random.default_rng(0)
    for i in range(n):
        clean = Image.fromarray(rng.integers(0, 256, (5, 5, 3), dtype=np.uint8)).resize((size, size))
        for side, picture in (("A", clean.convert("L").convert("RGB")), ("B", clean)):
            (root / side).mkdir(parents=True, exist_ok=True)
            picture.save(root / side / f"{i}.png")


def _inputs(root):
    (root / "deep").mkdir(parents=True)
    Image.fromarray(np.zeros((23, 37, 3), np.uint8)).save(root / "odd.png")
    Image.fromarray(np.zeros((50, 70, 3), np.uint8)).save(root / "deep" / "big.jpg")


def test_cli_translate_keeps_names_and_sizes(tmp_path):
    _write_pairs(tmp_path / "data")
    train = subprocess.run([sys.executable, "-m", "ganforge", "train", "--model", "pix2pix", "--data",
                            str(tmp_path / "data"), "--resolution", "16", "--width", "4", "--steps", "2",
                            "--batch-size", "2", "--out", str(tmp_path / "runs"), "--name", "r", "--quiet",
                            "--opt", "d_layers=1", "--opt", "unet_depth=3"], capture_output=True, text=True)
    assert train.returncode == 0, train.stderr
    _inputs(tmp_path / "in")
    done = subprocess.run([sys.executable, "-m", "ganforge", "translate", str(tmp_path / "runs" / "r"),
                           str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--tile", "32", "--overlap", "8",
                           "--targets", str(tmp_path / "in")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert Image.open(tmp_path / "out" / "odd.png").size == (37, 23)
    assert Image.open(tmp_path / "out" / "deep" / "big.jpg").size == (70, 50)
    assert "PSNR" in done.stdout and "SSIM" in done.stdout and "improved" in done.stdout
    wrong = subprocess.run([sys.executable, "-m", "ganforge", "translate", str(tmp_path / "runs" / "r"),
                            str(tmp_path / "in"), "--out", str(tmp_path / "o2"), "--direction", "BtoA"],
                           capture_output=True, text=True)
    assert wrong.returncode == 2 and "trained AtoB only" in wrong.stderr


def test_cyclegan_translates_both_ways(tmp_path):
    _write_pairs(tmp_path / "data")
    run = ganforge.train(quiet=True, data={"source": str(tmp_path / "data"), "resolution": 16},
                         model={"name": "cyclegan", "width": 4, "options": {"n_blocks": 1, "d_layers": 1}},
                         train={"steps": 2, "batch_size": 2}, out=str(tmp_path / "runs"), name="c")
    model = ganforge.load(run)
    _inputs(tmp_path / "in")
    a2b = translate_files(model, [tmp_path / "in"], tmp_path / "ab", "AtoB", tile=32, overlap=8)
    b2a = translate_files(model, [tmp_path / "in" / "odd.png"], tmp_path / "ba", "BtoA")
    assert sorted(p.relative_to(tmp_path / "ab").as_posix() for p in a2b) == ["deep/big.jpg", "odd.png"]
    assert Image.open(b2a[0]).size == (37, 23)
    assert not np.array_equal(np.asarray(Image.open(b2a[0])), np.asarray(Image.open(tmp_path / "ab" / "odd.png")))


def test_paired_scores_count_the_images_that_improved(tmp_path):
    # constant images: the PSNR of an offset d (of 255) is 20 log10(255 / d), so every number is known by hand
    offsets = {"a.png": (40, 10), "b.png": (20, 5), "c.png": (10, 20)}  # (input offset, output offset)
    for name, (given, out) in offsets.items():
        for folder, value in (("truth", 100), ("in", 100 + given), ("out", 100 + out)):
            (tmp_path / folder).mkdir(exist_ok=True)
            Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(tmp_path / folder / name)
    outputs = sorted((tmp_path / "out").iterdir())
    scores = paired_scores(outputs, tmp_path / "out", tmp_path / "truth", inputs=sorted((tmp_path / "in").iterdir()))
    gains = [20 * np.log10(given / out) for given, out in offsets.values()]  # +12.04, +12.04, -6.02 dB
    assert scores["n"] == 3 and scores["improved"] == pytest.approx(2 / 3)
    assert scores["median_gain"] == pytest.approx(np.median(gains), abs=1e-3)
    assert scores["output"]["psnr"] == pytest.approx(np.mean([20 * np.log10(255 / o) for _, o in offsets.values()]),
                                                     abs=1e-3)
