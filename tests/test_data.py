import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.data import load_images
from ganforge.errors import GanforgeError


def test_digits_are_resized_and_labelled():
    data = load_images("digits", 16)
    assert data.images.shape == (1797, 1, 16, 16) and data.images.dtype == torch.uint8
    assert data.labels is not None and set(data.labels.tolist()) == set(range(10))
    assert data.images.max() > 200  # ink reaches full intensity
    floats = data.as_float()
    assert floats.min() >= -1 and floats.max() <= 1


def _write_folder(root):
    (root / "cats").mkdir(parents=True)
    (root / "dogs").mkdir()
    Image.new("RGB", (40, 30), (255, 0, 0)).save(root / "cats" / "a.png")
    Image.new("L", (17, 23), 128).save(root / "cats" / "b.jpg")
    Image.new("RGBA", (20, 20), (0, 0, 255, 128)).save(root / "dogs" / "c.png")
    Image.new("P", (33, 33)).save(root / "dogs" / "d.gif")
    (root / "dogs" / "notes.txt").write_text("not an image")
    (root / "dogs" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")


def test_folder_mixed_sizes_modes_labels_and_corrupt_files(tmp_path):
    _write_folder(tmp_path)
    data = load_images(str(tmp_path), 8)
    assert data.images.shape == (4, 3, 8, 8)
    assert data.classes == ["cats", "dogs"]
    assert data.labels.tolist() == [0, 0, 1, 1]
    assert data.skipped == 1
    red = data.images[0].float().mean((1, 2))
    assert red[0] > 250 and red[1] < 5
    grey = load_images(str(tmp_path), 8, channels=1)
    assert grey.images.shape == (4, 1, 8, 8)


def test_grey_folder_gets_one_channel(tmp_path):
    for i in range(3):
        Image.new("L", (12, 12), i * 50).save(tmp_path / f"{i}.png")
    data = load_images(str(tmp_path), 8)
    assert data.channels == 1 and data.labels is None


def test_arrays(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (10, 12, 12, 3), dtype=np.uint8)
    np.save(tmp_path / "x.npy", images)
    data = load_images(str(tmp_path / "x.npy"), 8)
    assert data.images.shape == (10, 3, 8, 8)
    np.savez(tmp_path / "y.npz", images=images.astype(np.float32) / 255.0, labels=np.arange(10) % 2)
    data = load_images(str(tmp_path / "y.npz"), 16)
    assert data.images.shape == (10, 3, 16, 16) and data.labels.tolist() == [0, 1] * 5
    np.save(tmp_path / "bad.npy", np.zeros((3, 4)))
    with pytest.raises(GanforgeError, match="expected images shaped"):
        load_images(str(tmp_path / "bad.npy"), 8)


def test_bad_sources_are_named(tmp_path):
    with pytest.raises(GanforgeError, match="no such file or folder"):
        load_images(str(tmp_path / "missing"), 8)
    (tmp_path / "empty").mkdir()
    with pytest.raises(GanforgeError, match="no image files found"):
        load_images(str(tmp_path / "empty"), 8)
    (tmp_path / "corrupt").mkdir()
    for i in range(3):
        (tmp_path / "corrupt" / f"{i}.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(GanforgeError, match="all 3 image files are unreadable"):
        load_images(str(tmp_path / "corrupt"), 8)


def test_torchvision_offline_error(tmp_path, monkeypatch):
    import torchvision.datasets as tv

    def offline(*args, **kwargs):
        if kwargs.get("download"):
            raise OSError("network unreachable")
        raise RuntimeError("Dataset not found")

    monkeypatch.setattr(tv, "FashionMNIST", offline)
    with pytest.raises(GanforgeError, match="download failed.*offline"):
        load_images("fashion-mnist", 8, root=str(tmp_path))


def test_mnist_from_local_root(shared_data):
    data = load_images("mnist", 8, root=str(shared_data / "mnist"), limit=100)
    assert data.images.shape == (100, 1, 8, 8) and len(data.classes) == 10
