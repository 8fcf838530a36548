"""SRResNet / SRGAN / ESRGAN families, perceptual loss and Y-channel metrics."""
import math
from pathlib import Path

import pytest
import torch
from PIL import Image

import ganforge
from ganforge.config import RunConfig, apply_overrides
from ganforge.errors import GanforgeError
from ganforge.families import DataInfo, create
from ganforge.api import generator_state
from ganforge.families.esrgan import RRDBNet, relativistic_logits
from ganforge.nn.srresnet import SRResNet, VGGDiscriminator
from ganforge.upscale import interpolate_states
from ganforge.metrics.superres import evaluate_sr, psnr_y, rgb_to_y, ssim_y


def hr_folder(tmp_path: Path, n: int = 3, size: int = 40) -> Path:
    folder = tmp_path / "hr"
    folder.mkdir()
    g = torch.Generator().manual_seed(0)
    for i in range(n):
        smooth = torch.nn.functional.interpolate(torch.rand(1, 3, 6, 6, generator=g), size=(size, size + 4),
                                                 mode="bicubic", align_corners=False).clamp(0, 1)
        Image.fromarray((smooth[0].permute(1, 2, 0) * 255).round().byte().numpy()).save(folder / f"{i}.png")
    return folder


def tiny(tmp_path, model="srresnet", name="run", **options):
    overrides = {"model.name": model, "data.source": str(hr_folder(tmp_path) if not (tmp_path / "hr").exists()
                                                          else tmp_path / "hr"),
                 "data.resolution": 16, "model.width": 8, "train.batch_size": 4, "train.steps": 4,
                 "train.log_every": 1, "train.sample_every": 4, "train.checkpoint_every": 2, "train.seed": 1,
                 "out": str(tmp_path), "name": name, "model.options.blocks": 1, "model.options.scale": 2}
    overrides |= {f"model.options.{k}": v for k, v in options.items()}
    return ganforge.api.resolve_config(overrides=overrides)


# --- metrics -------------------------------------------------------------------------------------------------

def test_y_psnr_matches_hand_computed_value():
    g = torch.Generator().manual_seed(0)
    hr = torch.randint(20, 200, (1, 3, 12, 12), generator=g).float() / 255
    sr = hr.clone()
    sr[:, 0, 2:-2, 2:-2] += 10 / 255  # +10 levels of red inside the border
    sr[:, :, :2] = 0.0  # damage in the border crop must not count
    dy = 65.481 * (10 / 255) / 255  # BT.601: Y = 16 + 65.481 R + 128.553 G + 24.966 B (R, G, B in [0, 1]), /255
    expected = 10 * math.log10(1 / dy**2)
    assert psnr_y(sr, hr, border=2).item() == pytest.approx(expected, abs=1e-3)
    assert psnr_y(sr, hr, border=0).item() < expected - 10


def test_y_conversion_and_ssim():
    white, black = torch.ones(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)
    assert rgb_to_y(white).flatten()[0].item() == pytest.approx(235 / 255, abs=1e-4)
    assert rgb_to_y(black).flatten()[0].item() == pytest.approx(16 / 255)
    image = torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(ssim_y(image, image, 2), torch.ones(2))
    noisy = (image + 0.1 * torch.randn(image.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
    assert (ssim_y(noisy, image, 2) < 0.95).all()


def test_evaluate_sr_reports_bicubic_next_to_model():
    images = [torch.randint(0, 256, (3, 33, 30), dtype=torch.uint8)]
    from ganforge.data.degrade import bicubic_upscale

    scores = evaluate_sr(lambda lr: bicubic_upscale(lr, 2), images, 2)  # a "model" that is bicubic itself
    assert scores["psnr"] == pytest.approx(scores["bicubic_psnr"], abs=1e-4)
    assert "Y channel" in scores["protocol"] and "2-px border" in scores["protocol"]


# --- networks ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [2, 3, 4])
def test_output_is_exactly_scale_times_odd_input(scale):
    lr = torch.rand(1, 3, 7, 9)
    for net in (SRResNet(3, 8, 1, scale, "batch").eval(), RRDBNet(3, 8, 1, 4, scale)):
        assert net(lr).shape == (1, 3, 7 * scale, 9 * scale)


def test_discriminator_takes_any_patch_size():
    d = VGGDiscriminator(3, 4, "batch")
    assert d(torch.randn(2, 3, 16, 16)).shape == (2,)
    assert d(torch.randn(2, 3, 40, 56)).shape == (2,)


def test_relativistic_average_losses():
    real, fake = torch.tensor([5.0, 6.0]), torch.tensor([-5.0, -6.0])
    r, f = relativistic_logits(real, fake)
    assert torch.allclose(r, torch.tensor([10.5, 11.5])) and torch.allclose(f, torch.tensor([-10.5, -11.5]))
    config = apply_overrides(RunConfig(), {"model.name": "esrgan", "model.width": 4,
                                           "model.options": {"blocks": 1, "growth": 4, "perceptual": "none"}})
    family = create(config, DataInfo(3, 16))
    assert family.discriminator_adversarial(real, fake) < 1e-3  # D already tells real from fake
    assert family.generator_adversarial(real, fake) > 10


def test_network_interpolation():
    a = {"w": torch.zeros(3), "n": torch.tensor(4)}
    b = {"w": torch.ones(3), "n": torch.tensor(4)}
    assert torch.equal(interpolate_states(a, b, 0.0)["w"], a["w"])
    assert torch.allclose(interpolate_states(a, b, 0.25)["w"], torch.full((3,), 0.25))
    with pytest.raises(GanforgeError, match="alpha"):
        interpolate_states(a, b, 1.5)


# --- training ------------------------------------------------------------------------------------------------

@pytest.mark.cpu_only
def test_srresnet_learns_and_resumes_exactly(tmp_path):
    torch.manual_seed(0)
    config = apply_overrides(tiny(tmp_path), {"train.steps": 30, "train.log_every": 10, "train.checkpoint_every": 30,
                                      "train.lr_g": 1e-3}, "test")
    run = ganforge.train(config, quiet=True)
    import csv

    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert float(rows[-1]["pixel"]) < 0.7 * float(rows[0]["pixel"])

    full = ganforge.train(tiny(tmp_path, name="full"), quiet=True)
    half = ganforge.train(apply_overrides(tiny(tmp_path, name="half"), {"train.steps": 2}, "test"), quiet=True)
    ganforge.train(resume=half, quiet=True, **{"train.steps": 4})
    a, b = generator_state(full), generator_state(half)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_srgan_and_esrgan_train_with_adversarial_losses(tmp_path):
    for model, extra in (("srgan", {"pixel_weight": 1.0}), ("esrgan", {"growth": 4})):
        config = tiny(tmp_path, model, name=model, perceptual="none", **extra)
        run = ganforge.train(config, quiet=True)
        header = (run / "metrics.csv").read_text().splitlines()[0]
        assert "d_loss" in header and "adversarial" in header, model
        assert (run / "samples" / "step_000004.png").exists()


@pytest.mark.cpu_only
def test_esrgan_pretraining_then_gan(tmp_path):
    psnr = ganforge.train(tiny(tmp_path, "esrgan", name="psnr", growth=4, adversarial_weight=0.0,
                               perceptual="none", pixel_weight=1.0), quiet=True)
    config = tiny(tmp_path, "esrgan", name="gan", growth=4, perceptual="none", pretrained=str(psnr))
    from ganforge.training.trainer import Trainer

    family = Trainer(config, tmp_path / "gan", quiet=True).family  # the trainer loads the declared weights
    psnr_state = generator_state(psnr)
    assert all(torch.equal(v, psnr_state[k]) for k, v in family.generator.state_dict().items())

    staged = ganforge.train(tiny(tmp_path, "esrgan", name="staged", growth=4, perceptual="none",
                                 pretrain_steps=2), quiet=True)
    import csv

    rows = list(csv.DictReader(open(staged / "metrics.csv")))
    assert math.isnan(float(rows[0]["adversarial"])) and math.isnan(float(rows[0]["d_loss"]))
    assert math.isfinite(float(rows[-1]["adversarial"])) and math.isfinite(float(rows[-1]["d_loss"]))


def test_vgg_perceptual_loss_from_a_weights_file(tmp_path):
    from torchvision.models import vgg19

    from ganforge.nn.perceptual import perceptual_loss

    torch.manual_seed(0)
    features = vgg19(weights=None).features
    path = tmp_path / "vgg19.pth"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    loss = perceptual_loss("vgg", 3, "relu2_2", str(path))
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    assert loss(x, x).item() == 0.0
    y = x.clone().requires_grad_(True)
    value = loss(y, x.flip(-1))
    value.backward()
    assert value.item() > 0 and y.grad.abs().sum() > 0
    assert torch.equal(loss.features.net[0].weight, features[0].weight)

    config = tiny(tmp_path, "srgan", name="vgg", vgg_weights=str(path), perceptual_layer="relu2_2",
                  pixel_weight=1.0)
    run = ganforge.train(apply_overrides(config, {"train.steps": 2}, "test"), quiet=True)
    assert "perceptual" in (run / "metrics.csv").read_text().splitlines()[0]


def test_vgg_unavailable_offline_is_one_clear_error(tmp_path, monkeypatch):
    import torchvision.models

    from ganforge.nn.perceptual import check_available, perceptual_loss

    def offline(weights=None):
        if weights is not None:
            raise OSError("no network")
        return torchvision.models.vgg19.__wrapped__(weights=None)

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(torchvision.models, "vgg19", offline)
    with pytest.raises(GanforgeError, match="vgg_weights=PATH.*perceptual=ganforge"):
        check_available("vgg", 3)
    with pytest.raises(GanforgeError, match="no such file"):
        perceptual_loss("vgg", 3, vgg_weights=str(tmp_path / "missing.pth"))
    with pytest.raises(GanforgeError, match="must be one of"):
        perceptual_loss("alexnet", 3)


def test_ganforge_feature_fallback_on_grey_images():
    from ganforge.nn.perceptual import perceptual_loss

    loss = perceptual_loss("ganforge", 1)
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    assert loss(x, x).item() == 0.0 and loss(x, -x).item() > 0


def test_sampling_without_images_points_to_upscale(tmp_path):
    family = create(tiny(tmp_path), DataInfo(3, 16))
    with pytest.raises(GanforgeError, match="ganforge upscale"):
        family.sample_inputs(4, torch.Generator())


def test_bicubic_residual_starts_at_the_bicubic_baseline(tmp_path):
    from ganforge.data.degrade import bicubic_upscale

    family = create(tiny(tmp_path, residual=True), DataInfo(3, 16)).eval()
    lr = torch.rand(1, 3, 7, 9) * 2 - 1
    assert torch.allclose(family.generate(family.generator, {"lr": lr}), bicubic_upscale(lr, 2), atol=1e-6)
