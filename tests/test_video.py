"""Video: moving digits and video files as clips, the videogan family (clip shapes at any length, longer clips
continuing shorter ones), GIF/MP4 round trips, `sample --frames` and exact resume."""

import sys

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge import media
from ganforge.api import resolve_config
from ganforge.data.video import digit_size, load_video
from ganforge.errors import GanforgeError
from ganforge.families import DataInfo, create
from ganforge.media.video import read_frames
from ganforge.training import checkpoint as ckpt


def tiny_video(tmp_path, **extra) -> dict:
    """A videogan run of 4-frame 16 px moving digits, small enough for a second or two per step."""
    return {"model.name": "videogan", "data.source": "moving-digits", "data.resolution": 16, "data.limit": 64,
            "model.width": 8, "model.latent_dim": 8, "model.options": {"frames": 4, "motion_dim": 4},
            "train.batch_size": 4, "train.steps": 4, "train.log_every": 1, "train.sample_every": 100,
            "train.checkpoint_every": 100, "train.ema": 0.9, "out": str(tmp_path), "name": "video"} | extra


def test_moving_digits_are_deterministic_under_a_seed_and_bounce_inside_the_frame():
    a = load_video("moving-digits", 32, None, None, 40, frames=16, seed=3)
    b = load_video("moving-digits", 32, None, None, 40, frames=16, seed=3)
    other = load_video("moving-digits", 32, None, None, 40, frames=16, seed=4)
    clips = a.take()
    assert clips.shape == (40, 16, 1, 32, 32) and clips.dtype == torch.uint8
    assert torch.equal(clips, b.take()) and not torch.equal(clips, other.take())
    assert torch.equal(a.clips(torch.tensor([7, 2])), clips[[7, 2]])  # a clip depends on its index alone
    assert a.facts == {"frames": 16, "fps": 8.0, "digit_size": digit_size(32), "digits_per_clip": [1, 2]}
    counts = [len(d) for d in a.digits(torch.arange(40))]
    assert set(counts) == {1, 2}
    # every frame shows a digit, and the digits move: consecutive frames differ
    assert (clips.flatten(2).amax(2) > 100).all()
    assert ((clips[:, 1:].float() - clips[:, :-1].float()).abs().flatten(2).mean(2) > 0).float().mean() > 0.95
    one = load_video("moving-digits", 16, None, None, 10, frames=4, per_clip="1")
    assert [len(d) for d in one.digits(torch.arange(10))] == [1] * 10
    with pytest.raises(GanforgeError, match="digits per clip"):
        load_video("moving-digits", 16, None, None, 10, frames=4, per_clip="3-1")


def test_moving_digits_from_mnist_files(shared_data):
    data = load_video("moving-digits", 64, None, str(shared_data / "mnist"), 5, frames=8, per_clip="1")
    assert "MNIST" in data.name and data.take().shape == (5, 8, 1, 64, 64) and data.facts["digit_size"] == 28


def videogan(frames=4, resolution=16, **options):
    config = resolve_config(overrides={"model.name": "videogan", "model.width": 8, "model.latent_dim": 8,
                                       "model.options": {"frames": frames, "motion_dim": 4, **options}})
    return create(config, DataInfo(1, resolution, facts={"frames": frames, "fps": 6.0}))


@pytest.mark.parametrize("resolution, motion", [(16, "latent"), (32, "transform")])
def test_clips_are_n_t_c_h_w_at_any_length_and_longer_ones_continue_shorter_ones(resolution, motion):
    torch.manual_seed(0)
    family = videogan(4, resolution, motion=motion)
    family.generator.eval()
    inputs = family.sample_inputs(3, torch.Generator().manual_seed(1))
    clips = {}
    for frames in (1, 4, 9, 32):
        out = family.generate(family.generator, inputs | {"frames": torch.full((3,), frames)})
        assert out.shape == (3, frames, 1, resolution, resolution) and out.abs().max() <= 1
        clips[frames] = out
    assert torch.allclose(clips[32][:, :9], clips[9], atol=1e-6)
    assert torch.allclose(clips[9][:, :4], clips[4], atol=1e-6)
    assert not torch.allclose(clips[4][:, 0], clips[4][:, 3])  # the motion latents move the frames
    assert family.sample_info() == {"fps": 6.0}
    # both discriminators score a training batch: one logit per frame shown, one per clip
    batch = {"video": torch.rand(2, 4, 1, resolution, resolution) * 2 - 1}
    family.train()
    for phase in ("D", "G"):
        loss, logs = family.loss(phase, batch)
        assert loss.ndim == 0 and torch.isfinite(loss)
    assert {"d_image", "d_video"} <= set(family.loss("D", batch)[1])


def test_gif_and_mp4_round_trip_and_read_back_as_clips(tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    levels = torch.randint(0, 256, (3, 5, 3, 16, 16), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    clips = media.Video(media.from_uint8(levels), fps=10)
    for suffix in (".gif", ".mp4"):
        path = tmp_path / "videos" / f"grid{suffix}"
        media.save(clips, path, nrow=3)
        frames, fps = read_frames(path)
        width = 3 * 16 + 4 * 2  # three clips side by side with 2 px gaps
        assert frames.shape == (5, 16 + 4, width, 3), suffix
        assert fps == pytest.approx(10, rel=0.05), suffix
    one = media.Video(media.from_uint8(levels[:1]), fps=10)
    media.save(one, tmp_path / "videos" / "one.gif")
    frames, _ = read_frames(tmp_path / "videos" / "one.gif")
    assert frames.shape == (5, 16, 16, 3)
    assert np.abs(frames.astype(int) - levels[0].permute(0, 2, 3, 1).numpy()).mean() < 12  # GIF palette only
    # a folder of videos and frame folders becomes clips, frames resized like images; fps from the files
    folder = tmp_path / "videos" / "frames_of_one"
    folder.mkdir()
    for t in range(6):
        Image.fromarray(np.full((24, 32), 40 * t, np.uint8)).save(folder / f"{t:03d}.png")
    data = load_video(str(tmp_path / "videos"), 16, None, None, None, frames=4)
    # grid.gif and grid.mp4 (5 frames), one.gif (5), the frame folder (6): one 4-frame clip each
    assert data.take().shape == (4, 4, 3, 16, 16) and data.fps == pytest.approx(10, rel=0.05)
    grey = load_video(str(folder), 8, None, None, None, frames=3)
    assert grey.take().shape == (2, 3, 1, 8, 8) and grey.fps == 8.0
    with pytest.raises(GanforgeError, match="no clip of 7 frames"):
        load_video(str(folder), 8, None, None, None, frames=7)


def test_npz_arrays_including_ganforges_own_samples_are_clips(tmp_path):
    levels = torch.randint(0, 256, (2, 6, 1, 8, 8), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    media.save(media.Video(media.from_uint8(levels), fps=5), tmp_path / "own.npz")
    data = load_video(str(tmp_path / "own.npz"), 8, None, None, None, frames=3)
    assert data.take().shape == (4, 3, 1, 8, 8)
    assert torch.equal(data.take()[0], levels[0, :3]) and torch.equal(data.take()[1], levels[0, 3:])
    np.save(tmp_path / "plain.npy", np.zeros((2, 4, 10, 12), np.float32))
    assert load_video(str(tmp_path / "plain.npy"), 8, None, None, None, frames=4).take().shape == (2, 4, 1, 8, 8)
    np.save(tmp_path / "bad.npy", np.zeros((2, 4, 10), np.float32))
    with pytest.raises(GanforgeError, match=r"\(N, T, H, W\)"):
        load_video(str(tmp_path / "bad.npy"), 8, None, None, None, frames=4)


@pytest.mark.cpu_only
def test_sample_frames_flag_and_exact_resume(tmp_path, monkeypatch, capsys):
    from ganforge.cli import main

    def stop_at_2(trainer):  # an interrupted run: the same 4-step schedule (the default decays the learning rates
        if trainer.step == 2:  # over the second half), stopped with a checkpoint at step 2
            trainer.stop_reason = "test"

    straight = ganforge.train(quiet=True, **tiny_video(tmp_path / "a"))
    assert ganforge.load(straight).config.model.options["lr_decay"] == 0.5  # the default's schedule is on
    ganforge.train(quiet=True, callbacks=[stop_at_2], **tiny_video(tmp_path / "b"))
    resumed = ganforge.train(resume=tmp_path / "b" / "video", quiet=True)
    a, meta_a = ckpt.load(straight / "checkpoints" / "last.safetensors", "cpu")
    b, meta_b = ckpt.load(resumed / "checkpoints" / "last.safetensors", "cpu")
    assert meta_a["step"] == meta_b["step"] == 4 and a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert meta_a["info"]["facts"] == {"frames": 4, "fps": 8.0, "digit_size": 7, "digits_per_clip": [1, 2]}
    assert (straight / "samples" / "step_000004.gif").exists()

    def sample(*args):
        monkeypatch.setattr(sys, "argv", ["ganforge", "sample", str(straight), *map(str, args)])
        with pytest.raises(SystemExit) as stopped:
            main()
        return stopped.value.code or 0, capsys.readouterr()

    code, _ = sample("--n", "3", "--frames", "12", "--out", tmp_path / "long.npz")
    assert code == 0
    long = media.read(tmp_path / "long.npz")
    assert long.tensor.shape == (3, 12, 1, 16, 16) and long.fps == 8.0
    # the .npz holds uint8 levels: the first 4 frames are the 4-frame clips of the same seed, to a level
    assert (long.tensor[:, :4] - ganforge.load(straight).sample(3).tensor).abs().max() <= 1 / 127.5 + 1e-6
    code, captured = sample("--n", "2", "--frames", "0")
    assert code == 2 and "--frames must be 1 to 10000" in captured.err


def test_transform_motion_keeps_the_appearance_and_moves_its_ink():
    from ganforge.metrics.video import digit_centres
    from ganforge.nn.transform_motion import TransformMotionGenerator, reflect, similarity, still

    torch.manual_seed(0)
    family = videogan(4, 16, motion="transform", layers="sprite", whole_pixels=False)
    generator = family.generator
    assert isinstance(generator, TransformMotionGenerator)
    generator.eval()
    appearance = generator.appearance(torch.randn(2, 8))
    assert appearance.shape == (2, 3, 16, 16)  # sprite, mask, background
    frames = generator.render(appearance, still(2, 5))  # zero motion: every frame is the same composite
    assert frames.shape == (2, 5, 1, 16, 16) and torch.allclose(frames, frames[:, :1].expand_as(frames), atol=1e-6)
    # with the motion heads silenced every frame equals the first, whatever the motion noise
    with torch.no_grad():
        for head in (generator.start, generator.velocity):
            head.weight.zero_()
            head.bias.zero_()
    clips = family.generate(generator, family.sample_inputs(2, torch.Generator().manual_seed(1)))
    assert torch.allclose(clips, clips[:, :1].expand_as(clips), atol=1e-6)
    # a translation moves the ink's centre of mass by as much, and keeps the ink
    sprite = -torch.ones(1, 3, 16, 16)
    sprite[:, 0, 6:10, 6:10] = 1  # a white square ...
    sprite[:, 1, 6:10, 6:10] = 1  # ... opaque there, on a black background
    shift = torch.tensor([[[0.0, 0.0], [0.25, 0.0], [0.25, -0.5]]])  # (x, y), half-frames
    moved = generator.render(sprite, similarity(shift))
    centres = digit_centres(moved)[0, :, 0]  # (T, 2) in [-1, 1]
    assert torch.allclose(centres - centres[0], shift[0], atol=1e-4)
    assert torch.allclose(((moved + 1) / 2).sum((2, 3, 4)), torch.full((1, 3), 16.0), atol=1e-4)
    # the default: the whole frame moves by whole pixels (sharp frames), the gradient still reaches the shift
    frame = videogan(4, 16, motion="transform").generator
    assert frame.layers == "frame" and frame.whole_pixels
    shift = torch.tensor([[[0.0, 0.0], [0.13, 0.0], [0.26, -0.12]]], requires_grad=True)  # 1.04 px, (2.08, -0.96)
    moved = frame.render(sprite[:, :1], similarity(shift))
    assert torch.allclose(moved[0, 1], torch.roll(moved[0, 0], 1, -1), atol=1e-5)
    assert torch.allclose(moved[0, 2], torch.roll(moved[0, 0], (-1, 2), (-2, -1)), atol=1e-5)
    ((moved + 1) / 2 * torch.arange(16.0)).sum().backward()  # the ink's x moment grows as the square moves right
    assert shift.grad[0, :, 0].gt(0).all()
    # positions bounce back into the frame: reflection is the identity inside and mirrors outside
    assert torch.allclose(reflect(torch.tensor([0.1, 0.7, -0.8, 2.5]), 0.6), torch.tensor([0.1, 0.5, -0.4, 0.1]))
    # frames stay in [-1, 1] and clips of any length continue shorter ones (as with motion=latent)
    family = videogan(4, 16, motion="transform", transform="similarity", train_frames=2)
    family.generator.eval()
    inputs = family.sample_inputs(2, torch.Generator().manual_seed(2))
    long = family.generate(family.generator, inputs | {"frames": torch.full((2,), 20)})
    assert long.abs().max() <= 1 and torch.allclose(long[:, :4], family.generate(family.generator, inputs), atol=1e-6)
    assert not torch.allclose(long[:, 0], long[:, 3])
    family.train()
    batch = {"video": torch.rand(2, 4, 1, 16, 16) * 2 - 1}
    for phase in ("D", "G"):  # training sees 2-frame windows of the 4-frame clips
        loss, _ = family.loss(phase, batch)
        assert torch.isfinite(loss)


def test_default_recipe_has_spectrally_normalised_discriminators_and_paper_keeps_mocogans():
    """The default recipe trains against spectrally normalised image and video discriminators with the hinge loss
    (with batch norm in D the discriminators won after ~1,000 steps and the clips collapsed); --preset paper keeps
    MoCoGAN's batch norm, non-saturating loss and Adam settings; g_width_mult widens the generator only."""
    default = resolve_config(overrides={"model.name": "videogan"})
    paper = resolve_config(overrides={"model.name": "videogan", "model.preset": "paper"})
    assert (default.model.d_norm, default.model.loss, default.train.beta1) == ("spectral", "hinge", 0.0)
    assert default.train.lr_g > default.train.lr_d
    assert (paper.model.d_norm, paper.model.loss, paper.train.lr_g, paper.train.lr_d, paper.train.beta1) == \
        ("batch", "nonsaturating", 2e-4, 2e-4, 0.5)
    assert paper.model.options == {} and default.model.options["motion"] == "transform"

    torch.manual_seed(0)
    config = resolve_config(overrides={"model.name": "videogan", "model.width": 8, "model.latent_dim": 8,
                                       "model.options": {"frames": 4, "motion_dim": 4, "g_width_mult": 1.5}})
    family = create(config, DataInfo(1, 16, facts={"frames": 4, "fps": 6.0}))
    convs = [m for m in family.discriminator.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d))]
    assert {m.weight.dim() for m in convs} == {4, 5}  # 2-D convs of D_I, 3-D of D_V
    assert all(hasattr(m, "parametrizations") for m in convs)  # every conv of D_I and D_V, none left plain
    assert not any(isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm3d) for m in family.discriminator.modules())
    family.discriminator.train()
    for _ in range(30):  # power iterations run in training passes
        family.discriminator.video(torch.randn(2, 4, 1, 16, 16))
        family.discriminator.image(torch.randn(2, 1, 16, 16))
    for conv in convs:  # each conv's weight, as spectral_norm reads it, has largest singular value 1
        assert torch.linalg.matrix_norm(conv.weight.detach().flatten(1), 2) == pytest.approx(1.0, abs=0.05)
    def widest(net):
        return max(m.out_channels for m in net.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d))

    assert widest(family.generator.image) == 12 * 2 and widest(family.discriminator.image) == 8 * 2


def test_lr_decay_falls_linearly_to_zero_over_the_runs_tail():
    config = resolve_config(overrides={"model.name": "videogan", "train.steps": 8,
                                       "model.options": {"frames": 4, "motion_dim": 4, "lr_decay": 0.5}})
    family = create(config, DataInfo(1, 16, facts={"frames": 4, "fps": 6.0}))
    assert [family.lr_factor(s) for s in range(8)] == pytest.approx([1, 1, 1, 1, 0.75, 0.5, 0.25, 0.0])
    constant = create(resolve_config(overrides={"model.name": "videogan", "model.preset": "paper"}),
                      DataInfo(1, 16, facts={"frames": 4, "fps": 6.0}))
    assert all(constant.lr_factor(s) == 1.0 for s in range(0, 3000, 100))  # MoCoGAN's: constant rates
