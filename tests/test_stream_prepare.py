"""`ganforge prepare` shards, training from .tar shards, and transparent images."""

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import ganforge
from ganforge.cli import app
from ganforge.config import DataConfig
from ganforge.data import load_images
from ganforge.data.stream import StreamSet, open_images, open_source
from ganforge.errors import GanforgeError

from conftest import tiny_overrides
from test_stream import assert_same, draw, make_folder


def test_prepare_writes_shards_that_train_like_the_folder(tmp_path):
    folder = make_folder(tmp_path / "pics", n=21)
    (folder / "cat" / "broken.png").write_bytes(b"not a png")
    result = CliRunner().invoke(app, ["prepare", str(folder), str(tmp_path / "shards"), "--resolution", "16",
                                      "--shard-size", "8", "--workers", "0"])
    assert result.exit_code == 0, result.output
    assert "wrote 21 images at 16 px in 3 shard(s)" in result.output and "skipped 1 unreadable" in result.output
    memory = load_images(str(folder), 16)  # the folder itself, decoded in memory (the broken file left out)
    shards = open_source(DataConfig(source=str(tmp_path / "shards"), workers=0))
    assert shards.resolution == 16 and shards.classes == ["cat", "dog"] and torch.equal(shards.labels, memory.labels)
    assert torch.equal(shards.decode(range(len(shards))), memory.images)  # PNG is lossless: the very same pixels
    # the shards stream, or (small) load into memory, with the same batches as the folder
    small = open_images(DataConfig(source=str(tmp_path / "shards"), workers=0))
    assert not isinstance(small, StreamSet)
    expected = draw(memory.batches(4, "cpu", seed=2, flip=True), 7)
    assert_same(expected, draw(small.batches(4, "cpu", seed=2, flip=True), 7))
    assert_same(expected, draw(shards.batches(4, "cpu", seed=2, flip=True), 7))


def test_prepare_refuses_a_folder_that_already_holds_shards(tmp_path):
    folder = make_folder(tmp_path / "pics", n=4)
    for _ in range(2):
        result = CliRunner().invoke(app, ["prepare", str(folder), str(tmp_path / "out"), "--resolution", "8",
                                          "--workers", "0"])
    assert isinstance(result.exception, GanforgeError) and "already holds .tar shards" in str(result.exception)


def transparent_folder(root, n=8):
    root.mkdir()
    for i in range(n):
        rgba = np.zeros((16, 16, 4), dtype=np.uint8)
        rgba[..., 0] = 200
        rgba[..., 3] = np.linspace(0, 255, 16, dtype=np.uint8)[None, :]  # opaque on the right, clear on the left
        Image.fromarray(rgba, "RGBA").save(root / f"{i}.png")
    return root


def test_transparent_keeps_alpha_instead_of_white(tmp_path):
    folder = transparent_folder(tmp_path / "rgba")
    kept = open_images(DataConfig(source=str(folder), resolution=16, transparent=True, workers=0))
    assert kept.channels == 4 and kept.images[0, 3, 0].tolist() == np.linspace(0, 255, 16, dtype=np.uint8).tolist()
    assert kept.images[0, 0].eq(200).all()  # colour untouched under the alpha
    flat = open_images(DataConfig(source=str(folder), resolution=16, workers=0))
    assert flat.channels == 3 and flat.images[0, :, 0, 0].tolist() == [255, 255, 255]  # clear: white
    streamed = open_source(DataConfig(source=str(folder), resolution=16, transparent=True, workers=0))
    assert torch.equal(streamed.decode(range(8)), kept.images)


def test_training_on_transparent_images_makes_rgba_samples(tmp_path):
    folder = transparent_folder(tmp_path / "rgba")
    run = ganforge.train(quiet=True, **tiny_overrides(tmp_path, **{"data.source": str(folder), "data.transparent": True,
                                                                  "train.batch_size": 8, "train.steps": 2}))
    with Image.open(run / "samples" / "step_000002.png") as grid:
        assert grid.mode == "RGBA"
    assert ganforge.load(run).sample(2, seed=0).tensor.shape == (2, 4, 16, 16)


def test_transparent_needs_an_alpha_source(tmp_path):
    with pytest.raises(GanforgeError, match="no alpha channel"):
        open_images(DataConfig(source="digits", transparent=True))
