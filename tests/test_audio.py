"""Audio data and WaveGAN: WAV folders (labels, resampling, mono mix, crop/pad, skipped files), WAV round trips,
generator lengths, phase shuffle, bit-exact resume and conditional sampling through the CLI."""

import sys
import tarfile

import numpy as np
import pytest
import torch
from scipy.io import wavfile

import ganforge
from ganforge import media
from ganforge.data.audio import list_audio, load_audio, resample
from ganforge.errors import GanforgeError
from ganforge.nn.audio import LAYOUTS, PhaseShuffle, WaveDiscriminator, WaveGenerator
from ganforge.training import checkpoint as ckpt


def tone(freq: float, seconds: float, rate: int, channels: int = 1) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    wave = 0.5 * np.sin(2 * np.pi * freq * t)
    return np.repeat(wave[:, None], channels, 1) if channels > 1 else wave


def write(path, wave, rate, dtype=np.int16):
    path.parent.mkdir(parents=True, exist_ok=True)
    scale = {np.int16: 32767, np.int32: 2 ** 31 - 1, np.float32: 1.0}[dtype]
    wavfile.write(str(path), rate, (wave * scale).astype(dtype))


def tiny_run(tmp_path, **extra) -> dict:
    base = {"model.name": "wavegan", "data.source": "tones", "data.limit": 20, "model.width": 4,
            "model.latent_dim": 8, "model.options": {"length": 8192}, "train.batch_size": 4, "train.steps": 4,
            "train.log_every": 1, "train.sample_every": 1000, "train.checkpoint_every": 2, "train.ema": 0.0,
            "out": str(tmp_path), "name": "run"}
    base.update(extra)
    return base


@pytest.mark.parametrize("length", sorted(LAYOUTS))
def test_generator_makes_exactly_the_configured_length(length):
    torch.manual_seed(0)
    for upsample in ("transpose", "nearest"):
        generator = WaveGenerator(4, length, 1, n_classes=3, embed_dim=2, upsample=upsample, post_filter=5)
        wave = generator(torch.randn(2, 4), torch.tensor([0, 2]))
        assert wave.shape == (2, 1, length)
        assert wave.abs().max() <= 1 and wave.std() > 0
    assert WaveDiscriminator(length, 1, n_classes=3)(wave, torch.tensor([0, 2])).shape == (2,)


def test_unsupported_length_is_one_line():
    with pytest.raises(GanforgeError, match="8192, 16384, 32768, 65536"):
        WaveGenerator(4, 10000, 1)


def test_phase_shuffle_keeps_length_shifts_by_at_most_the_radius_and_is_identity_at_zero():
    x = torch.randn(16, 3, 50)
    assert torch.equal(PhaseShuffle(0)(x), x)
    torch.manual_seed(1)
    shuffled = PhaseShuffle(2)(x)
    assert shuffled.shape == x.shape
    reflected = torch.nn.functional.pad(x, (2, 2), mode="reflect")
    shifts = []
    for i in range(len(x)):  # every example is the input shifted by k in [-2, 2], edges reflected
        matches = [k for k in range(-2, 3) if torch.equal(shuffled[i], reflected[i, :, 2 - k:2 - k + 50])]
        assert len(matches) == 1
        shifts.append(matches[0])
    assert len(set(shifts)) > 1  # per example, not one shift for the batch


def test_wav_write_read_round_trip(tmp_path):
    clips = torch.rand(3, 1, 800) * 2 - 1
    media.save(media.Audio(clips, sample_rate=8000), tmp_path / "clips")
    back = media.read(tmp_path / "clips" / "00001.wav")
    assert back.sample_rate == 8000 and back.tensor.shape == (1, 1, 800)
    assert (back.tensor[0] - clips[1]).abs().max() <= 2 / 32768  # 16-bit levels (written x 32767, read / 32768)
    # other WAV sample types read through the same reader, scaled to [-1, 1]
    for dtype in (np.int32, np.float32):
        write(tmp_path / f"{dtype.__name__}.wav", tone(100, 0.1, 8000, channels=2), 8000, dtype)
        read = media.read(tmp_path / f"{dtype.__name__}.wav")
        assert read.tensor.shape == (1, 2, 800) and abs(read.tensor.abs().max().item() - 0.5) < 1e-3


def test_resampling_changes_length_by_the_rate_ratio_and_keeps_pitch(tmp_path):
    wave = tone(440, 0.5, 12000)
    assert len(resample(wave, 12000, 8000)) == round(len(wave) * 8000 / 12000)
    assert len(resample(wave[:441], 44100, 16000)) == 160
    assert len(resample(wave, 8000, 16000)) == 2 * len(wave)
    write(tmp_path / "a" / "x.wav", wave, 12000)
    data = load_audio(str(tmp_path / "a"), 8000, 8192, "none")
    clip = data.waves[0, 0].numpy()
    sound = np.flatnonzero(np.abs(clip) > 1e-3)
    assert abs(sound[-1] + 1 - 4000) <= 10  # 0.5 s at 8 kHz, then zero padding
    spectrum = np.abs(np.fft.rfft(clip[:4000]))
    assert abs(np.argmax(spectrum) * 8000 / 4000 - 440) <= 2
    assert data.facts == {"sample_rate": 8000, "length": 8192}


def test_labelled_folder_reading(tmp_path):
    # sub-folders are classes; stereo is mixed to mono, long clips cropped; broken, empty and silent files skipped
    root = tmp_path / "sub"
    for name, freq in (("bird", 900), ("dog", 300)):
        for i in range(2):
            write(root / name / f"{i}.wav", tone(freq, 2.0, 16000, channels=2), 16000)
    (root / "dog" / "broken.wav").write_bytes(b"RIFF not really")
    write(root / "dog" / "empty.wav", np.zeros(0), 16000)
    write(root / "bird" / "silent.wav", np.zeros(100), 16000)
    data = load_audio(str(root), None, 8192, "peak")
    assert data.classes == ["bird", "dog"] and data.labels.tolist() == [0, 0, 1, 1]
    assert data.waves.shape == (4, 1, 8192) and data.sample_rate == 16000 and data.skipped == 3
    assert torch.allclose(data.waves.abs().amax(-1), torch.tensor(0.95))
    # '{label}_' file-name prefixes (the FSDD naming), natural order of the classes, RMS normalisation
    flat = tmp_path / "flat"
    for label in (2, 10, 1):
        write(flat / f"{label}_spk_0.wav", tone(200 + 50 * label, 0.3, 8000), 8000)
    data = load_audio(str(flat), 8000, 8192, "rms")
    assert data.classes == ["1", "2", "10"] and data.labels.tolist() == [2, 0, 1]  # files 10_, 1_, 2_
    assert torch.allclose(data.waves[:, :, :2400].square().mean(-1).sqrt(), torch.tensor(0.1), atol=1e-3)
    # no class in names or folders: unlabelled; not a folder: one line
    write(tmp_path / "plain" / "a.wav", tone(200, 0.1, 8000), 8000)
    assert load_audio(str(tmp_path / "plain"), None, 8192).labels is None
    with pytest.raises(GanforgeError, match="folder of WAV files"):
        load_audio(str(tmp_path / "nothing"), None, 8192)


def test_fsdd_files_read_with_digit_labels(tmp_path, shared_data):
    archive = shared_data / "fsdd-5-speakers.tar"
    if not archive.exists():
        pytest.skip("no FSDD archive")
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.name.endswith(("_george_0.wav", "_theo_1.wav"))]
        tar.extractall(tmp_path, members=members, filter="data")
    data = load_audio(str(tmp_path / "recordings"), None, 8192)
    assert len(list_audio(tmp_path)) == 20 and data.classes == [str(d) for d in range(10)]
    assert data.sample_rate == 8000 and sorted(data.labels.tolist()) == sorted(list(range(10)) * 2)
    assert (data.waves.abs().amax(-1) > 0.9).all()  # non-trivial energy


def _state(run):
    tensors, meta = ckpt.load(run / "checkpoints" / "last.safetensors")
    return {k: v for k, v in tensors.items() if k.startswith(("family.", "optim."))}, meta


@pytest.mark.cpu_only
def test_resume_is_bit_exact(tmp_path):
    def interrupt(trainer):
        if trainer.step == 2:
            trainer.stop_reason = "interrupted"

    # the same 3-step run (the default's learning-rate decay over its second half spans the interruption)
    straight = ganforge.train(quiet=True, **tiny_run(tmp_path / "a", **{"train.n_critic": 2, "train.steps": 3}))
    ganforge.train(quiet=True, callbacks=[interrupt], **tiny_run(tmp_path / "b", **{"train.n_critic": 2,
                                                                                     "train.steps": 3}))
    resumed = ganforge.train(resume=tmp_path / "b" / "run", quiet=True, **{"train.steps": 3})
    (a, meta_a), (b, meta_b) = _state(straight), _state(resumed)
    assert meta_a["step"] == meta_b["step"] == 3 and meta_b["info"]["facts"] == {"sample_rate": 8000,
                                                                                  "length": 8192}
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    model = ganforge.load(resumed)
    clips = model.sample(3, seed=1)
    assert clips.tensor.shape == (3, 1, 8192) and clips.sample_rate == 8000 and clips.tensor.std() > 0
    assert not model.family.capabilities.conditional  # an unconditional run refuses a class
    with pytest.raises(GanforgeError, match="unconditional"):
        model.sample(2, labels=7)


def test_conditional_sampling_honours_class(tmp_path, monkeypatch, capsys):
    run = ganforge.train(quiet=True, **tiny_run(tmp_path, **{"model.options": {"length": 8192, "conditional": True},
                                                             "train.steps": 2}))
    model = ganforge.load(run)
    assert model.family.capabilities.conditional and model.classes == [str(k) for k in range(10)]
    from ganforge.cli import main

    monkeypatch.setattr(sys, "argv", ["ganforge", "sample", str(run), "--n", "3", "--class", "7", "--seed", "2",
                                      "--out", str(tmp_path / "seven.npz")])
    with pytest.raises(SystemExit) as stopped:
        main()
    assert (stopped.value.code or 0) == 0, capsys.readouterr().err
    written = np.load(tmp_path / "seven.npz")
    assert written["labels"].tolist() == [7, 7, 7] and int(written["sample_rate"]) == 8000
    assert np.array_equal(written["audio"], model.sample(3, seed=2, labels=7).tensor.numpy())
    assert not torch.equal(model.sample(3, seed=2, labels=3).tensor, model.sample(3, seed=2, labels=7).tensor)


def test_specgan_spectrograms_invert_by_griffin_lim():
    from ganforge.families.specgan import Spectrograms

    t = torch.arange(8192) / 8000
    clip = (0.5 * torch.sin(2 * torch.pi * 440 * t) * torch.exp(-2 * t) + 0.3 * torch.sin(2 * torch.pi * 1234 * t))
    clips = torch.stack([clip, clip.roll(1000)])[:, None]
    spectrograms = Spectrograms(8192, *Spectrograms(8192).statistics(clips))
    images = spectrograms.forward(clips)
    assert images.shape == (2, 1, 128, 128) and images.abs().max() <= 1
    errors = []
    for iterations in (0, 16, 64):  # spectral convergence: the rebuilt magnitudes approach the original ones
        wave = spectrograms.inverse(images, iterations)
        assert wave.shape == clips.shape
        target = spectrograms.stft(clips[:, 0]).abs()
        errors.append(((spectrograms.stft(wave[:, 0]).abs() - target).norm() / target.norm()).item())
    assert errors[0] > errors[1] > errors[2] and errors[1] < 0.35
    with pytest.raises(GanforgeError, match="8192 or 16384"):
        Spectrograms(32768)
