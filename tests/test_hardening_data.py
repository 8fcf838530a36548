"""Hardening of data input and config validation: one image reader, 16-bit and float images, bad arrays,
skipped-file reports, numeric config ranges and one-line messages."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.data import load_images, read_image
from ganforge.errors import GanforgeError

# 16-bit values with known 8-bit results (value / 257, rounded)
SIXTEEN = np.array([[0, 257, 65535, 32896], [1000, 128, 65280, 300]], dtype=np.uint16)
EIGHT = np.array([[0, 1, 255, 128], [4, 0, 254, 1]], dtype=np.uint8)


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message and "Traceback" not in message
    return message


# --- one image reader -----------------------------------------------------------------------------------------

def test_metrics_reads_through_the_shared_reader_and_suffix_set(tmp_path):
    import ganforge.data.image_files as files
    import ganforge.metrics.images as metric_images

    assert not hasattr(metric_images, "EXTENSIONS")
    Image.new("RGB", (8, 8), (10, 20, 30)).save(tmp_path / "a.ppm")  # a suffix only the data reader knew
    Image.new("RGB", (8, 8), (10, 20, 30)).save(tmp_path / "b.png")
    loaded = metric_images.load_images(tmp_path)
    assert loaded.images.shape == (2, 3, 8, 8)
    assert loaded.image_format == "png,ppm:RGB->PIL.BICUBIC@8"
    assert files.list_images(tmp_path) == sorted(tmp_path.iterdir())


def test_metrics_puts_transparent_pixels_on_white_like_training(tmp_path):
    from ganforge.metrics.images import load_images as metric_load

    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    images = metric_load(tmp_path).images
    assert images.min() == 1.0  # white, as the training loader reads it (it was black)


# --- 16-bit and float images ----------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path, suffix):
    path = tmp_path / f"deep{suffix}"
    Image.fromarray(SIXTEEN).save(path)
    assert Image.open(path).mode.startswith("I;16")
    assert np.array_equal(np.asarray(read_image(path, "L")), EIGHT)
    rgb = np.asarray(read_image(path, "RGB"))
    assert np.array_equal(rgb, np.repeat(EIGHT[..., None], 3, -1))
    assert read_image(path).mode == "L"


def test_sixteen_bit_tiff_big_endian_and_16_bit_values_in_32_bit_mode(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    tifffile.imwrite(tmp_path / "be.tif", SIXTEEN, byteorder=">")
    assert np.array_equal(np.asarray(read_image(tmp_path / "be.tif", "L")), EIGHT)
    tifffile.imwrite(tmp_path / "i.tif", SIXTEEN.astype(np.int32))  # opens as 'I', as older Pillows open 16-bit PNGs
    assert Image.open(tmp_path / "i.tif").mode == "I"
    assert np.array_equal(np.asarray(read_image(tmp_path / "i.tif", "L")), EIGHT)


def test_float_images_and_out_of_range_ints(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    tifffile.imwrite(tmp_path / "f.tif", (SIXTEEN / 65535.0).astype(np.float32))
    assert Image.open(tmp_path / "f.tif").mode == "F"
    assert np.array_equal(np.asarray(read_image(tmp_path / "f.tif", "L")), EIGHT)
    tifffile.imwrite(tmp_path / "nan.tif", np.full((4, 4), np.nan, np.float32))
    with pytest.raises(GanforgeError, match="16 non-finite") as error:
        read_image(tmp_path / "nan.tif", "L")
    assert "nan.tif" in _one_line(error)
    tifffile.imwrite(tmp_path / "big.tif", np.array([[-5, 1 << 20]], np.int32))
    with pytest.raises(GanforgeError, match="do not fit 16 bits"):
        read_image(tmp_path / "big.tif", "L")


def test_sixteen_bit_folder_trains_on_true_values(tmp_path):
    for i in range(2):
        Image.fromarray(np.full((8, 8), 32896, np.uint16)).save(tmp_path / f"{i}.png")
    data = load_images(str(tmp_path), 8)
    assert data.channels == 1 and data.images.unique().tolist() == [128]


def test_unreadable_file_is_a_one_line_error_naming_it(tmp_path):
    (tmp_path / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(GanforgeError, match="x.png: cannot read the image") as error:
        read_image(tmp_path / "x.png", "RGB")
    _one_line(error)


# --- arrays ---------------------------------------------------------------------------------------------------

def test_non_finite_arrays_are_refused_with_the_count(tmp_path):
    images = np.zeros((4, 8, 8), np.float32)
    images[0, 0, :3] = np.nan
    images[1, 1, 1] = np.inf
    np.savez(tmp_path / "bad.npz", images=images)
    with pytest.raises(GanforgeError, match=r"4 non-finite value\(s\)") as error:
        load_images(str(tmp_path / "bad.npz"), 8)
    assert "bad.npz" in _one_line(error)
    np.save(tmp_path / "nan.npy", np.full((2, 8, 8), np.nan))
    with pytest.raises(GanforgeError, match="128 non-finite"):
        load_images(str(tmp_path / "nan.npy"), 8)


@pytest.mark.parametrize("array, match", [
    (np.full((2, 3, 8, 8), "ab"), "dtype <U2"),
    (np.zeros((2, 8, 8), complex), "dtype complex128"),
    (np.zeros((2, 8, 8), "datetime64[s]"), "dtype datetime64"),
    (np.zeros((0, 8, 8), np.uint8), "no pixels"),
])
def test_arrays_of_the_wrong_kind_are_one_line_errors(tmp_path, array, match):
    np.save(tmp_path / "x.npy", array)
    with pytest.raises(GanforgeError, match=match) as error:
        load_images(str(tmp_path / "x.npy"), 8)
    _one_line(error)


def test_object_arrays_are_refused_without_unpickling(tmp_path, monkeypatch):
    import pickle

    def no_unpickling(*args, **kwargs):
        raise AssertionError("unpickled")

    objects = np.empty((2, 8, 8), object)
    objects[:] = 1
    np.save(tmp_path / "o.npy", objects, allow_pickle=True)
    np.savez(tmp_path / "o.npz", images=objects, allow_pickle=True)
    np.savez(tmp_path / "l.npz", images=np.zeros((2, 8, 8), np.uint8), labels=np.array([1, "a"], object))
    monkeypatch.setattr(pickle, "loads", no_unpickling)
    monkeypatch.setattr(pickle, "load", no_unpickling)
    for name in ("o.npy", "o.npz", "l.npz"):
        with pytest.raises(GanforgeError, match="cannot read the array") as error:
            load_images(str(tmp_path / name), 8)
        _one_line(error)


def test_bool_arrays_and_bad_labels(tmp_path):
    mask = np.zeros((2, 8, 8), bool)
    mask[:, :4] = True
    np.save(tmp_path / "m.npy", mask)
    assert load_images(str(tmp_path / "m.npy"), 8).images.unique().tolist() == [0, 255]
    for labels, match in ((np.array(["a", "b"]), "labels must be one number"), (np.array([0.5, 1.0]), "whole"),
                          (np.array([-1, 0]), "0 or more"), (np.array([[0, 1]]), "one number per image")):
        np.savez(tmp_path / "l.npz", images=np.zeros((2, 8, 8), np.uint8), labels=labels)
        with pytest.raises(GanforgeError, match=match):
            load_images(str(tmp_path / "l.npz"), 8)


# --- skipped images are reported -----------------------------------------------------------------------------

def test_skipped_images_are_reported_once_on_stderr(tmp_path, capsys):
    for i in range(2):
        Image.new("L", (8, 8), 100).save(tmp_path / f"good{i}.png")
    for name in ("bad1.png", "bad2.jpg", "bad3.png"):
        (tmp_path / name).write_bytes(b"not an image")
    data = load_images(str(tmp_path), 8)
    assert len(data) == 2 and data.skipped == 3
    err = capsys.readouterr().err
    assert err.count("warning: skipped 3 unreadable image(s) in") == 1 and "(first: bad1.png" in err


def test_skipped_images_are_reported_for_super_resolution_folders(tmp_path, capsys):
    from ganforge.data.sr import load_hr_images

    Image.new("RGB", (16, 16)).save(tmp_path / "ok.png")
    (tmp_path / "broken.png").write_bytes(b"nope")
    images, names, _ = load_hr_images(str(tmp_path), 8)
    assert names == ["ok.png"]
    assert "warning: skipped 1 unreadable image(s)" in capsys.readouterr().err


# --- config validation ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("override, message", [
    ({"train": {"beta1": 5}}, "train.beta1 must be in [0, 1), got 5.0"),
    ({"train": {"beta1": -1}}, "train.beta1 must be in [0, 1), got -1.0"),
    ({"train": {"beta2": 1}}, "train.beta2 must be in [0, 1), got 1.0"),
    ({"train": {"lr_d": 0}}, "train.lr_d must be greater than 0, got 0.0"),
    ({"model": {"penalty_weight": -0.5}}, "model.penalty_weight must be at least 0, got -0.5"),
    ({"model": {"latent_dim": 0}}, "model.latent_dim must be at least 1, got 0"),
    ({"model": {"width": -2}}, "model.width must be at least 1, got -2"),
    ({"data": {"limit": 0}}, "data.limit must be at least 1, got 0"),
    ({"train": {"keep_checkpoints": -1}}, "train.keep_checkpoints must be at least 0, got -1"),
    ({"train": {"max_rollbacks": -1}}, "train.max_rollbacks must be at least 0, got -1"),
    ({"train": {"ema_start": -1}}, "train.ema_start must be at least 0, got -1"),
    ({"train": {"eval_every": -1}}, "train.eval_every must be at least 0, got -1"),
    ({"train": {"seed": -1}}, "train.seed must be in [0, 2^63), got -1"),
    ({"train": {"eval_every": 10, "eval_n": 0}}, "train.eval_n must be at least 2 when train.eval_every is on"),
])
def test_numeric_fields_are_range_checked_in_one_line(override, message):
    from ganforge.config import from_dict, validate

    validate(from_dict({}))
    with pytest.raises(GanforgeError) as error:
        validate(from_dict(override))
    assert message in _one_line(error)


@pytest.mark.parametrize("text, message", [
    ("lr_g: .nan", "train.lr_g: expected a finite number greater than 0, got nan"),
    ("lr_d: .inf", "train.lr_d: expected a finite number greater than 0, got inf"),
    ("beta1: -.inf", "train.beta1: expected a finite number in [0, 1), got -inf"),
])
def test_non_finite_yaml_values_are_refused(tmp_path, text, message):
    from ganforge.config import from_dict, load_yaml

    (tmp_path / "c.yaml").write_text(f"train:\n  {text}\n")
    with pytest.raises(GanforgeError) as error:
        from_dict(load_yaml(tmp_path / "c.yaml"))
    assert message in _one_line(error)


def test_non_finite_values_set_in_python_are_refused_by_validate():
    from ganforge.config import RunConfig, validate

    config = RunConfig()
    config.model.penalty_weight = math.inf
    with pytest.raises(GanforgeError, match=r"model.penalty_weight must be a finite number at least 0, got inf"):
        validate(config)


def test_sections_of_the_wrong_shape_are_named_as_such(tmp_path):
    from ganforge.config import from_dict, load_yaml

    (tmp_path / "list.yaml").write_text("data: [1, 2]\n")
    with pytest.raises(GanforgeError, match=r"section 'data' expects a mapping of data settings, got a list \(\[1, 2\]\)"):
        from_dict(load_yaml(tmp_path / "list.yaml"))
    (tmp_path / "empty.yaml").write_text("train:\nmodel:\n  latent_dim: 8\n")  # every train key commented out
    assert from_dict(load_yaml(tmp_path / "empty.yaml")).model.latent_dim == 8
    for bad in ({"train": {"device": ["cpu"]}}, {"out": {"a": 1}}, {"train": {"lr_g": True}}):
        with pytest.raises(GanforgeError, match="expected a"):
            from_dict(bad)


def test_cli_limit_zero_names_the_limit_not_the_batch_size(tmp_path):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "ganforge", "train", "--limit", "0", "--steps", "1", "--out",
                             str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "data.limit must be at least 1, got 0" in result.stderr and "batch" not in result.stderr
    assert "Traceback" not in result.stderr


# --- packaging ------------------------------------------------------------------------------------------------

def _project() -> dict:
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    return tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]


def test_dependencies_floor_caps_and_extras():
    from packaging.requirements import Requirement

    project = _project()
    core = {Requirement(r).name: Requirement(r).specifier for r in project["dependencies"]}
    assert "2.3.9" not in core["torch"] and "2.4.0" in core["torch"]  # fused Adam on CPU
    assert "0.18.9" not in core["torchvision"] and "0.19.0" in core["torchvision"]
    for name, specifier in core.items():  # no cap pinned to a patch release
        assert not any(s.operator in ("<=", "==", "<") and s.version.count(".") >= 2 for s in specifier), name
    assert not {"optuna", "cmaes", "plotly", "scikit-image"} & set(core)
    extras = project["optional-dependencies"]
    assert {Requirement(r).name for r in extras["tune"]} >= {"optuna", "cmaes", "plotly"}
    assert "scikit-image" in {Requirement(r).name for r in extras["sr"]}
    assert any(Requirement(r).name == "ganforge" and Requirement(r).extras >= {"tune", "sr"} for r in extras["test"])


def test_missing_scikit_image_names_the_extra(monkeypatch):
    import sys

    from ganforge.data.sr import load_hr_images

    monkeypatch.setitem(sys.modules, "skimage", None)
    monkeypatch.setitem(sys.modules, "skimage.data", None)
    with pytest.raises(GanforgeError, match=r"pip install 'ganforge\[sr\]'") as error:
        load_hr_images("skimage", 32)
    _one_line(error)
