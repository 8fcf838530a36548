"""Audio metrics: near-silence, nearest-neighbour memorisation check, the shipped spoken-digit extractor, and
`ganforge evaluate` on WAV folders, audio runs and `fit-extractor` with a labelled WAV folder."""

import json
import sys

import numpy as np
import pytest
import torch
from scipy.io import wavfile

import ganforge
from ganforge.media import Audio
from ganforge.metrics import load_extractor
from ganforge.metrics.audio import evaluate_audio, loudest_frame_db, near_silent_share, nearest_neighbour


def cli(monkeypatch, capsys, *args):
    from ganforge.cli import main

    monkeypatch.setattr(sys, "argv", ["ganforge", *map(str, args)])
    with pytest.raises(SystemExit) as stopped:
        main()
    out, err = capsys.readouterr()
    assert (stopped.value.code or 0) == 0, err
    return out


def tone_folder(root, classes=(("low", 200), ("mid", 700), ("high", 2000)), per_class=12, silent=0):
    rng = np.random.default_rng(0)
    for name, freq in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            t = np.arange(rng.integers(2000, 5000)) / 8000
            wave = 0.6 * np.sin(2 * np.pi * freq * (1 + rng.uniform(-0.03, 0.03)) * t) * np.exp(-3 * t)
            wavfile.write(str(root / name / f"{i}.wav"), 8000, (wave * 32767).astype(np.int16))
    for i in range(silent):
        wavfile.write(str(root / classes[0][0] / f"silent{i}.wav"), 8000, np.zeros(4000, np.int16))
    return root


def test_near_silence_and_levels():
    t = torch.arange(8000) / 8000
    loud = 0.5 * torch.sin(2 * torch.pi * 440 * t)
    clips = torch.stack([loud, loud * 1e-3, torch.zeros(8000), loud * 0.1])[:, None]
    levels = loudest_frame_db(clips, 8000)
    assert abs(levels[0].item() - 20 * np.log10(0.5 / np.sqrt(2))) < 0.1  # a sine's RMS is peak / sqrt(2)
    assert near_silent_share(clips, 8000) == 0.5  # -69 dB and silence; -29 dB is not near-silent


def test_nearest_neighbour_flags_copies():
    real = torch.randn(200, 16)
    copies = nearest_neighbour(real, real[:50] + 1e-3 * torch.randn(50, 16))
    fresh = nearest_neighbour(real, torch.randn(50, 16))
    assert copies["nn_ratio"] < 0.01 and 0.5 < fresh["nn_ratio"] < 2


def test_shipped_spoken_digit_extractor_takes_audio():
    model = load_extractor("spoken-digits")
    assert model.classes == [str(d) for d in range(10)] and model.sample_rate == 8000
    features, logits = model.extract(torch.rand(3, 1, 5000) * 0.2 - 0.1)  # shorter clips are padded
    assert features.shape == (3, model.num_features) and logits.shape == (3, 10)
    report = json.loads((ganforge.metrics.extractors.WEIGHTS_DIR / "spoken-digits.json").read_text())["training"]
    assert report["holdout_accuracy"] > 0.8 and "speaker" in report["holdout"]


def test_fit_extractor_and_evaluate_wav_folders(tmp_path, monkeypatch, capsys):
    real = tone_folder(tmp_path / "real")
    out = cli(monkeypatch, capsys, "evaluate", "fit-extractor", real, "--out", tmp_path / "tones", "--epochs", "10")
    assert "holdout accuracy" in out
    config = json.loads((tmp_path / "tones.json").read_text())
    assert config["architecture"] == "audio-classifier" and config["classes"] == ["high", "low", "mid"]
    assert config["training"]["holdout_accuracy"] >= 0.75  # three pitches are easy to tell apart
    fake = tone_folder(tmp_path / "fake", per_class=4, silent=4)
    cli(monkeypatch, capsys, "evaluate", real, fake, "--extractor", tmp_path / "tones.safetensors",
        "--json", tmp_path / "scores.json")
    scores = json.loads((tmp_path / "scores.json").read_text())
    values = scores["scores"]
    assert values["near_silent"] == 0.25 and values["near_silent_real"] == 0
    assert values["conditional_accuracy"] >= 0.75  # the 12 tones right; the 4 silent 'low' clips are a guess
    assert values["classes_covered"] == 3 and values["fid"] >= 0 and values["is"] >= 1
    assert scores["record"]["extractor"] == "tones" and "log-mel" in scores["record"]["resize_filter"]


def test_evaluate_an_audio_run(tmp_path, monkeypatch, capsys):
    run = ganforge.train(quiet=True, **{
        "model.name": "wavegan", "data.source": "tones", "data.limit": 20, "model.width": 4, "model.latent_dim": 8,
        "model.options": {"length": 8192, "conditional": True}, "train.batch_size": 4, "train.steps": 1,
        "train.sample_every": 1000, "train.ema": 0.0, "out": str(tmp_path), "name": "run"})
    cli(monkeypatch, capsys, "evaluate", run, "--n", "12", "--metrics", "is,silence,nn,accuracy",
        "--json", tmp_path / "run.json")
    scores = json.loads((tmp_path / "run.json").read_text())
    assert scores["record"]["extractor"] == "spoken-digits" and scores["record"]["n_fake"] == 12
    assert {"is", "near_silent", "nn_ratio", "conditional_accuracy"} <= set(scores["scores"])
    assert list((run / "eval").glob("*.json"))


def test_evaluate_audio_resamples_and_refuses_image_extractors():
    t = torch.arange(16000) / 16000
    clips = Audio((0.5 * torch.sin(2 * torch.pi * 300 * t)).expand(4, 1, -1).clone(), sample_rate=16000)
    scores = evaluate_audio(clips, clips, "silence,nn", cache=False)
    assert scores["near_silent"] == 0 and scores["nn_distance"] < 1e-3
    with pytest.raises(ganforge.errors.GanforgeError, match="takes images"):
        evaluate_audio(clips, clips, "is", extractor="digits")
