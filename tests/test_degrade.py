"""Degradation pipeline and super-resolution training data."""
import pytest
import torch

from ganforge.data.degrade import Degradation, bicubic_downscale, degrade
from ganforge.data.sr import SuperResolutionImages, load_hr_images
from ganforge.errors import GanforgeError


def photos(n=3, size=(40, 52), seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (3, *size), generator=g, dtype=torch.uint8) for _ in range(n)]


def hr_batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    smooth = torch.rand(4, 3, 8, 8, generator=g)
    return torch.nn.functional.interpolate(smooth, size=(32, 32), mode="bilinear", align_corners=False)


FULL = Degradation(scale=4, blur=2.0, noise=10.0, jpeg=30, second_order=True)


def test_degradation_deterministic_under_seed():
    hr = hr_batch()
    a = degrade(hr, FULL, torch.Generator().manual_seed(7))
    b = degrade(hr, FULL, torch.Generator().manual_seed(7))
    c = degrade(hr, FULL, torch.Generator().manual_seed(8))
    assert a.shape == (4, 3, 8, 8)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.equal(a, torch.round(a * 255) / 255)  # 8-bit levels, like a saved image
    assert a.min() >= 0 and a.max() <= 1


def test_each_stage_changes_the_output():
    hr = hr_batch()
    plain = degrade(hr, Degradation(scale=2), torch.Generator().manual_seed(0))
    for setting in ({"blur": 2.0}, {"noise": 20.0}, {"jpeg": 10}, {"second_order": True, "blur": 1.0}):
        out = degrade(hr, Degradation(scale=2, **setting), torch.Generator().manual_seed(0))
        assert out.shape == plain.shape
        assert (out - plain).abs().mean() > 1e-3, setting


def test_bicubic_keeps_constant_images_and_checks_sizes():
    flat = torch.full((1, 3, 16, 16), 0.4)
    assert torch.allclose(bicubic_downscale(flat, 4), torch.full((1, 3, 4, 4), 0.4), atol=1e-6)
    with pytest.raises(GanforgeError, match="multiple of the scale"):
        bicubic_downscale(torch.zeros(1, 3, 10, 10), 4)
    with pytest.raises(GanforgeError, match="scale must be"):
        Degradation(scale=5).check()


def test_pairs_shapes_ranges_and_exact_resume():
    data = SuperResolutionImages(photos(), 16, Degradation(scale=2, noise=5.0, jpeg=50))
    batches = data.batches(5, torch.device("cpu"), seed=3, flip=True)
    first = batches.next()
    assert first["lr"].shape == (5, 3, 8, 8) and first["hr"].shape == (5, 3, 16, 16)
    assert first["hr"].min() >= -1 and first["hr"].max() <= 1
    batches.next()
    state = batches.state_dict()
    expected = [batches.next() for _ in range(3)]
    resumed = data.batches(5, torch.device("cpu"), seed=99)
    resumed.flip = True
    resumed.load_state_dict(state)
    for want in expected:
        got = resumed.next()
        assert torch.equal(got["lr"], want["lr"]) and torch.equal(got["hr"], want["hr"])


def test_hr_crops_come_from_the_images():
    images = photos(1)
    data = SuperResolutionImages(images, 16, Degradation(scale=2))
    crop = data.crops(torch.tensor([0]), torch.Generator().manual_seed(0))[0]
    windows = images[0].unfold(1, 16, 1).unfold(2, 16, 1)  # every 16x16 window
    assert (windows == crop[:, None, None]).flatten(3).all(-1).all(0).any()


def test_source_validation(tmp_path):
    from PIL import Image

    Image.new("RGB", (40, 40)).save(tmp_path / "big.png")
    Image.new("RGB", (10, 12)).save(tmp_path / "tiny.png")
    with pytest.raises(GanforgeError, match="smaller than the 16-px crop.*tiny.png"):
        load_hr_images(str(tmp_path), 16)
    with pytest.raises(GanforgeError, match="not a multiple of the scale"):
        SuperResolutionImages(photos(), 18, Degradation(scale=4))
    (tmp_path / "tiny.png").unlink()
    images, names, _ = load_hr_images(str(tmp_path), 16)
    assert names == ["big.png"] and images[0].shape == (3, 40, 40)


def test_skimage_source_loads_bundled_photos():
    pytest.importorskip("skimage")
    images, names, _ = load_hr_images("skimage", 64, limit=2)
    assert len(images) == 2 and all(im.dtype == torch.uint8 and im.shape[0] == 3 for im in images)
