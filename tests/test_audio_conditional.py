"""Conditional WaveGAN's class terms: the critic's projection head and AC-GAN classifier, class-conditional batch
norm in the generator, and the AC-GAN term in training (issue 15's CPU recipe)."""

import csv

import pytest
import torch
import torch.nn.functional as F

import ganforge
from ganforge.errors import GanforgeError
from ganforge.nn.audio import ClassBatchNorm1d, WaveDiscriminator, WaveGenerator


def test_projection_depends_on_the_label_and_the_aux_classifier_on_the_clip_alone():
    torch.manual_seed(0)
    clips = 0.3 * torch.randn(4, 1, 8192)
    asked, other = torch.tensor([0, 1, 2, 0]), torch.tensor([1, 2, 0, 2])
    critic = WaveDiscriminator(8192, 1, n_classes=3, shuffle=0, aux=True)
    logit, classes = critic(clips, asked, classes=True)
    logit_other, classes_other = critic(clips, other, classes=True)
    assert classes.shape == (4, 3) and logit.shape == (4,)
    assert (logit - logit_other).abs().min() > 0  # the projection term reads the label
    assert torch.equal(classes, classes_other)  # the classifier sees only the clip
    plain = WaveDiscriminator(8192, 1, n_classes=3, shuffle=0, projection=False, aux=True)
    assert torch.equal(plain(clips, asked), plain(clips, other))
    with pytest.raises(ValueError, match="auxiliary"):
        WaveDiscriminator(8192, 1, n_classes=3, shuffle=0)(clips, asked, classes=True)


def test_class_norm_starts_as_batch_norm_and_then_carries_the_class():
    torch.manual_seed(0)
    norm = ClassBatchNorm1d(3, 2)
    x, cond = torch.randn(4, 3, 10), torch.randn(4, 2)
    assert torch.allclose(norm(x, cond), F.batch_norm(x, None, None, training=True), atol=1e-6)
    torch.nn.init.normal_(norm.gain.weight)
    torch.nn.init.normal_(norm.bias.weight)
    same = norm(x, cond[:1].expand(4, 2))
    assert not torch.allclose(same, norm(x, cond[1:2].expand(4, 2)))
    generator = WaveGenerator(4, 8192, 1, n_classes=3, embed_dim=2, class_norm=True)
    assert sum(isinstance(m, ClassBatchNorm1d) for m in generator.modules()) == 5  # after dense + 4 hidden layers
    assert generator(torch.randn(2, 4), torch.tensor([0, 2])).shape == (2, 1, 8192)


def run_config(tmp_path, options: dict, **extra) -> dict:
    return {"model.name": "wavegan", "data.source": "tones", "data.limit": 40, "model.width": 2,
            "model.latent_dim": 8, "model.loss": "hinge", "model.penalty": "none", "model.g_norm": "batch",
            "model.options": {"length": 8192, "conditional": True, **options}, "train.batch_size": 8,
            "train.n_critic": 1, "train.lr_d": 2e-3, "train.log_every": 5, "train.sample_every": 1000,
            "train.checkpoint_every": 1000, "train.ema": 0.0, "out": str(tmp_path), "name": "run", **extra}


def test_aux_term_is_logged_and_pushes_the_generator_towards_the_class_asked_for(tmp_path):
    torch.manual_seed(0)
    run = ganforge.train(quiet=True, **run_config(tmp_path, {"aux_weight": 10.0, "class_norm": True},
                                                  **{"train.steps": 2, "train.log_every": 1}))
    last = list(csv.DictReader((run / "metrics.csv").open()))[-1]
    for key in ("aux_real", "aux_fake", "aux_acc"):
        assert last.get(key, "") != "", key
    family = ganforge.load(run).family
    family.train()
    family.discriminator.requires_grad_(False)
    family.discriminator.classify.weight.mul_(30)  # a critic whose classes differ between clips (a trained one's)
    optimizer = torch.optim.Adam(family.generator.parameters(), 1e-2)
    batch = {"audio": torch.zeros(20, 1, 8192), "label": torch.arange(20) % 10}
    fake_ce = []
    for _ in range(10):  # G's own phase against a fixed critic: the AC-GAN term falls
        loss, logs = family.loss("G", batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        fake_ce.append(logs["aux_fake"].item())
    assert fake_ce[-1] < 0.5 * fake_ce[0], fake_ce


def test_class_options_are_checked(tmp_path):
    with pytest.raises(GanforgeError, match="aux_weight"):
        ganforge.train(quiet=True, **run_config(tmp_path, {"projection": False, "aux_weight": 0.0}, **{"train.steps": 1}))


def test_default_is_the_cpu_recipe_and_paper_preset_keeps_donahue_et_al():
    from ganforge.api import resolve_config

    def resolved(preset):
        return resolve_config(None, {"model.name": "wavegan", "model.preset": preset, "data.source": "tones",
                                     "model.options": {"conditional": True}})

    default, paper = resolved("default"), resolved("paper")
    assert (default.model.loss, default.train.n_critic, default.model.width) == ("hinge", 1, 8)
    assert default.model.options["aux_weight"] == 1.0 and default.model.options["class_norm"] is True
    assert (paper.model.loss, paper.model.penalty, paper.model.penalty_weight) == ("wasserstein", "gp", 10.0)
    assert (paper.train.n_critic, paper.model.width, paper.train.batch_size, paper.train.lr_g) == (5, 64, 64, 1e-4)
    assert paper.model.options["aux_weight"] == 0.0 and paper.model.options["conditional"] is True
