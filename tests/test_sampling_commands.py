"""`sample`, `interpolate`, `translate` and `upscale` through the real CLI entry point (in this process): every
format of the modality, zoomed grids and walks, and one-line errors for outputs that cannot or must not be written."""

import sys
from importlib.util import find_spec

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge.errors import GanforgeError
from ganforge.media.files import image_inputs, refuse_overlap
from ganforge.media.progress import track

from conftest import tiny_overrides


def cli(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    """Run `ganforge ARGS` as the console script does; (exit code, stdout, stderr)."""
    from ganforge.cli import main

    monkeypatch.setattr(sys, "argv", ["ganforge", *map(str, args)])
    with pytest.raises(SystemExit) as stopped:
        main()
    out, err = capsys.readouterr()
    return stopped.value.code or 0, out, err


def one_line_error(result, *words):
    code, _, err = result
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert all(word in err for word in words), err


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    torch.manual_seed(0)
    return ganforge.train(quiet=True, **tiny_overrides(tmp_path_factory.mktemp("runs"), **{"train.steps": 2}))


def test_sample_zoom_formats_and_bad_suffix(run, tmp_path, monkeypatch, capsys):
    code, out, _ = cli(monkeypatch, capsys, "sample", run, "--n", 4, "--out", tmp_path / "g.png", "--zoom", 4)
    assert code == 0 and "wrote" in out
    assert Image.open(tmp_path / "g.png").size == (4 * (2 * 18 + 2),) * 2  # 2x2 cells of 16 px, 4 times larger
    assert cli(monkeypatch, capsys, "sample", run, "--n", 4, "--out", tmp_path / "g.jpg")[0] == 0
    one_line_error(cli(monkeypatch, capsys, "sample", run, "--out", tmp_path / "g.gif"), "image", ".png", ".npz")
    assert not (tmp_path / "g.gif").exists()


def test_unwritable_outputs_are_one_line(run, tmp_path, monkeypatch, capsys):
    (tmp_path / "file").write_text("")  # a regular file where a folder is needed (a read-only place, even as root)
    one_line_error(cli(monkeypatch, capsys, "sample", run, "--n", 2, "--out", tmp_path / "file" / "x.npz"),
                   "cannot write", "is a file")
    one_line_error(cli(monkeypatch, capsys, "interpolate", run, "--n", 1, "--frames", 1, "--points", 2,
                       "--out", tmp_path / "file" / "walk.gif"), "cannot write", "is a file")


def test_failing_writes_are_one_line(run, tmp_path, monkeypatch, capsys):
    long = "x" * 300  # the folder is fine, opening the file fails (a name longer than file systems allow)
    one_line_error(cli(monkeypatch, capsys, "sample", run, "--n", 2, "--out", tmp_path / f"{long}.npz"),
                   "cannot write", "too long")
    one_line_error(cli(monkeypatch, capsys, "interpolate", run, "--n", 1, "--frames", 1, "--points", 2,
                       "--out", tmp_path / f"{long}.gif"), "cannot write", "too long")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_sample_on_a_missing_gpu_is_one_line(run, tmp_path, monkeypatch, capsys):
    one_line_error(cli(monkeypatch, capsys, "sample", run, "--device", "cuda", "--out", tmp_path / "x.npz"),
                   "CUDA is not available")


def test_interpolate_fps_zoom_and_mp4(run, tmp_path, monkeypatch, capsys):
    walk = ["interpolate", run, "--n", 2, "--points", 2, "--frames", 2]
    one_line_error(cli(monkeypatch, capsys, *walk, "--fps", 0, "--out", tmp_path / "w.gif"), "--fps")
    one_line_error(cli(monkeypatch, capsys, *walk, "--out", tmp_path / "w.png"), "video", ".gif", ".mp4")
    assert cli(monkeypatch, capsys, *walk, "--zoom", 3, "--out", tmp_path / "w.gif")[0] == 0
    with Image.open(tmp_path / "w.gif") as gif:
        assert gif.n_frames == 4 and gif.size == (3 * (2 * 18 + 2), 3 * (16 + 4))
    if find_spec("imageio_ffmpeg") is not None:
        import imageio.v2 as imageio

        assert cli(monkeypatch, capsys, *walk, "--out", tmp_path / "w.mp4")[0] == 0
        reader = imageio.get_reader(tmp_path / "w.mp4")
        assert len([frame for frame in reader]) == 4
        reader.close()


def test_progress_only_on_a_terminal(monkeypatch, capsys):
    monkeypatch.setenv("TTY_COMPATIBLE", "0")
    assert list(track(range(3), "work")) == [0, 1, 2]
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    assert list(track(range(3), "work")) == [0, 1, 2]
    assert "work" in capsys.readouterr().err


def test_outputs_overlapping_inputs_are_refused(tmp_path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    for name in ("a.png", "sub/b.png"):
        Image.new("RGB", (4, 4)).save(folder / name)
    found = image_inputs([folder])
    for out in (folder, folder / "sub", folder / "new"):  # the folder itself, or anywhere inside it
        with pytest.raises(GanforgeError, match="input folder"):
            refuse_overlap([folder], found, out)
    single = image_inputs([folder / "a.png"])
    with pytest.raises(GanforgeError, match="overwrite the input"):
        refuse_overlap([folder / "a.png"], single, folder)
    refuse_overlap([folder], found, tmp_path / "out")  # elsewhere is fine
    refuse_overlap([folder / "a.png"], single, folder / "sub")


def test_translate_into_its_input_folder_keeps_the_inputs(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    rng = np.random.default_rng(0)
    for side in "AB":
        (data / side).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(data / side / f"{i}.png")
    run = ganforge.train(quiet=True, **{"model.name": "pix2pix", "data.source": str(data), "data.resolution": 16,
                                        "model.width": 4, "train.steps": 1, "train.batch_size": 2,
                                        "model.options": {"d_layers": 1, "unet_depth": 2},
                                        "out": str(tmp_path), "name": "p"})
    before = {p: p.read_bytes() for p in (data / "A").iterdir()}
    one_line_error(cli(monkeypatch, capsys, "translate", run, data / "A", "--out", data / "A"), "input folder")
    one_line_error(cli(monkeypatch, capsys, "upscale", run, data / "A", "--out", data / "A"), "input folder")
    assert {p: p.read_bytes() for p in (data / "A").iterdir()} == before
    code, out, _ = cli(monkeypatch, capsys, "translate", run, data / "A", "--out", tmp_path / "out")
    assert code == 0 and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0.png", "1.png", "2.png", "3.png"]


def test_seeds_give_one_file_per_seed_equal_to_sampling_each_seed(run, tmp_path, monkeypatch, capsys):
    code, out, _ = cli(monkeypatch, capsys, "sample", run, "--seeds", "3-5,9", "--out", tmp_path / "seeds")
    assert code == 0 and "4 files" in out
    assert sorted(p.name for p in (tmp_path / "seeds").iterdir()) == [f"seed000{s}.png" for s in (3, 4, 5, 9)]
    for seed in (3, 9):  # the same picture as `--n 1 --seed S`
        cli(monkeypatch, capsys, "sample", run, "--n", 1, "--seed", seed, "--out", tmp_path / f"one{seed}.npz")
        one = np.load(tmp_path / f"one{seed}.npz")["images"][0, ..., 0]
        assert np.array_equal(one, np.asarray(Image.open(tmp_path / "seeds" / f"seed000{seed}.png")))
    one_line_error(cli(monkeypatch, capsys, "sample", run, "--seeds", "5-3", "--out", tmp_path / "x"), "--seeds")
    one_line_error(cli(monkeypatch, capsys, "sample", run, "--seeds", "1", "--out", tmp_path / "x.png"), "folder")


def test_per_class_writes_an_image_folder_data_set(tmp_path, monkeypatch, capsys, run):
    torch.manual_seed(0)
    cgan = ganforge.train(quiet=True, **tiny_overrides(tmp_path / "runs", **{"train.steps": 2, "model.name": "cgan",
                                                                              "name": "cgan"}))
    code, out, _ = cli(monkeypatch, capsys, "sample", cgan, "--per-class", 3, "--out", tmp_path / "synthetic")
    assert code == 0, out
    folders = sorted(p.name for p in (tmp_path / "synthetic").iterdir())
    assert folders == [str(k) for k in range(10)]  # digits' class names
    assert all(sorted(p.name for p in (tmp_path / "synthetic" / k).iterdir()) ==
               ["00000.png", "00001.png", "00002.png"] for k in folders)
    labelled = ganforge.load(cgan).sample(3, 0 + 7, labels=7).tensor
    from ganforge.media import to_uint8

    assert np.array_equal(np.asarray(Image.open(tmp_path / "synthetic" / "7" / "00001.png")),
                          to_uint8(labelled[1, 0]).numpy())
    one_line_error(cli(monkeypatch, capsys, "sample", run, "--per-class", 2, "--out", tmp_path / "u"), "unconditional")
