"""Streamed image-to-image data: the in-memory batches exactly, each process its own slice, mid-epoch resume, a
memory budget that picks streaming, unreadable files replaced, and pix2pix training that resumes bit-exactly."""


import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from ganforge.config import DataConfig
from ganforge.data.paired import load_paired, load_unpaired
from ganforge.data.paired_stream import PairedStream, open_paired

from conftest import assert_streamed_resume_is_exact


def save(array, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def make_sets(root, n=10):
    """Paired A/B folders (B at twice the size, as JPEG), side-by-side AB images, and unpaired trainA (RGB) /
    trainB (grey, another count), all of varied sizes."""
    rng = np.random.default_rng(0)
    for i in range(n):
        h, w = 20 + i % 3, 26 - i % 4
        save(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), root / "folders" / "A" / f"{i:02d}.png")
        save(rng.integers(0, 256, (2 * h, 2 * w, 3), dtype=np.uint8), root / "folders" / "B" / f"{i:02d}.jpg")
        save(rng.integers(0, 256, (h, 2 * w, 3), dtype=np.uint8), root / "sbs" / f"{i:02d}.png")
        save(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), root / "unpaired" / "trainA" / f"{i:02d}.png")
    for i in range(7):
        save(rng.integers(0, 256, (30 + i, 22), dtype=np.uint8), root / "unpaired" / "trainB" / f"{i:02d}.png")
    return root


def draw(batches, n):
    return [batches.next() for _ in range(n)]


def assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys() == {"a", "b"}
        for key in x:
            assert torch.equal(x[key], y[key]), key


CASES = {  # name: (folder, paired, extra DataConfig fields, open_paired keywords)
    "folders": ("folders", True, {}, {}),
    "side-by-side": ("sbs", True, {}, {"load_size": 24}),
    "native": ("folders", True, {}, {"native": True}),
    "unpaired": ("unpaired", False, {"channels": 3}, {}),
}


@pytest.mark.parametrize("case", CASES)
def test_streamed_batches_equal_in_memory_batches(tmp_path, case):
    folder, paired, fields, keywords = CASES[case]
    source = str(make_sets(tmp_path) / folder)
    config = DataConfig(source=source, resolution=16, workers=0, **fields)
    memory = open_paired(config, paired=paired, **keywords)
    stream = open_paired(DataConfig(source=source, resolution=16, workers=0, stream=True, **fields), paired=paired,
                         **keywords)
    assert isinstance(stream, PairedStream) and not isinstance(memory, PairedStream)
    assert len(stream) == len(memory) == 10 and stream.channels == memory.channels
    expected = draw(memory.batches(4, "cpu", seed=3, flip=True), 6)  # 2 batches an epoch: crosses epochs
    assert_same(expected, draw(stream.batches(4, "cpu", seed=3, flip=True), 6))
    assert expected[0]["a"].shape == (4, memory.channels, 16, 16)
    assert torch.equal(stream.as_float(), memory.as_float())
    assert torch.equal(stream.centre("a", [0, 3]), memory.centre("a", [0, 3]))


def test_the_loaders_kept_their_pixels(tmp_path):
    """load_paired/load_unpaired (now built on the file index) give what the family used before: B of a folder
    pair resized to A's size, then both to the held size; a side-by-side image split in halves."""
    root = make_sets(tmp_path)
    pairs = load_paired(str(root / "folders"), 16)

    def resized(path, size):
        image = torch.from_numpy(np.array(Image.open(path))).permute(2, 0, 1)[None].float()
        if tuple(image.shape[-2:]) != size:
            image = F.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False)
        return image[0].round().clamp(0, 255).to(torch.uint8)

    assert pairs.a[0].shape[-2:] == (18, 23)  # shorter side 20 -> load size 18 (16 * 1.125)
    assert torch.equal(pairs.a[0], resized(root / "folders" / "A" / "00.png", (18, 23)))
    b = resized(root / "folders" / "B" / "00.jpg", (20, 26)).float()[None]  # first to A's own size
    b = F.interpolate(b, size=(18, 23), mode="bilinear", antialias=True, align_corners=False)
    assert torch.equal(pairs.b[0], b[0].round().clamp(0, 255).to(torch.uint8))
    unpaired = load_unpaired(str(root / "unpaired"), 16, channels=3)
    assert len(unpaired.a) == 10 and len(unpaired.b) == 7 and not unpaired.paired


def test_two_workers_give_the_same_batches(tmp_path):
    source = str(make_sets(tmp_path) / "sbs")
    memory = open_paired(DataConfig(source=source, resolution=16))
    stream = open_paired(DataConfig(source=source, resolution=16, stream=True, workers=2))
    assert_same(draw(memory.batches(4, "cpu", seed=1, flip=True), 5),
                draw(stream.batches(4, "cpu", seed=1, flip=True), 5))


def test_shards_read_their_slice_and_resume_mid_epoch(tmp_path):
    source = str(make_sets(tmp_path) / "unpaired")
    config = DataConfig(source=source, resolution=16, workers=0, stream=True, channels=3)
    whole = draw(open_paired(config, paired=False).batches(4, "cpu", seed=2, flip=True), 5)
    halves = [draw(open_paired(config, paired=False).batches(4, "cpu", seed=2, flip=True).shard(rank, 2), 5)
              for rank in (0, 1)]
    for k, batch in enumerate(whole):
        for key in ("a", "b"):
            assert torch.equal(torch.cat([halves[0][k][key], halves[1][k][key]]), batch[key])
    batches = open_paired(config, paired=False).batches(4, "cpu", seed=2, flip=True)
    draw(batches, 3)  # 2 batches an epoch: the state is mid-epoch
    state = batches.state_dict()
    later = draw(batches, 2)
    again = open_paired(config, paired=False).batches(4, "cpu", seed=2, flip=True)
    again.load_state_dict(state)
    assert_same(later, draw(again, 2))
    assert_same(whole[3:], later)


def test_budget_picks_streaming_and_an_unreadable_file_is_replaced(tmp_path, capsys):
    root = make_sets(tmp_path)
    small = open_paired(DataConfig(source=str(root / "folders"), resolution=16, workers=0))
    assert not isinstance(small, PairedStream)
    config = DataConfig(source=str(root / "folders"), resolution=16, workers=0, memory_budget_mb=0.001)
    stream = open_paired(config)
    assert isinstance(stream, PairedStream) and "streaming them" in capsys.readouterr().err
    with open(root / "folders" / "B" / "03.jpg", "r+b") as file:  # the header stays, the pixels go
        file.seek(200)
        file.truncate()
    batches = stream.batches(10, "cpu", seed=0)
    batch = batches.next()
    assert batch["a"].shape == batch["b"].shape == (10, 3, 16, 16)
    assert "03.jpg" in capsys.readouterr().err


@pytest.mark.cpu_only
def test_streamed_pix2pix_resumes_bit_exact_and_matches_in_memory(tmp_path):
    source = str(make_sets(tmp_path) / "sbs")
    common = {"model.name": "pix2pix", "data.source": source, "data.stream": True, "data.workers": 0,
              "data.flip": True, "train.batch_size": 4, "train.checkpoint_every": 2, "train.sample_every": 100,
              "model.options.d_layers": 1}
    assert_streamed_resume_is_exact(tmp_path, common, part=2, total=3)


# --- super-resolution: a folder of high-resolution images -------------------------------------------------------

def make_hr(root, n=6):
    rng = np.random.default_rng(1)
    for i in range(n):
        save(rng.integers(0, 256, (40 + 3 * i, 52 - 2 * i, 3), dtype=np.uint8), root / f"{i}.png")
    save(rng.integers(0, 256, (44, 50), dtype=np.uint8), root / "grey.png")  # read as RGB, like the others
    return root


@pytest.mark.parametrize("workers", [0, 2])
def test_streamed_super_resolution_batches_equal_in_memory_and_resume(tmp_path, workers, capsys):
    from ganforge.data.degrade import Degradation
    from ganforge.data.sr_stream import SuperResolutionStream, open_hr

    folder = str(make_hr(tmp_path / "hr"))
    realistic = Degradation(scale=4, blur=1.5, noise=5, jpeg=60, second_order=True)  # draws from the batch's RNG
    memory = open_hr(DataConfig(source=folder, resolution=16), realistic)
    stream = open_hr(DataConfig(source=folder, resolution=16, workers=workers, memory_budget_mb=0.001), realistic)
    assert isinstance(stream, SuperResolutionStream) and not isinstance(memory, SuperResolutionStream)
    assert "streaming them" in capsys.readouterr().err
    assert len(stream) == len(memory) == 7 and stream.channels == memory.channels == 3
    batches = memory.batches(4, "cpu", seed=2, flip=True)
    expected = [batches.next() for _ in range(4)]  # 7 images, 4 a batch: crosses an epoch
    streamed = stream.batches(4, "cpu", seed=2, flip=True)
    got = [streamed.next() for _ in range(2)]
    state = streamed.state_dict()
    got += [streamed.next() for _ in range(2)]
    for x, y in zip(expected, got):
        assert x.keys() == y.keys() == {"lr", "hr"}
        assert x["lr"].shape == (4, 3, 4, 4) and all(torch.equal(x[k], y[k]) for k in x)
    again = stream.batches(4, "cpu", seed=2, flip=True)
    again.load_state_dict(state)
    for x in expected[2:]:
        y = again.next()
        assert all(torch.equal(x[k], y[k]) for k in x)
    real = stream.as_float()  # the tiny budget bounds what evaluation decodes: here one centre crop
    assert len(real) == 1 and torch.equal(real, memory.as_float()[:1])
    rng = [torch.Generator().manual_seed(5) for _ in range(2)]
    assert torch.equal(stream.fixed_pairs(3, rng[0])["lr"], memory.fixed_pairs(3, rng[1])["lr"])


@pytest.mark.cpu_only
def test_streamed_srresnet_resumes_bit_exact(tmp_path):
    common = {"model.name": "srresnet", "data.source": str(make_hr(tmp_path / "hr")), "data.stream": True,
              "data.workers": 0, "data.flip": True, "train.batch_size": 4, "train.checkpoint_every": 2,
              "train.sample_every": 100}
    assert_streamed_resume_is_exact(tmp_path, common, part=2, total=3)
