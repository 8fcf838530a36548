"""The media layer: typed samples per modality, written and read back in each format; and a tiny audio and video
family, defined here, trained by the unchanged trainer into its modality's periodic samples and TensorBoard."""

import math
import wave
from importlib.util import find_spec

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

import ganforge
from ganforge import media
from ganforge.errors import GanforgeError


def waves(n=3, channels=2, length=800):
    """Sine clips of different pitch per sample and channel, amplitude 0.5."""
    t = torch.arange(length) / 8000
    freqs = torch.tensor([[220.0 * (i + 1) * (c + 1) for c in range(channels)] for i in range(n)])
    return 0.5 * torch.sin(2 * math.pi * freqs[..., None] * t)


def test_uint8_round_trip_is_exact():
    levels = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    assert torch.equal(media.to_uint8(media.from_uint8(levels)), levels)
    assert media.from_uint8(levels).min() == -1 and media.from_uint8(levels).max() == 1
    assert torch.equal(media.from_uint8(levels.numpy()), media.from_uint8(levels))


def test_images_grid_zoom_cap_folder_and_npz(tmp_path):
    images = media.wrap(torch.rand(9, 1, 16, 16) * 4 - 2, "image", labels=torch.arange(9))  # clamped on wrap
    assert images.tensor.min() >= -1 and images.tensor.max() <= 1
    media.save(images, tmp_path / "grid.png", zoom=3)
    assert Image.open(tmp_path / "grid.png").size == (3 * (3 * 18 + 2), 3 * (3 * 18 + 2))
    grid = np.asarray(Image.open(tmp_path / "grid.png"))
    cell = media.to_uint8(images.tensor[0, 0]).numpy()
    assert np.array_equal(grid[6:6 + 48:3, 6:6 + 48:3], cell)  # nearest neighbour: every 3rd pixel is the sample
    note = media.save(media.Images(torch.zeros(100, 3, 8, 8)), tmp_path / "big.png")
    assert "64 of 100" in note  # at most 64 cells
    media.save(images, tmp_path / "pngs")
    assert len(list((tmp_path / "pngs").glob("*.png"))) == 9
    media.save(images, tmp_path / "s.npz")
    arrays = np.load(tmp_path / "s.npz")
    assert arrays["images"].shape == (9, 16, 16, 1) and arrays["images"].dtype == np.uint8
    back = media.read(tmp_path / "s.npz")
    assert torch.equal(back.labels, torch.arange(9))
    assert torch.equal(media.to_uint8(back.tensor), media.to_uint8(images.tensor))


def test_grid_side_is_capped():
    picture, shown = media.images.grid(torch.zeros(64, 3, 256, 768, dtype=torch.uint8))  # pix2pix panels
    assert max(picture.shape[-2:]) <= media.images.MAX_SIDE and shown == 64
    picture, _ = media.images.grid(torch.zeros(4, 1, 16, 16, dtype=torch.uint8), zoom=1000)
    assert max(picture.shape[-2:]) <= media.images.MAX_SIDE


def test_wav_header_length_and_content_survive(tmp_path):
    clips = media.wrap(waves(), "audio", sample_rate=8000)
    media.save(clips, tmp_path / "clips")
    with wave.open(str(tmp_path / "clips" / "00001.wav")) as handle:
        assert (handle.getframerate(), handle.getnchannels(), handle.getsampwidth()) == (8000, 2, 2)
        assert handle.getnframes() == 800
    back = media.read(tmp_path / "clips" / "00001.wav")
    assert back.sample_rate == 8000 and back.tensor.shape == (1, 2, 800)
    assert back.tensor.pow(2).mean().sqrt() > 0.3  # not silent: a 0.5 sine has RMS 0.35
    torch.testing.assert_close(back.tensor[0], clips.tensor[1], atol=1 / 32767, rtol=0)
    media.save(clips, tmp_path / "all.wav")
    with wave.open(str(tmp_path / "all.wav")) as handle:  # three clips with 0.25 s of silence between
        assert handle.getnframes() == 3 * 800 + 2 * 2000


def test_spectrogram_figure_and_audio_npz(tmp_path):
    clips = media.wrap(waves(channels=1), "audio", sample_rate=8000, labels=torch.tensor([0, 1, 2]))
    media.save(clips, tmp_path / "spectra.png")
    with Image.open(tmp_path / "spectra.png") as figure:
        assert figure.size[0] > 200 and figure.size[1] > 100
    decibels, _ = media.audio.spectrogram(clips.tensor[0], 8000)
    bin_hz = 8000 / (2 * (decibels.shape[0] - 1))
    assert abs(decibels.mean(1).argmax() * bin_hz - 220) < bin_hz  # the energy sits at the sine's pitch
    media.save(clips, tmp_path / "a.npz")
    back = media.read(tmp_path / "a.npz")
    assert isinstance(back, media.Audio) and back.sample_rate == 8000 and torch.equal(back.tensor, clips.tensor)


def moving_square(n=2, frames=5, size=8):
    video = -torch.ones(n, frames, 3, size, size)
    for t in range(frames):
        video[:, t, :, 2:5, t:t + 3] = 1
    return video


def test_gif_frames_and_video_npz(tmp_path):
    clips = media.wrap(moving_square(), "video", fps=10)
    media.save(clips, tmp_path / "v.gif", zoom=2)
    with Image.open(tmp_path / "v.gif") as gif:
        assert gif.n_frames == 5 and gif.size == (2 * (2 * 10 + 2), 2 * (8 + 4))
        assert gif.info["duration"] == 100
    media.save(clips, tmp_path / "clips")
    assert len(list((tmp_path / "clips").glob("*.gif"))) == 2
    media.save(clips, tmp_path / "v.npz")
    back = media.read(tmp_path / "v.npz")
    assert back.fps == 10 and torch.equal(back.tensor, clips.tensor)


@pytest.mark.skipif(find_spec("imageio_ffmpeg") is None, reason="imageio-ffmpeg is not installed")
def test_mp4_decodes(tmp_path):
    import imageio.v2 as imageio

    clips = media.wrap(moving_square(frames=6, size=9), "video", fps=6)  # odd sides: padded to even
    media.save(clips, tmp_path / "v.mp4", zoom=2)
    reader = imageio.get_reader(tmp_path / "v.mp4")
    frames = [frame for frame in reader]
    reader.close()
    assert len(frames) == 6 and frames[0].shape[:2] == (2 * (9 + 4), 2 * (2 * 11 + 2))
    assert abs(frames[0].astype(float).mean() - frames[-1].astype(float).mean()) < 10
    assert not np.array_equal(frames[0], frames[-1])  # the square moved


def test_tokens_text_lines_and_back(tmp_path):
    vocabulary = ["the", "cat", "sat", "<end>"]
    tokens = media.wrap(torch.tensor([[0, 1, 2, 3], [1, 1, 0, 3]]), "tokens", vocabulary=vocabulary)
    media.save(tokens, tmp_path / "t.txt")
    assert (tmp_path / "t.txt").read_text(encoding="utf-8") == "the cat sat <end>\ncat cat the <end>\n"
    assert torch.equal(media.tokens.read_text(tmp_path / "t.txt", vocabulary).tensor, tokens.tensor)
    letters = media.wrap(torch.tensor([[0, 1, 2]]), "tokens", vocabulary=list("aé€"), separator="")
    media.save(letters, tmp_path / "l.txt")
    assert (tmp_path / "l.txt").read_text(encoding="utf-8") == "aé€\n"
    assert torch.equal(media.tokens.read_text(tmp_path / "l.txt", list("aé€"), separator="").tensor, letters.tensor)
    media.save(letters, tmp_path / "l.npz")
    back = media.read(tmp_path / "l.npz")
    assert back.vocabulary == list("aé€") and back.separator == "" and torch.equal(back.tensor, letters.tensor)


def test_a_format_the_modality_lacks_is_one_line(tmp_path):
    clips = media.wrap(waves(), "audio", sample_rate=8000)
    with pytest.raises(GanforgeError) as error:
        media.save(clips, tmp_path / "x.gif")
    message = str(error.value)
    assert "\n" not in message and "audio" in message and ".wav" in message and "'.gif'" in message
    with pytest.raises(GanforgeError, match="zoom"):
        media.save(media.Images(torch.zeros(1, 1, 4, 4)), tmp_path / "g.png", zoom=0)


def test_an_unwritable_output_is_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(GanforgeError, match="is a file, not a folder") as error:
        media.save(media.Images(torch.zeros(2, 1, 4, 4)), tmp_path / "file" / "s.npz")
    assert "\n" not in str(error.value)


def test_wrap_checks_shape_and_settings():
    with pytest.raises(ValueError, match="sample_rate"):
        media.wrap(torch.zeros(2, 1, 10), "audio")
    with pytest.raises(ValueError, match=r"\(N, T, C, H, W\)"):
        media.wrap(torch.zeros(2, 3, 8, 8), "video", fps=4)
    with pytest.raises(ValueError, match="token ids"):
        media.wrap(torch.tensor([[5]]), "tokens", vocabulary=["a"])


# --- a family of another modality, trained by the unchanged trainer -----------------------------------------------

LENGTH, FRAMES = 256, 4


class Clips:
    """A tiny in-memory data set of audio or video clips, shaped like what the family generates."""

    def __init__(self, modality: str):
        torch.manual_seed(0)
        self.modality = modality
        self.clips = waves(32, 1, LENGTH) if modality == "audio" else moving_square(32, FRAMES, 8)
        self.channels, self.resolution, self.classes, self.labels, self.name = 1, 8, [], None, f"toy-{modality}"

    def __len__(self):
        return len(self.clips)

    def batches(self, batch_size, device, seed, flip):
        from ganforge.data.batches import ShuffledEpochs

        clips = self.clips.to(device)

        class Batches(ShuffledEpochs):
            def next(self):
                index, _ = self.take()
                return {"real": clips[index.to(device)]}

        return Batches(len(clips), batch_size, seed)


def toy_family(modality: str):
    from ganforge.families import Capabilities, Family

    shape = (1, LENGTH) if modality == "audio" else (FRAMES, 3, 8, 8)

    class Toy(Family):
        name = f"toy-{modality}-test"
        capabilities = Capabilities(modality=modality)

        def __init__(self, config, info):
            super().__init__(config, info)
            self.generator = nn.Sequential(nn.Linear(8, math.prod(shape)), nn.Tanh())
            self.discriminator = nn.Linear(math.prod(shape), 1)

        @classmethod
        def load_data(cls, config):
            return Clips(modality)

        def loss(self, phase, batch):
            noise = torch.randn(len(batch["real"]), 8, device=batch["real"].device)
            fake = self.generate(self.generator, {"noise": noise})
            fake_logits = self.discriminator(fake.flatten(1))
            if phase == "G":
                loss = nn.functional.softplus(-fake_logits).mean()
                return loss, {"g_loss": loss.detach()}
            real_logits = self.discriminator(batch["real"].flatten(1))
            loss = nn.functional.softplus(-real_logits).mean() + nn.functional.softplus(fake_logits).mean()
            return loss, {"d_loss": loss.detach()}

        def sample_inputs(self, n, rng, labels=None, data=None):
            return {"noise": torch.randn(n, 8, generator=rng)}

        def generate(self, generator, inputs):
            return generator(inputs["noise"]).view(-1, *shape)

        def sample_info(self):
            return {"sample_rate": 8000} if modality == "audio" else {"fps": 4}

    return Toy


@pytest.mark.parametrize("modality", ["audio", "video"])
def test_a_new_modality_trains_with_the_unchanged_trainer(modality, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from ganforge.families import REGISTRY, register

    family = register(toy_family(modality))
    try:
        run = ganforge.train(quiet=True, **{"model.name": family.name, "data.resolution": 8, "train.steps": 2,
                                            "train.batch_size": 4, "train.ema": 0.0, "train.log_every": 1,
                                            "train.sample_every": 2, "train.checkpoint_every": 2,
                                            "out": str(tmp_path), "name": "run"})
        samples = ganforge.load(run).sample(3)
    finally:
        REGISTRY.pop(family.name, None)
    assert samples.modality == modality and len(samples) == 3
    events = EventAccumulator(str(run / "tb"), size_guidance={"audio": 0, "images": 0}).Reload()
    if modality == "audio":
        assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_000002.png", "step_000002.wav"]
        written = media.read(run / "samples" / "step_000002.wav")
        assert written.sample_rate == 8000 and written.tensor.abs().max() > 0.05  # not silence
        assert samples.sample_rate == 8000 and samples.tensor.shape == (3, 1, LENGTH)
        assert events.Tags()["audio"] == ["samples"] and events.Audio("samples")[0].sample_rate == 8000
    else:
        assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_000002.gif"]
        with Image.open(run / "samples" / "step_000002.gif") as gif:
            assert gif.n_frames == FRAMES
        assert samples.fps == 4 and samples.tensor.shape == (3, FRAMES, 3, 8, 8)
        gif = events.Images("samples")[0].encoded_image_string
        assert gif.startswith(b"GIF8")
