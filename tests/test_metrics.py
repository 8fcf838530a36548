"""Metrics: cross-checks against scipy, numpy, scikit-image and torchmetrics, toy cases with known answers."""
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy import linalg
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.metrics import EvalRecord, Evaluator, compare, evaluate_images, frechet_distance
from ganforge.metrics import stats as stats_module
from ganforge.metrics.classes import class_kl, diversity, mode_collapse_report
from ganforge.commands.evaluate import evaluate_command
from ganforge.metrics.extractors import DomainClassifier, classifier_config
from ganforge.metrics.inception_score import inception_score
from ganforge.metrics.kid import kernel_inception_distance, polynomial_mmd
from ganforge.metrics.pixel import ms_ssim, psnr, ssim
from ganforge.metrics.prdc import density_coverage, precision_recall


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own on-disk cache and an empty in-memory cache."""
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    stats_module._memory.clear()
    yield
    stats_module._memory.clear()


def tiny_extractor(channels=3, seed=0):
    torch.manual_seed(seed)
    config = classifier_config("tiny", [str(i) for i in range(4)], channels, resolution=16)
    config["widths"] = [8, 8, 8]
    config["feature_dim"] = 16
    model = DomainClassifier(config).eval()
    model.weights_hash = f"test{seed}"
    return model


class Features(nn.Module):
    """torchmetrics-facing wrapper: one output (features or logits) and a num_features attribute."""

    def __init__(self, extractor, output=0):
        super().__init__()
        self.extractor, self.output = extractor, output
        self.num_features = extractor.num_features if output == 0 else extractor.num_classes

    def forward(self, images):
        return self.extractor(images)[self.output]


def correlated(n, d, seed, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    mixing = torch.randn(d, d, generator=g) / d ** 0.5
    return torch.randn(n, d, generator=g) @ mixing + shift


def images(n, channels=3, size=16, seed=0):
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def scipy_fid(x, y):
    x, y = x.double().numpy(), y.double().numpy()
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_fid_matches_direct_scipy_formula():
    x, y = correlated(600, 24, 0), correlated(500, 24, 1, shift=0.3)
    ours = frechet_distance(x.double().mean(0), torch.from_numpy(np.cov(x.double().numpy(), rowvar=False)),
                            y.double().mean(0), torch.from_numpy(np.cov(y.double().numpy(), rowvar=False)))
    assert abs(ours - scipy_fid(x, y)) / scipy_fid(x, y) < 1e-3
    assert frechet_distance(x.mean(0), torch.eye(24), x.mean(0), torch.eye(24)) == pytest.approx(0, abs=1e-9)


@pytest.mark.filterwarnings("ignore:Matrix is singular")  # dead ReLU units of the random extractor, for scipy
def test_fid_matches_torchmetrics_with_the_same_extractor():
    from torchmetrics.image.fid import FrechetInceptionDistance

    extractor = tiny_extractor()
    real, fake = images(300, seed=1), images(200, seed=2) * 0.7
    ours = evaluate_images(fake, real, metrics=("fid",), extractor=extractor)["fid"]
    reference = FrechetInceptionDistance(feature=Features(extractor), normalize=False)
    reference.update(real, real=True)
    reference.update(fake, real=False)
    theirs = reference.compute().item()
    assert ours > 0 and abs(ours - theirs) / theirs < 1e-3
    features_real, _ = extractor.extract(real)
    features_fake, _ = extractor.extract(fake)
    assert abs(ours - scipy_fid(features_real, features_fake)) / ours < 1e-3


def numpy_unbiased_mmd(x, y):
    x, y = x.astype(np.float64), y.astype(np.float64)
    d = x.shape[1]
    kernel = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
    m, n = len(x), len(y)
    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    return ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
            - 2 * kxy.sum() / (m * n))


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save")
def test_kid_matches_numpy_unbiased_mmd_and_torchmetrics():
    from torchmetrics.image.kid import KernelInceptionDistance

    x, y = correlated(120, 16, 0), correlated(120, 16, 1, shift=0.5)
    expected = numpy_unbiased_mmd(x.numpy(), y.numpy())
    assert polynomial_mmd(x.double(), y.double()).item() == pytest.approx(expected, rel=1e-9)
    mean, std = kernel_inception_distance(x, y, subsets=3, subset_size=500)  # size capped at 120: all samples
    assert mean == pytest.approx(expected, rel=1e-9) and std == pytest.approx(0, abs=1e-9)

    identity = nn.Identity()
    identity.num_features = 16
    reference = KernelInceptionDistance(feature=identity, subsets=2, subset_size=120, normalize=False)
    reference.update(x.double(), real=True)
    reference.update(y.double(), real=False)
    assert mean == pytest.approx(reference.compute()[0].item(), rel=1e-6)


@pytest.mark.filterwarnings("ignore:Metric `InceptionScore` will save", "ignore:std")
def test_inception_score_uniform_is_one_and_confident_balanced_is_k():
    from torchmetrics.image.inception import InceptionScore

    k = 8
    assert inception_score(torch.zeros(400, k))[0] == pytest.approx(1.0, abs=1e-9)
    onehot = torch.full((320, k), -50.0)
    onehot[torch.arange(320), torch.arange(320) % k] = 50.0  # each of the 4 splits holds every class equally
    mean, _ = inception_score(onehot, splits=4)
    assert mean == pytest.approx(k, rel=1e-6)
    logits = torch.randn(300, k, generator=torch.Generator().manual_seed(0)) * 3
    reference = InceptionScore(feature=nn.Identity(), splits=1, normalize=False)
    reference.update(logits)
    assert inception_score(logits, splits=1)[0] == pytest.approx(reference.compute()[0].item(), rel=1e-4)


def test_precision_recall_density_coverage_on_toy_clouds():
    real = correlated(300, 8, 0)
    assert precision_recall(real, real.clone()) == (1.0, 1.0)
    assert density_coverage(real, real.clone())[1] == 1.0
    far = correlated(300, 8, 1, shift=100.0)
    assert precision_recall(real, far) == (0.0, 0.0)
    assert density_coverage(real, far) == (0.0, 0.0)
    # two well-separated clusters in the real set; the fake set reproduces only one of them
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(200, 2, generator=g), torch.randn(200, 2, generator=g) + 50
    precision, recall = precision_recall(torch.cat([a, b]), torch.randn(200, 2, generator=g))
    assert precision > 0.9 and 0.4 < recall < 0.55
    with pytest.raises(GanforgeError, match="need more than k"):
        precision_recall(real[:3], real[:3])


def test_mode_collapse_report_flags_a_one_class_generator():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(500) % 10
    real_logits = torch.nn.functional.one_hot(labels, 10).float() * 10
    real_features = torch.randn(500, 16, generator=g) + labels[:, None].float()
    healthy = mode_collapse_report(real_features, real_logits, real_features.flip(0), real_logits.flip(0))
    assert not healthy["collapsed"] and healthy["classes_covered"] == 10
    one_class_logits = torch.nn.functional.one_hot(torch.full((500,), 3), 10).float() * 10
    one_class_features = torch.randn(500, 16, generator=g) * 0.01 + 3
    report = mode_collapse_report(real_features, real_logits, one_class_features, one_class_logits)
    assert report["collapsed"] and report["classes_covered"] == 1 and report["largest_class_share"] == 1.0
    assert report["near_duplicate_rate"] == 1.0 and len(report["reasons"]) == 3
    assert class_kl(real_logits, one_class_logits) > 1.0
    assert class_kl(real_logits, real_logits) == pytest.approx(0, abs=1e-12)
    overall, within = diversity(real_features, real_logits)
    assert overall > within > 0
    assert diversity(one_class_features, one_class_logits)[0] < 0.1 * overall


def smooth_images(n, channels, size, seed):
    x = torch.rand(n, channels, size // 4, size // 4, generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear") * 2 - 1


def test_ssim_psnr_match_scikit_image():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    real = smooth_images(3, 3, 48, 0)
    fake = (real + 0.2 * torch.randn(real.shape, generator=torch.Generator().manual_seed(1))).clamp(-1, 1)
    unit = lambda t: ((t + 1) / 2).permute(0, 2, 3, 1).double().numpy()  # noqa: E731
    expected_ssim = np.mean([
        structural_similarity(f, r, channel_axis=-1, data_range=1.0, gaussian_weights=True, sigma=1.5,
                              use_sample_covariance=False)
        for f, r in zip(unit(fake), unit(real))
    ])
    assert abs(ssim(fake, real) - expected_ssim) < 1e-3
    expected_psnr = np.mean([peak_signal_noise_ratio(r, f, data_range=1.0) for f, r in zip(unit(fake), unit(real))])
    assert psnr(fake, real) == pytest.approx(expected_psnr, abs=1e-3)
    same, scales = ms_ssim(real, real)
    assert same == pytest.approx(1.0, abs=1e-4) and scales == 3  # 48 px > 10 * 2^2: three scales fit
    assert ms_ssim(fake, real)[0] < 0.99
    with pytest.raises(GanforgeError, match="shapes differ"):
        ssim(fake[:2], real)


def test_record_compare_refuses_different_protocols():
    real, fake = images(40, seed=5), images(40, seed=6)
    a = evaluate_images(fake, real, metrics="fid", extractor=tiny_extractor())["record"]
    b = evaluate_images(fake, real, metrics="fid", extractor=tiny_extractor())["record"]
    compare(a, b)
    compare(a.to_dict(), EvalRecord.from_dict(json.loads(json.dumps(b.to_dict()))))
    c = evaluate_images(fake[:30], real, metrics="fid", extractor=tiny_extractor(seed=1))["record"]
    with pytest.raises(GanforgeError, match="extractor_hash 'test0' vs 'test1'.*n_fake 40 vs 30"):
        compare(a, c)
    assert a.extractor == "tiny" and a.n_real == 40 and a.resize_filter == "bilinear-antialias@16"


class CountingExtractor:
    """Wraps an extractor's extract() to count how many images went through it."""

    def __init__(self, extractor):
        self.seen = 0
        inner = extractor.extract

        def extract(batch, batch_size=250):
            self.seen += len(batch)
            return inner(batch, batch_size)

        extractor.extract = extract


def test_reference_statistics_are_cached_on_disk_and_reused(tmp_path):
    extractor = tiny_extractor()
    counter = CountingExtractor(extractor)
    real, fake = images(50, seed=7), images(30, seed=8)
    first = evaluate_images(fake, real, metrics=("fid", "kid", "pr"), extractor=extractor)
    assert counter.seen == 80
    files = list((tmp_path / "cache" / "stats").iterdir())
    assert len(files) == 1 and files[0].suffix == ".safetensors"  # reals only, written atomically (no temp left)
    stats_module._memory.clear()
    second = evaluate_images(fake, real, metrics=("fid", "kid", "pr"), extractor=extractor)
    assert counter.seen == 110  # reals came from disk, fakes were extracted again
    assert second["fid"] == pytest.approx(first["fid"], rel=1e-9) and second["recall"] == first["recall"]
    evaluate_images(fake, real, metrics="fid", extractor=extractor)
    assert counter.seen == 110  # both sides from memory
    evaluate_images(fake, real.flip(0).contiguous(), metrics="fid", extractor=extractor)
    assert counter.seen == 160  # different content, different key


def test_evaluator_computes_real_statistics_once():
    extractor = tiny_extractor()
    counter = CountingExtractor(extractor)
    real = images(64, seed=9)
    evaluator = Evaluator(real, metrics=("fid", "kid", "mode_collapse"), n=32, extractor=extractor)
    draws = []

    def sample(n):
        draws.append(n)
        return images(n, seed=len(draws)) * 0.5

    first, second = evaluator(sample), evaluator(sample)
    assert draws == [32, 32] and counter.seen == 64 + 32 + 32
    assert set(first) >= {"fid", "kid", "kid_std", "mode_collapse/classes_covered"}
    assert all(isinstance(v, float) for v in first.values()) and first["fid"] != second["fid"]
    assert evaluator.record.n_fake == 32
    with pytest.raises(GanforgeError, match="paired"):
        Evaluator(real, metrics=("ssim",), extractor=extractor)


def test_user_errors_are_one_line_ganforge_errors():
    real = images(8)
    with pytest.raises(GanforgeError, match="unknown metric.*fdi"):
        evaluate_images(real, real, metrics="fid,fdi")
    with pytest.raises(GanforgeError, match="2 channels"):
        evaluate_images(torch.zeros(4, 2, 8, 8), real)
    with pytest.raises(GanforgeError, match="float tensor"):
        evaluate_images(torch.zeros(4, 3, 8, 8, dtype=torch.uint8), real)
    with pytest.raises(GanforgeError, match="unknown extractor"):
        evaluate_images(real, real, extractor="vgg")


def write_folder(root, per_class, size, seed):
    from PIL import Image

    g = np.random.default_rng(seed)
    for name, level in (("dark", 40), ("light", 200)):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(g.normal(level, 30, (size, size + 4, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")


def cli_defaults(**overrides):
    """evaluate_command's parameters as typer would pass them (a direct call does not resolve Option defaults)."""
    values = dict(targets=None, metrics="fid,kid,pr", n=10000, extractor=None, real=None, fake=None,
                  json_path=None, out=None, epochs=1, seed=0, batch_size=64)
    values.update(overrides)
    return values


def test_cli_fits_an_extractor_then_scores_two_folders_with_it(tmp_path):
    write_folder(tmp_path / "real", 12, 20, 0)
    write_folder(tmp_path / "fake", 8, 24, 1)
    weights = tmp_path / "toy.safetensors"
    evaluate_command(**cli_defaults(targets=["fit-extractor", str(tmp_path / "real")], out=weights))
    config = json.loads(weights.with_suffix(".json").read_text())
    assert config["classes"] == ["dark", "light"] and config["training"]["n_holdout"] == 2
    report = tmp_path / "scores.json"
    evaluate_command(**cli_defaults(real=tmp_path / "real", fake=tmp_path / "fake", extractor=str(weights),
                                    metrics="fid,kid,is,kl", json_path=report))
    written = json.loads(report.read_text())
    assert written["record"]["extractor"] == "toy" and written["record"]["n_real"] == 24
    assert "png:RGB->PIL.BICUBIC@20" in written["record"]["image_format"]
    assert written["scores"]["fid"] >= 0 and written["scores"]["is"] >= 1
    with pytest.raises(GanforgeError, match="--out"):
        evaluate_command(**cli_defaults(targets=["fit-extractor", str(tmp_path / "real")]))
    with pytest.raises(GanforgeError, match="both --real"):
        evaluate_command(**cli_defaults(real=tmp_path / "real"))


def test_cli_scores_a_run_and_writes_eval_json(tmp_path, monkeypatch):
    import ganforge

    class Run:
        family = SimpleNamespace(capabilities=SimpleNamespace(modality="image"))  # evaluate reads the modality

        def sample(self, n, seed=0):  # a model's samples carry their images as .tensor
            return SimpleNamespace(tensor=images(n, channels=1, size=16, seed=seed))

        def real_images(self):
            return images(40, channels=1, size=16, seed=99)

    monkeypatch.setattr(ganforge, "load", lambda path: Run(), raising=False)
    monkeypatch.setattr("ganforge.metrics.evaluate.load_extractor",
                        lambda name, device=None: tiny_extractor(channels=1))
    evaluate_command(**cli_defaults(targets=[str(tmp_path / "run")], n=30, metrics="fid,mode_collapse"))
    written = list((tmp_path / "run" / "eval").glob("*.json"))
    assert len(written) == 1
    result = json.loads(written[0].read_text())
    assert result["record"]["n_fake"] == 30 and result["record"]["reference_split"] == "train"
    assert "classes_covered" in result["scores"]["mode_collapse"]
