"""Streaming data: the same batches as the in-memory path, a tiny memory budget, sharding, mid-epoch resume."""


import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge.config import DataConfig
from ganforge.data import load_images
from ganforge.data.stream import StreamBatches, StreamSet, open_images, open_source
from ganforge.training import checkpoint as ckpt

from conftest import assert_streamed_resume_is_exact, tiny_overrides


def make_folder(root, n=24, classes=("cat", "dog"), size=(20, 26)):
    """`n` RGB pictures of varied sizes (resized and cropped on reading), split over class sub-folders."""
    rng = np.random.default_rng(0)
    for i in range(n):
        folder = root / classes[i % len(classes)]
        folder.mkdir(parents=True, exist_ok=True)
        h, w = size[0] + i % 3, size[1] - i % 4
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    return root


def draw(batches, n, seed=5):
    torch.manual_seed(seed)  # flips come from the global generator on the device, in both paths
    return [batches.next() for _ in range(n)]


def assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for key in x:
            assert torch.equal(x[key], y[key]), key


@pytest.mark.parametrize("workers", [0, 2])
def test_streamed_batches_equal_in_memory_batches(tmp_path, workers):
    folder = make_folder(tmp_path / "pics")
    memory = load_images(str(folder), 16)
    stream = open_source(DataConfig(source=str(folder), resolution=16, workers=workers))
    assert isinstance(stream, StreamSet) and len(stream) == len(memory) == 24
    assert stream.classes == memory.classes and torch.equal(stream.labels, memory.labels)
    device = torch.device("cpu")
    expected = draw(memory.batches(8, device, seed=3, flip=True), 7)  # 3 batches an epoch: crosses two epochs
    got = draw(stream.batches(8, device, seed=3, flip=True), 7)
    assert_same(expected, got)
    assert expected[0]["image"].shape == (8, 3, 16, 16)


def test_shards_decode_only_their_slice_and_match_the_global_batch(tmp_path):
    folder = make_folder(tmp_path / "pics")
    config = DataConfig(source=str(folder), resolution=16, workers=0)
    whole = draw(open_source(config).batches(8, "cpu", seed=1, flip=True), 6)
    halves = []
    for rank in range(2):
        data = open_source(config)
        halves.append(draw(data.batches(8, "cpu", seed=1, flip=True).shard(rank, 4), 6))
        assert data.records.decoded == 6 * 4  # only its own slice is read from disk
    for full, first, second in zip(whole, *halves):
        for key in full:
            assert torch.equal(full[key], torch.cat([first[key], second[key]])), key


def test_stream_state_resumes_mid_epoch(tmp_path):
    data = open_source(DataConfig(source=str(make_folder(tmp_path / "pics")), resolution=16, workers=0))
    batches = data.batches(8, "cpu", seed=7)
    draw(batches, 4)  # one epoch and a batch
    state = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in batches.state_dict().items()}
    rest = draw(batches, 4)
    again = StreamBatches(data, 8, torch.device("cpu"), seed=99)  # another seed: the state decides
    again.load_state_dict(state)
    assert_same(rest, draw(again, 4))


def test_tiny_budget_streams_and_trains_without_decoding_the_whole_folder(tmp_path, capsys):
    folder = make_folder(tmp_path / "pics", n=64, classes=("a",))
    config = DataConfig(source=str(folder), resolution=16, memory_budget_mb=0.01, workers=0)
    data = open_images(config)
    assert isinstance(data, StreamSet) and data.decoded_mb > 0.01
    assert "streaming" in capsys.readouterr().err
    decoded = []
    run = ganforge.train(quiet=True, callbacks=[lambda t: decoded.append(t.data.records.decoded)],
                         **tiny_overrides(tmp_path, **{"data.source": str(folder), "data.memory_budget_mb": 0.01,
                                                       "data.workers": 0, "train.batch_size": 8, "train.steps": 3}))
    assert decoded == [8, 16, 24]  # one batch per step, never the 64 images at once
    assert ckpt.read_meta(run / "checkpoints" / "last.safetensors")["data"]["n"] == 64


@pytest.mark.cpu_only
def test_streamed_training_resumes_bit_exact_streamed_or_in_memory(tmp_path):
    folder = make_folder(tmp_path / "pics", n=20)  # 16 a batch: each epoch drops 4, resume lands mid-epoch
    common = {"data.source": str(folder), "data.stream": True, "data.workers": 0, "data.flip": True,
              "train.checkpoint_every": 3}
    assert_streamed_resume_is_exact(tmp_path, common, part=3, total=5)


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_memory_mapped_array_streams_the_in_memory_pixels(tmp_path, dtype):
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (12, 20, 20, 3), dtype=np.uint8)  # (N, H, W, C), resized to 16 on reading
    array = pixels if dtype == "uint8" else pixels.astype(np.float32) / 255 * 2 - 1  # [-1, 1] floats
    np.save(tmp_path / "x.npy", array)
    memory = load_images(str(tmp_path / "x.npy"), 16)
    stream = open_source(DataConfig(source=str(tmp_path / "x.npy"), resolution=16, workers=0))
    assert stream.decode(range(12)).equal(memory.images)
    expected = draw(memory.batches(4, "cpu", seed=0, flip=True), 5)
    assert_same(expected, draw(stream.batches(4, "cpu", seed=0, flip=True), 5))
