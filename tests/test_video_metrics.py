"""Video metrics: identity consistency and motion statistics on real moving digits (the ceiling), on clips that
change digit or freeze, two-digit centres, and `ganforge evaluate` on a video run."""

import json
import sys

import pytest
import torch

import ganforge
from ganforge.data.video import load_video
from ganforge.errors import GanforgeError
from ganforge.metrics.video import (digit_centres, evaluate_clips, frame_change, identity_consistency,
                                    motion_statistics)

from test_video import tiny_video


@pytest.fixture(scope="module")
def real():
    data = load_video("moving-digits", 32, None, None, 24, frames=6, per_clip="1", seed=2)
    return data, data.as_float()


def test_real_moving_digits_keep_their_identity_and_a_changed_digit_does_not(real):
    data, clips = real
    assert identity_consistency(clips, data.size) == 1.0
    digits = [d[0] for d in data.digits(torch.arange(24))]
    a, b = next((i, j) for i in range(24) for j in range(24) if digits[i] != digits[j])
    swapped = torch.cat([clips[a:a + 1, :3], clips[b:b + 1, 3:]], 1)  # the digit changes halfway
    assert identity_consistency(torch.cat([swapped, clips[:3]]), data.size) == 0.75


def test_motion_statistics_see_frozen_clips(real):
    _, clips = real
    frozen = clips[:, :1].expand(-1, 6, -1, -1, -1)
    assert frame_change(frozen).abs().max() == 0 and frame_change(clips).min() > 0
    stats = motion_statistics(frozen, clips)
    assert stats["frozen"] == 1.0 and stats["frozen_real"] == 0.0 and stats["speed_px"] == 0
    assert 32 / 32 * 0.5 < stats["speed_px_real"] < 32 / 12 * 1.5  # the generator's speeds, with bounces
    assert motion_statistics(clips, clips)["mean_change"] == pytest.approx(stats["mean_change_real"])
    with pytest.raises(GanforgeError, match=r"\(N, T, C, H, W\)"):
        motion_statistics(clips[0], clips)


def test_two_digit_centres_are_found_apart():
    frame = -torch.ones(1, 2, 1, 16, 16)
    frame[..., 2:5, 2:5] = 1  # a blob near the top left, one near the bottom right
    frame[..., 10:14, 11:15] = 1
    centres = digit_centres(frame, 2)[0, 0]
    pixels = sorted(((centres + 1) * 16 / 2 - 0.5).tolist())  # back to pixel indices
    assert pixels[0] == pytest.approx([3, 3], abs=0.01) and pixels[1] == pytest.approx([12.5, 11.5], abs=0.01)


def test_evaluate_clips_and_the_evaluate_command_on_a_video_run(tmp_path, monkeypatch, capsys, real):
    data, clips = real
    result = evaluate_clips(clips[12:], clips[:12], digit_size=data.size, frames_per_clip=2)
    assert result["identity_consistency"] == result["identity_consistency_real"] == 1.0
    assert result["consistent_moving"] == result["consistent_moving_real"] == 1.0
    frozen = evaluate_clips(clips[12:, :1].expand(-1, 6, -1, -1, -1), clips[:12], digit_size=data.size,
                            frames_per_clip=2)
    assert frozen["identity_consistency"] == 1.0 and frozen["consistent_moving"] == 0.0  # frozen clips pass the one
    assert result["frame_fd"] >= 0 and result["record"].n_fake == 24 and result["record"].extractor == "digits"
    from ganforge.cli import main

    run = ganforge.train(quiet=True, **tiny_video(tmp_path, **{"train.steps": 1, "model.options": {
        "frames": 4, "motion_dim": 4, "digits": "1"}}))
    monkeypatch.setattr(sys, "argv", ["ganforge", "evaluate", str(run), "--n", "8", "--json", str(tmp_path / "e.json")])
    with pytest.raises(SystemExit) as stopped:
        main()
    assert (stopped.value.code or 0) == 0, capsys.readouterr().err
    scores = json.loads((tmp_path / "e.json").read_text())["scores"]
    assert {"frame_fd", "identity_consistency", "identity_consistency_real", "motion"} <= set(scores)
    assert scores["identity_consistency_real"] == 1.0 and 0 <= scores["identity_consistency"] <= 1
    assert {"mean_change", "frozen", "speed_px"} <= set(scores["motion"])
