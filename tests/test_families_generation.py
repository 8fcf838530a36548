"""Image-generation families: shapes, one D step lowers D's loss, checkpoint round trip, labels, truncation,
progressive growing schedule and mid-phase resume."""

import pytest
import torch

import ganforge
from ganforge.api import resolve_config
from ganforge.errors import GanforgeError
from ganforge.families import DataInfo, create
from ganforge.metrics import load_extractor
from ganforge.metrics.classes import diversity
from ganforge.training.trainer import Trainer, make_optimizer

FAMILIES = ["cgan", "wgan", "wgan-gp", "sngan", "stylegan", "progan", "biggan", "vaegan"]
CONDITIONAL = {"cgan", "biggan"}


def config_for(name, tmp_path=None, **extra):
    overrides = {"model.name": name, "model.width": 8, "model.latent_dim": 24, "data.resolution": 16,
                 "train.batch_size": 16, "train.device": "cpu", "train.sample_every": 1000,
                 "train.checkpoint_every": 1000, "train.log_every": 1000}
    if tmp_path is not None:
        overrides |= {"out": str(tmp_path), "name": name}
    overrides |= extra
    return resolve_config(overrides=overrides)


def build(name, resolution=16, channels=1, **extra):
    config = config_for(name, **{"data.resolution": resolution, **extra})
    return create(config, DataInfo(channels, resolution, 10 if name in CONDITIONAL else 0))


def fixed_batch(resolution=16, channels=1, n=16):
    g = torch.Generator().manual_seed(0)
    return {"image": torch.rand(n, channels, resolution, resolution, generator=g) * 2 - 1,
            "label": torch.randint(0, 10, (n,), generator=g)}


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("resolution,channels", [(8, 3), (32, 1)])
def test_forward_shapes_at_two_resolutions(name, resolution, channels):
    torch.manual_seed(0)
    family = build(name, resolution, channels)
    family.on_step(10 ** 6)  # progan: fully grown
    inputs = family.sample_inputs(5, torch.Generator().manual_seed(0))
    images = family.generate(family.generator, inputs)
    assert images.shape == (5, channels, resolution, resolution)
    assert torch.isfinite(images).all()
    batch = fixed_batch(resolution, channels, 5)
    logits = family.critic(batch["image"], batch)
    assert logits.shape == (5,)


@pytest.mark.parametrize("name", FAMILIES)
def test_one_step_lowers_own_discriminator_loss(name):
    torch.manual_seed(0)
    family = build(name)
    family.on_step(10 ** 6)
    batch = fixed_batch()
    phase = next(p for p in family.phases() if p.name == "D")
    for p in family.phases():
        getattr(family, p.module).requires_grad_(p.module == phase.module)
    optimizer = make_optimizer(family.discriminator.parameters(), phase.lr, phase.betas, phase.optimizer,
                               torch.device("cpu"))

    def d_loss():
        torch.manual_seed(1)  # same noise, GP mixing weights and augmentations each time
        return family.loss("D", batch)[0]

    before = d_loss()
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    family.after_step("D")
    after = d_loss()
    assert after.item() < before.item()


@pytest.mark.parametrize("name", FAMILIES)
def test_checkpoint_round_trip_gives_identical_samples(name, tmp_path):
    torch.manual_seed(0)
    config = config_for(name, tmp_path, **{"train.steps": 3, "data.limit": 64})
    trainer = Trainer(config, tmp_path / name, quiet=True)
    trainer.fit()
    # the EMA generator as saved (calling sampling_generator again would re-run its norm refresh)
    generator = (trainer.ema.module if trainer.ema is not None else trainer.family.generator).eval()
    labels = torch.arange(6) % 10 if name in CONDITIONAL else None
    inputs = trainer.family.sample_inputs(6, torch.Generator().manual_seed(3), labels=labels)
    with torch.no_grad():
        expected = trainer.family.generate(generator, inputs)
    loaded = ganforge.load(tmp_path / name)
    assert torch.equal(loaded.generate(inputs).tensor, expected.clamp(-1, 1))
    again = ganforge.load(tmp_path / name).sample(6, seed=4, labels=3 if name in CONDITIONAL else None).tensor
    assert torch.equal(loaded.sample(6, seed=4, labels=3 if name in CONDITIONAL else None).tensor, again)


@pytest.fixture(scope="module")
def short_digits_run(tmp_path_factory):
    """A short digits run of a conditional family (one critic step, a higher learning rate, no EMA), cached."""
    runs = {}

    def get(name):
        if name not in runs:
            torch.manual_seed(0)
            extra = {"train.steps": 200, "train.n_critic": 1, "train.ema": 0.0, "train.beta1": 0.5,
                     "train.beta2": 0.999, "model.latent_dim": 32}
            if name == "cgan":
                extra |= {"train.lr_g": 5e-4, "train.lr_d": 5e-4, "train.batch_size": 64, "model.width": 16}
            else:
                extra |= {"train.lr_g": 1e-3, "train.lr_d": 1e-3, "train.batch_size": 32, "model.width": 8}
            runs[name] = ganforge.load(ganforge.train(config_for(name, tmp_path_factory.mktemp(name), **extra),
                                                      quiet=True))
        return runs[name]

    return get


@pytest.mark.parametrize("name", ["cgan", "biggan"])
def test_conditional_families_obey_labels_after_a_short_digits_run(name, short_digits_run):
    model = short_digits_run(name)
    labels = torch.arange(10).repeat_interleave(30)
    _, logits = load_extractor("digits").extract(model.sample(len(labels), seed=1, labels=labels).tensor)
    accuracy = (logits.argmax(1) == labels).float().mean().item()
    assert accuracy > 0.3, f"{name}: digits classifier agrees with the requested class for {accuracy:.0%} (chance 10%)"
    with pytest.raises(GanforgeError, match="out of range"):
        model.sample(2, labels=10)


def test_stylegan_truncation_lowers_diversity_monotonically(tmp_path):
    torch.manual_seed(0)
    run = ganforge.train(config_for("stylegan", tmp_path, **{"train.steps": 12, "model.options.n_mapping": 2}),
                         quiet=True)
    model = ganforge.load(run)
    w_avg = model.generator.w_avg
    assert w_avg.abs().sum() > 0, "the mean w is tracked during training"
    extractor = load_extractor("digits")
    scores = []
    for psi in (1.0, 0.7, 0.4, 0.1, 0.0):
        inputs = model.sample_inputs(150, seed=0)
        inputs["truncation"] = torch.full((150,), psi)
        features, logits = extractor.extract(model.generate(inputs).tensor)
        scores.append(diversity(features, logits)[0])
    assert all(a > b for a, b in zip(scores, scores[1:])), scores
    assert scores[-1] < 1e-3  # psi 0: every sample is the image of the mean w


def test_biggan_truncation_lowers_diversity_monotonically(short_digits_run):
    model = short_digits_run("biggan")
    extractor = load_extractor("digits")
    # one class: truncation trades diversity within a class for fidelity (across classes it can even rise)
    inputs = model.sample_inputs(300, seed=0, labels=3)
    scores = []
    for psi in (1.0, 0.68, 0.38, 0.16, 0.04):  # thresholds inf, 1.0, 0.5, 0.2, 0.05
        features, logits = extractor.extract(model.generate(inputs | {"truncation": torch.full((300,), psi)}).tensor)
        scores.append(diversity(features, logits)[0])
    assert all(a > b for a, b in zip(scores, scores[1:])), scores


def test_truncated_normal_mapping():
    from ganforge.families.biggan import truncated

    z = torch.linspace(-4, 4, 101).unsqueeze(0)
    psi = torch.special.ndtr(torch.tensor([0.5])) * 2 - 1  # the central mass of [-0.5, 0.5]
    out = truncated(z, psi)
    assert out.abs().max() <= 0.5 + 1e-4 and out.min() < -0.49 and out.max() > 0.49
    assert (out[0, 1:] >= out[0, :-1]).all()  # the same draw keeps its rank: quantiles map to quantiles
    assert torch.equal(truncated(z, torch.tensor([1.0])), z)  # psi 1: no truncation at all
    assert torch.allclose(truncated(z, torch.tensor([0.0])), torch.zeros_like(z), atol=1e-4)  # psi 0: the mode


def test_progan_schedule_is_a_pure_function_of_the_step():
    family = build("progan", 32, **{"model.options.stage_steps": 10})
    # 4x4 stable, fade in 8x8, stable, fade in 16x16, stable, fade in 32x32, stable
    assert family.schedule(0) == (0, 1.0) and family.schedule(9) == (0, 1.0)
    assert family.schedule(10) == (1, 0.0) and family.schedule(15) == (1, 0.5)
    assert family.schedule(20) == (1, 1.0) and family.schedule(34) == (2, 0.4)
    assert family.schedule(55) == (3, 0.5) and family.schedule(10 ** 6) == (3, 1.0)
    family.on_step(15)
    batch = fixed_batch(32, 1, 4)
    assert int(family.generator.depth) == 1 and float(family.discriminator.alpha) == 0.5
    # at 8x8 the generator's output is constant over each 4x4 block of the 32 px image
    with torch.no_grad():
        images = family.generate(family.generator, family.sample_inputs(4, torch.Generator().manual_seed(0)))
    assert torch.equal(images, images[..., ::4, ::4].repeat_interleave(4, -1).repeat_interleave(4, -2))
    assert family.critic(batch["image"], batch).shape == (4,)


def test_progan_resume_mid_fade_in_matches_an_uninterrupted_run(tmp_path):
    extra = {"train.steps": 9, "model.options.stage_steps": 3, "data.limit": 64, "train.batch_size": 8}
    straight = ganforge.train(config_for("progan", tmp_path / "a", **extra), quiet=True)
    stopped = ganforge.train(config_for("progan", tmp_path / "b", **(extra | {"train.steps": 4})), quiet=True)
    resumed = ganforge.train(resume=stopped, quiet=True, **{"train.steps": 9})
    a, b = ganforge.load(straight), ganforge.load(resumed)
    for (key, x), (_, y) in zip(a.family.state_dict().items(), b.family.state_dict().items()):
        assert torch.equal(x, y), key
    assert torch.equal(a.sample(4).tensor, b.sample(4).tensor)


def test_biggan_orthogonal_regularisation_enters_the_generator_loss():
    family = build("biggan", **{"model.options.orthogonal": 0.0})
    torch.manual_seed(1)
    plain, _ = family.loss("G", fixed_batch())
    family.options.orthogonal = 1e-2
    torch.manual_seed(1)
    regularised, logs = family.loss("G", fixed_batch())
    assert regularised.item() == pytest.approx(plain.item() + 1e-2 * logs["ortho"].item(), rel=1e-5)


def test_vaegan_encoder_phase_trains_kl_and_feature_reconstruction():
    torch.manual_seed(0)
    family = build("vaegan")
    assert [p.module for p in family.phases()] == ["discriminator", "encoder", "generator"]
    batch = fixed_batch()
    loss, logs = family.loss("E", batch)
    assert loss.item() == pytest.approx(logs["kl"].item() + logs["feature_error"].item(), rel=1e-5)
    loss.backward()
    assert family.encoder.head.weight.grad.abs().sum() > 0
    assert family.encode(batch["image"]).shape == (16, 24)
    assert family.reconstruct(family.generator, batch["image"]).shape == batch["image"].shape


def test_cgan_auxiliary_classifier_option():
    torch.manual_seed(0)
    family = build("cgan", **{"model.options.auxiliary": True, "model.options.projection": False})
    loss, logs = family.loss("D", fixed_batch())
    assert "d_class" in logs and logs["d_class"].item() > 0
    _, logs = family.loss("G", fixed_batch())
    assert "g_class" in logs
    with pytest.raises(GanforgeError, match="projection or auxiliary"):
        build("cgan", **{"model.options.projection": False})


def test_conditional_family_needs_classes():
    with pytest.raises(GanforgeError, match="needs at least 2 classes"):
        create(config_for("cgan"), DataInfo(1, 16, 0))


@pytest.mark.parametrize("preset, n_critic, clip", [("paper", 5, 0.01), ("default", 1, 0.022)])
def test_wgan_clips_critic_weights_and_uses_rmsprop(preset, n_critic, clip):
    # the paper's Algorithm 1 (--preset paper) and the default tuned for small budgets (issue 20) both clip
    family = build("wgan", **{"model.preset": preset})
    assert {p.optimizer for p in family.phases()} == {"rmsprop"}
    assert family.phases()[0].repeat == n_critic
    with torch.no_grad():
        for p in family.discriminator.parameters():
            p.fill_(1.0)
    family.after_step("D")
    assert max(p.abs().max().item() for p in family.discriminator.parameters()) == pytest.approx(clip)


def test_presets_are_the_papers_recipes():
    # wgan's, wgan-gp's, sngan's and vaegan's defaults were retuned for small budgets (issue 20): the paper's recipe
    # is --preset paper
    gp = config_for("wgan-gp", **{"model.preset": "paper"})
    assert (gp.model.loss, gp.model.penalty, gp.model.penalty_weight) == ("wasserstein", "gp", 10.0)
    assert (gp.train.beta1, gp.train.beta2, gp.train.n_critic, gp.train.lr_g) == (0.0, 0.9, 5, 1e-4)
    wc = config_for("wgan", **{"model.preset": "paper"})  # retuned in session 6
    assert (wc.model.loss, wc.model.penalty, wc.train.n_critic, wc.train.lr_g, wc.train.lr_d) == (
        "wasserstein", "none", 5, 5e-5, 5e-5)
    vae = config_for("vaegan", **{"model.preset": "paper"})  # retuned in session 6
    assert (vae.train.lr_g, vae.train.lr_d, vae.train.ema, vae.model.options) == (3e-4, 3e-4, 0.0, {})
    assert build("vaegan", **{"model.preset": "paper"}).phases()[0].optimizer == "rmsprop"
    assert build("vaegan").phases()[0].optimizer == "adam"
    sn = config_for("sngan", **{"model.preset": "paper"})
    assert (sn.model.loss, sn.model.d_norm, sn.train.n_critic, sn.train.lr_g) == ("hinge", "spectral", 5, 2e-4)
    style = config_for("stylegan", **{"model.preset": "paper"})  # the default was retuned too (issue 20)
    assert (style.model.penalty, style.model.penalty_weight, style.train.beta2) == ("r1", 10.0, 0.99)
    assert (style.model.options["r1_every"], style.train.lr_g, style.train.lr_d) == (1, 0.002, 0.002)
    big = config_for("biggan", **{"model.preset": "paper"})  # the default was retuned too (issue 20)
    assert (big.model.loss, big.train.lr_d, big.train.n_critic) == ("hinge", 4e-4, 2)
