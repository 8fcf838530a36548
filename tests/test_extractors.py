"""Feature extractors: shipped domain classifiers, the FID InceptionV3 loading path (random weights, no network)."""
import json
import urllib.error
from pathlib import Path

import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.metrics import default_extractor_for, evaluate_images, load_extractor
from ganforge.metrics.extractors import WEIGHTS_DIR, file_hash
from ganforge.metrics.fit import accuracy
from ganforge.metrics.inception import WEIGHTS_FILE, FIDInceptionV3, load_inception

DATA = Path("../shared/data")


def sklearn_digits(size):
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 8 - 1
    images = torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    return images, torch.tensor(digits.target)


@pytest.mark.parametrize("name", ["digits", "cifar10"])
def test_shipped_extractors_are_small_and_named_by_hash(name):
    weights = WEIGHTS_DIR / f"{name}.safetensors"
    assert weights.stat().st_size < 1_000_000
    model = load_extractor(name)
    assert model.name == name and model.weights_hash == file_hash(weights) and len(model.weights_hash) == 12
    assert model.num_features == 128 and model.num_classes == 10
    config = json.loads(weights.with_suffix(".json").read_text())
    assert config["training"]["holdout_accuracy"] > (0.98 if name == "digits" else 0.6)


@pytest.mark.parametrize("size", [16, 32])
def test_digits_extractor_classifies_held_out_sklearn_digits(size):
    images, labels = sklearn_digits(size)
    held_out = torch.arange(len(images)) % 3 == 0  # never seen in training (benchmarks/train_extractors.py)
    assert accuracy(load_extractor("digits"), images[held_out], labels[held_out]) > 0.95


def test_cifar10_extractor_classifies_held_out_images():
    tar = DATA / "cifar10-test-jpg.tar"
    if not tar.exists():
        pytest.skip(f"{tar} not present")
    from ganforge.metrics.images import load_images

    data = load_images(tar, limit=1000)  # every 10th file: 100 per class, all in the held-out split (index % 5 == 0)
    assert torch.bincount(data.labels).tolist() == [100] * 10
    assert accuracy(load_extractor("cifar10"), data.images, data.labels) > 0.65


def test_extractors_adapt_channels_and_size():
    digits, cifar = load_extractor("digits"), load_extractor("cifar10")
    rgb = torch.rand(3, 3, 20, 20) * 2 - 1
    features, logits = digits.extract(rgb)
    assert features.shape == (3, 128) and logits.shape == (3, 10)
    assert cifar.extract(rgb[:, :1])[0].shape == (3, 128)
    assert default_extractor_for(1, 28) == "digits" and default_extractor_for(3, 64) == "cifar10"
    with pytest.raises(GanforgeError, match="unknown extractor"):
        load_extractor("alexnet")


def test_inception_loads_pytorch_fid_state_dict_by_key_names(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    state = FIDInceptionV3().state_dict()
    for key in ("Conv2d_1a_3x3.conv.weight", "Conv2d_1a_3x3.bn.running_var", "Mixed_5b.branch_pool.conv.weight",
                "Mixed_6e.branch7x7dbl_5.bn.bias", "Mixed_7c.branch3x3dbl_3b.conv.weight", "fc.weight", "fc.bias"):
        assert key in state
    assert state["fc.weight"].shape == (1008, 2048) and not any(k.startswith("AuxLogits") for k in state)
    path = tmp_path / WEIGHTS_FILE
    torch.save(state, path)
    model = load_extractor(path)
    assert model.name == "inception" and model.weights_hash == file_hash(path)
    assert model.Mixed_7c.max_pool and not model.Mixed_7b.max_pool
    grey_small = torch.rand(2, 1, 32, 32) * 2 - 1
    features, logits = model.extract(grey_small)
    assert features.shape == (2, 2048) and logits.shape == (2, 1008) and torch.isfinite(features).all()
    scores = evaluate_images(grey_small.flip(0), grey_small, metrics="fid", extractor=str(path), cache=False)
    assert scores["fid"] == pytest.approx(0, abs=1e-3)  # same two images in another order
    assert scores["record"].extractor == "inception" and scores["record"].resize_filter.startswith("bilinear@299")


def test_inception_without_weights_offline_fails_with_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("GANFORGE_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("GANFORGE_OFFLINE", "1")
    with pytest.raises(GanforgeError) as error:
        load_extractor("inception")
    message = str(error.value)
    assert "\n" not in message and WEIGHTS_FILE in message and "GANFORGE_INCEPTION_WEIGHTS" in message

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setenv("GANFORGE_OFFLINE", "0")
    monkeypatch.setattr("urllib.request.urlopen", no_network)
    with pytest.raises(GanforgeError, match="download failed.*no route to host"):
        load_inception()
    assert list((tmp_path / "cache").iterdir()) == []  # no partial download left behind


def test_inception_rejects_a_file_that_is_not_its_state_dict(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"weight": torch.zeros(2)}, path)
    with pytest.raises(GanforgeError, match="not an FID InceptionV3 state dict"):
        load_extractor(path)
