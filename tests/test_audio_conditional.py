"""Conditional WaveGAN's class terms: the critic's projection head and AC-GAN classifier, class-conditional batch
norm in the generator, and the AC-GAN term in training (issue 15's CPU recipe)."""

import csv
import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

import ganforge
from ganforge.errors import GanforgeError
from ganforge.nn.audio import ClassBatchNorm1d, WaveDiscriminator, WaveGenerator
from ganforge.training import checkpoint as ckpt


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


def generator_phase_alone(family, batch, key: str, steps: int = 10) -> list[float]:
    """`steps` Adam steps of G's own phase against the family's frozen critic; the logged `key` at each."""
    family.discriminator.requires_grad_(False)
    optimizer = torch.optim.Adam(family.generator.parameters(), 1e-2)
    values = []
    for _ in range(steps):
        loss, logs = family.loss("G", batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        values.append(logs[key].item())
    return values


def test_aux_term_is_logged_and_pushes_the_generator_towards_the_class_asked_for(tmp_path):
    torch.manual_seed(0)
    run = ganforge.train(quiet=True, **run_config(tmp_path, {"aux_weight": 10.0, "class_norm": True},
                                                  **{"train.steps": 2, "train.log_every": 1}))
    last = list(csv.DictReader((run / "metrics.csv").open()))[-1]
    for key in ("aux_real", "aux_fake", "aux_acc"):
        assert last.get(key, "") != "", key
    family = ganforge.load(run).family
    family.train()
    with torch.no_grad():  # a critic whose classes differ between clips (a trained one's)
        family.discriminator.classify.weight.mul_(30)
    batch = {"audio": torch.zeros(20, 1, 8192), "label": torch.arange(20) % 10}
    fake_ce = generator_phase_alone(family, batch, "aux_fake")  # against a fixed critic: the AC-GAN term falls
    assert fake_ce[-1] < 0.5 * fake_ce[0], fake_ce


def test_class_options_are_checked(tmp_path):
    with pytest.raises(GanforgeError, match="aux_weight"):
        ganforge.train(quiet=True, **run_config(tmp_path, {"projection": False, "aux_weight": 0.0}, **{"train.steps": 1}))


def test_default_is_the_cpu_recipe_and_paper_preset_keeps_donahue_et_al():
    from ganforge.api import resolve_config

    def resolved(preset):
        return resolve_config(None, {"model.name": "wavegan", "model.preset": preset, "data.source": "tones",
                                     "model.options": {"conditional": True}})

    default, paper, s6, r1 = resolved("default"), resolved("paper"), resolved("s6"), resolved("r1")
    s7 = resolved("s7")
    assert (default.model.loss, default.train.n_critic, default.model.width) == ("hinge", 1, 12)
    assert default.model.penalty == "none" and resolved("s10") == dataclasses.replace(
        default, model=dataclasses.replace(default.model, preset="s10"))
    # the default (session 10) is --preset s9 without its learning-rate decay; s9 is s7 plus the spectral realism term
    s9 = resolved("s9")
    decayed = default.model.options | {"lr_decay": 0.5}
    assert s9.model == dataclasses.replace(default.model, preset="s9", options=decayed)
    assert s9.train == default.train and default.train.steps == 3000
    assert default.model.options["spectral_match"] == 5.0 and "spectral_match" not in s7.model.options
    assert s9.train == s7.train and dataclasses.replace(
        s7.model, preset="s9", options=s7.model.options | {"spectral_match": 5.0}) == s9.model
    # --preset r1 (session 8): s7 plus lazy R1 in the critic, gamma 0.05 every 4 critic steps
    assert (r1.model.penalty, r1.model.penalty_weight, r1.model.options["r1_every"]) == ("r1", 0.05, 4)
    assert r1.train == s7.train
    assert r1.model.options == s7.model.options | {"r1_every": 4}
    assert dataclasses.replace(r1.model, penalty="none", penalty_weight=s7.model.penalty_weight,
                               preset="s7", options=s7.model.options) == s7.model
    # --preset s6: the session-6 default, the s7 recipe at width 8
    assert s6.model.width == 8 and s6.model.options == s7.model.options and s6.train == s7.train
    assert dataclasses.replace(s6.model, width=12, preset="s7") == s7.model
    assert default.model.options["aux_weight"] == 1.0 and default.model.options["class_norm"] is True
    assert (default.model.options["lr_decay"], default.train.steps) == (1.0, 3000)  # a constant learning rate
    assert default.model.options["aux_fake_class"] is True
    assert (paper.model.loss, paper.model.penalty, paper.model.penalty_weight) == ("wasserstein", "gp", 10.0)
    assert (paper.train.n_critic, paper.model.width, paper.train.batch_size, paper.train.lr_g) == (5, 64, 64, 1e-4)
    assert paper.model.options["aux_weight"] == 0.0 and paper.model.options["conditional"] is True
    assert paper.model.options["lr_decay"] == 1.0 and paper.model.options["aux_fake_class"] is False
    assert paper.model.options.get("spectral_match", 0.0) == 0.0


def test_tail_decay_factor_values():
    from ganforge.training.schedule import tail_decay

    assert [tail_decay(s, 10, 0.5) for s in range(12)] == pytest.approx(
        [1, 1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2, 0.0, 0.0, 0.0])  # linear from step 5, 0 at the last step and after
    cosine = [tail_decay(s, 10, 0.5, "cosine", 0.1) for s in range(5, 10)]
    assert cosine == pytest.approx([0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * k / 5)) for k in range(1, 6)])
    assert cosine[-1] == pytest.approx(0.1)
    assert all(tail_decay(s, 10, 1.0) == 1.0 for s in range(12))  # 1: no decay
    assert tail_decay(0, 10, 0.0) == pytest.approx(0.9)  # 0: decays from the first step


@pytest.mark.cpu_only
def test_lr_decay_reaches_the_optimisers_and_resume_across_it_is_bit_exact(tmp_path):
    seen = []

    def record(trainer):  # called after each step: the rate that step used
        seen.append(trainer.optimizers["G"].param_groups[0]["lr"] / trainer.config.train.lr_g)

    def interrupt(trainer):
        if trainer.step == 2:
            trainer.stop_reason = "interrupted"

    options = {"aux_weight": 1.0, "class_norm": True, "lr_decay": 0.25, "lr_decay_shape": "cosine", "lr_floor": 0.2}
    extra = {"train.steps": 4, "train.ema": 0.9}
    straight = ganforge.train(quiet=True, callbacks=[record], **run_config(tmp_path, options, name="straight", **extra))
    assert seen == pytest.approx([1.0, 0.2 + 0.8 * 0.75, 0.2 + 0.8 * 0.25, 0.2])  # cosine from step 1 to 0.2
    ganforge.train(quiet=True, callbacks=[interrupt], **run_config(tmp_path, options, name="split", **extra))
    split = ganforge.train(resume=tmp_path / "split", quiet=True, **{"train.steps": 4})
    a, meta_a = ckpt.load(straight / "checkpoints" / "last.safetensors")
    b, meta_b = ckpt.load(split / "checkpoints" / "last.safetensors")
    assert meta_a["step"] == meta_b["step"] == 4
    assert a.keys() == b.keys()
    for key in a:
        if key.startswith(("family.", "optim.", "ema.")):
            assert torch.equal(a[key], b[key]), key


def test_fake_class_makes_the_critic_learn_generated_clips_as_one_more_class(tmp_path):
    torch.manual_seed(0)
    options = {"aux_weight": 1.0, "aux_fake_class": True, "phase_shuffle": 0}
    run = ganforge.train(quiet=True, **run_config(tmp_path, options, **{"train.steps": 2, "train.log_every": 1}))
    last = list(csv.DictReader((run / "metrics.csv").open()))[-1]
    assert last.get("aux_generated", "") != "" and last.get("aux_fake", "") != ""
    family = ganforge.load(run).family
    family.train()
    critic = family.discriminator
    assert critic.classify.out_features == 11  # ten digits (tones' classes) + "generated"
    batch = {"audio": 0.1 * torch.randn(6, 1, 8192), "label": torch.tensor([0, 1, 2, 3, 4, 5])}
    loss, logs = family.loss("D", batch)
    inputs, fake = family._pending  # the generated clips the D phase scored
    with torch.no_grad():
        _, real_classes = critic(batch["audio"], batch["label"], classes=True)
        _, fake_classes = critic(fake.detach(), inputs["label"], classes=True)
    assert torch.allclose(logs["aux_real"], F.cross_entropy(real_classes, batch["label"]))
    assert torch.allclose(logs["aux_generated"], F.cross_entropy(fake_classes, torch.full((6,), 10)))
    _, logs = family.loss("G", batch)  # G: its clips against the digit asked for, "generated" counting as wrong
    assert torch.allclose(logs["aux_fake"], F.cross_entropy(fake_classes, inputs["label"]))


def test_mode_seeking_pairs_labels_and_pushes_the_generator_to_use_its_noise(tmp_path):
    from ganforge.families.wavegan import mode_spread

    torch.manual_seed(0)
    clip = torch.randn(1, 1, 64)
    noise = torch.randn(4, 8)
    assert mode_spread(clip.expand(4, 1, 64), noise).item() == 0  # one clip whatever the noise
    assert mode_spread(torch.cat([clip, clip, 3 * clip, 3 * clip]), noise).item() > 0
    run = ganforge.train(quiet=True, **run_config(tmp_path, {"aux_weight": 1.0, "class_norm": True,
                                                             "mode_seeking": 1.0},
                                                  **{"train.steps": 2, "train.log_every": 1}))
    last = list(csv.DictReader((run / "metrics.csv").open()))[-1]
    assert float(last["mode_spread"]) > 0
    family = ganforge.load(run).family
    family.train()
    batch = {"audio": torch.zeros(8, 1, 8192), "label": torch.tensor([0, 1, 2, 3, 4, 5, 6, 7])}
    inputs = family.generator_inputs(batch)
    assert inputs["label"].tolist() == [0, 1, 2, 3, 0, 1, 2, 3]  # pairs (i, i + 4): same class, other noise
    assert not torch.equal(inputs["noise"][:4], inputs["noise"][4:])
    with torch.no_grad():  # a generator that ignores its noise: the dense layer's noise columns at zero
        family.generator.dense.weight[:, :8].zero_()
    spreads = generator_phase_alone(family, batch, "mode_spread", 8)  # the term makes clips of one class differ
    assert spreads[0] < 1e-3 and spreads[-1] > 10 * max(spreads[0], 1e-4), spreads
    family.options.mode_seeking = 0.0  # off: the batch keeps the real batch's labels and no spread is logged
    assert torch.equal(family.generator_inputs(batch)["label"], batch["label"])
    assert "mode_spread" not in family.loss("G", batch)[1]


def test_spectrogram_classifier_reads_what_the_clip_sounds_like():
    from ganforge.nn.audio import SpectrogramClassifier

    torch.manual_seed(0)
    t = torch.arange(8192) / 8000
    tone = lambda hz: torch.sin(2 * math.pi * hz * t).view(1, 1, -1)  # noqa: E731
    critic = WaveDiscriminator(8192, 2, n_classes=3, shuffle=0, aux=True, init="he", fake_class=True,
                               aux_input="spectrogram")
    assert isinstance(critic.classify, SpectrogramClassifier) and critic.classify.body[-1].out_features == 4
    clips = torch.cat([tone(440), tone(1200), 0.3 * torch.randn(1, 1, 8192)])
    _, classes = critic(clips, torch.tensor([0, 1, 2]), classes=True)
    _, flipped = critic(-clips, torch.tensor([0, 1, 2]), classes=True)
    assert torch.allclose(classes, flipped, atol=1e-5)  # the magnitude spectrum: a sign flip is the same sound
    assert (classes[0] - classes[1]).abs().max() > 1e-3  # ... and two pitches are not
    spectrogram = critic.classify.log_magnitude(tone(1000))
    assert spectrogram.shape == (1, 129, 65) and spectrogram[0, :, 30].argmax() == 32  # 1 kHz: bin 1000 / 31.25
    optimizer = torch.optim.Adam(critic.classify.parameters(), 1e-3)
    labels = torch.tensor([0, 1])
    for _ in range(30):  # it learns two pitches apart from the spectrogram alone
        loss = F.cross_entropy(critic.classify(clips[:2] * (0.5 + torch.rand(2, 1, 1))), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1
    with pytest.raises(GanforgeError, match="aux_input"):
        WaveDiscriminator(8192, 2, n_classes=3, aux=True, aux_input="mel")


def test_spectrogram_aux_input_trains_and_aux_g_factor_scales_only_the_generators_term(tmp_path):
    torch.manual_seed(0)
    options = {"aux_weight": 1.0, "aux_fake_class": True, "aux_input": "spectrogram", "phase_shuffle": 0}
    run = ganforge.train(quiet=True, **run_config(tmp_path, options, **{"train.steps": 2, "train.log_every": 1}))
    last = list(csv.DictReader((run / "metrics.csv").open()))[-1]
    assert all(last.get(k, "") != "" for k in ("aux_real", "aux_generated", "aux_fake"))
    family = ganforge.load(run).family
    family.eval()
    batch = {"audio": 0.1 * torch.randn(4, 1, 8192), "label": torch.tensor([0, 1, 2, 3])}
    results = {}
    for factor in (1.0, 3.0):
        family.options.aux_g_factor = factor
        for phase in ("D", "G"):
            torch.manual_seed(1)  # the same noise for both factors
            family._pending = None
            loss, logs = family.loss(phase, batch)
            results[factor, phase] = (loss.item(), logs)
    assert results[1.0, "D"][0] == pytest.approx(results[3.0, "D"][0])  # D's term keeps aux_weight
    g1, logs1 = results[1.0, "G"]
    g3, _ = results[3.0, "G"]
    assert g3 - g1 == pytest.approx(2.0 * logs1["aux_fake"].item(), rel=1e-4)


def test_mismatch_teaches_the_projection_to_check_the_class(tmp_path):
    run = ganforge.train(quiet=True, **run_config(tmp_path, {"mismatch": 1.0, "phase_shuffle": 0},
                                                  **{"train.steps": 1, "train.log_every": 1}))
    assert list(csv.DictReader((run / "metrics.csv").open()))[-1].get("d_mismatch", "") != ""
    t = torch.arange(8192) / 8000
    pitches = torch.tensor([300.0, 600, 900, 1200])
    labels = torch.arange(8) % 4
    clips = 0.5 * torch.sin(2 * math.pi * pitches[labels, None] * t).unsqueeze(1)
    logits = {}
    for weight in (0.0, 1.0):
        torch.manual_seed(0)
        family = ganforge.load(run).family
        family.train()
        family.options.mismatch = weight
        family.generator.requires_grad_(False)
        optimizer = torch.optim.Adam(family.discriminator.parameters(), 2e-3)
        for _ in range(12):  # D's own phase on clips whose pitch is their class
            loss, logs = family.loss("D", {"audio": clips, "label": labels})
            assert ("d_mismatch" in logs) == (weight > 0)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            right = family.discriminator(clips, labels).mean()
            wrong = family.discriminator(clips, (labels + 1) % 4).mean()
        logits[weight] = (right.item(), wrong.item())
    (right_off, wrong_off), (right_on, wrong_on) = logits[0.0], logits[1.0]
    assert wrong_on < -1 < 1 < right_on, logits  # real clips: above the hinge margin with their class, below it with
    # another
    assert wrong_on < wrong_off - 2, logits  # ... pushed there by the mismatch term
    with pytest.raises(GanforgeError, match="mismatch"):
        ganforge.train(quiet=True, **run_config(tmp_path, {"mismatch": 1.0, "projection": False, "aux_weight": 1.0},
                                                **{"train.steps": 1, "name": "refused"}))


def test_minibatch_std_channel_sees_clips_repeated_within_a_class():
    from ganforge.nn.audio import MinibatchStd1d

    torch.manual_seed(0)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    prototypes = torch.randn(3, 4, 16)
    collapsed = prototypes[labels]  # one clip per class: differs across classes, not within
    varied = collapsed + torch.randn(8, 4, 16)
    by_class, by_batch = MinibatchStd1d("class"), MinibatchStd1d("batch")
    out = by_class(collapsed, labels)
    assert out.shape == (8, 5, 16) and torch.equal(out[:, :4], collapsed)
    assert out[:, 4].abs().max() < 1e-3  # the class-wise std of a generator that ignores its noise: ~0
    assert (by_class(varied, labels)[:, 4] > 0.5).all()  # ... and of varied clips: ~1
    assert (by_batch(collapsed)[:, 4] > 0.5).all()  # the batch-wide std cannot tell: classes differ
    # one value per class (per group of 4 for "batch"), constant over time
    std = by_class(varied, labels)[:, 4]
    assert torch.allclose(std[labels == 0], std[0].expand(3, 16)) and torch.allclose(std, std[:, :1].expand(8, 16))
    single = by_class(varied[:3], torch.tensor([0, 1, 2]))[:, 4]
    assert single.abs().max() < 1e-3  # a class with one clip in the batch: ~0


def test_minibatch_std_option_trains_and_class_mode_needs_a_conditional_run(tmp_path):
    run = ganforge.train(quiet=True, **run_config(tmp_path, {"minibatch_std": "class", "aux_weight": 1.0},
                                                  **{"train.steps": 2}))
    critic = ganforge.load(run).family.discriminator
    assert sum(type(m).__name__ == "MinibatchStd1d" for m in critic.modules()) == 1
    with pytest.raises(GanforgeError, match="minibatch_std"):
        ganforge.train(quiet=True, **run_config(tmp_path, {"minibatch_std": "class", "conditional": False},
                                                **{"train.steps": 1, "name": "uncond"}))
    with pytest.raises(GanforgeError, match="minibatch_std"):
        ganforge.train(quiet=True, **run_config(tmp_path, {"minibatch_std": "group"}, **{"train.steps": 1,
                                                                                         "name": "bad"}))


def test_lazy_r1_runs_every_n_critic_steps_with_its_weight_times_n(tmp_path):
    torch.manual_seed(0)
    options = {"aux_weight": 1.0, "aux_fake_class": True, "phase_shuffle": 0, "r1_every": 3}
    run = ganforge.train(quiet=True, **run_config(tmp_path, options, **{"train.steps": 1, "model.penalty": "r1",
                                                                        "model.penalty_weight": 0.5}))
    family = ganforge.load(run).family
    family.train()
    assert family.r1_interval() == 3
    batch = {"audio": 0.1 * torch.randn(6, 1, 8192), "label": torch.tensor([0, 1, 2, 3, 4, 5])}
    due = []
    for step in range(7):
        family.on_step(step)
        torch.manual_seed(step)
        loss, logs = family.loss("D", batch)
        family._pending = None
        due.append("r1" in logs)
        if step == 3:  # the same call without R1: the difference is 0.5 x weight x 3 x E||grad D(real)||^2
            family.config.model.penalty = "none"
            family.on_step(step)
            torch.manual_seed(step)
            plain, _ = family.loss("D", batch)
            family._pending, family.config.model.penalty = None, "r1"
            assert logs["r1"] > 0
            assert torch.allclose(loss - plain, 0.5 * 0.5 * logs["r1"], rtol=1e-4)
    assert due == [True, False, False, True, False, False, True]


def test_spectral_gap_is_zero_for_equal_spectra_and_differentiable_otherwise():
    from ganforge.families.wavegan import spectral_gap

    torch.manual_seed(0)
    clips, labels = 0.3 * torch.randn(6, 1, 2048), torch.tensor([0, 0, 1, 1, 2, 2])
    assert spectral_gap(clips, clips).item() == 0
    swapped = clips[[1, 0, 3, 2, 5, 4]]  # other clips, the same class means
    assert spectral_gap(swapped, clips, labels, labels).item() < 1e-10
    t = torch.arange(2048) / 8000
    tones = torch.stack([torch.sin(2 * math.pi * f * t) for f in (300, 300, 2000, 2000, 3500, 3500)])[:, None]
    assert spectral_gap(tones, tones[[2, 3, 4, 5, 0, 1]]).item() < 1e-10  # the batch: the same six tones
    assert spectral_gap(tones, tones[[2, 3, 4, 5, 0, 1]], labels, labels).item() > 1  # per class: other tones
    quiet = (0.1 * tones).requires_grad_(True)
    gap = spectral_gap(quiet, tones, labels, labels)
    gap.backward()
    assert gap.item() > 1 and torch.isfinite(quiet.grad).all() and quiet.grad.abs().sum() > 0
    assert spectral_gap(tones[:4], tones[2:], labels[:4], labels[2:]).item() < 1e-10  # only the shared class 1


def test_spectral_match_pulls_the_generators_spectrum_towards_the_real_one_and_off_changes_nothing(tmp_path):
    torch.manual_seed(0)
    config = run_config(tmp_path, {"aux_weight": 1.0, "class_norm": True, "spectral_match": 1.0},
                        **{"train.steps": 2, "train.log_every": 1})
    run = ganforge.train(quiet=True, **config)
    last = list(csv.DictReader((run / "metrics.csv").open()))[-1]
    assert float(last["spectral_gap"]) > 0
    family = ganforge.load(run).family
    family.train()
    t = torch.arange(8192) / 8000
    hiss = torch.stack([torch.sin(2 * math.pi * (2500 + 100 * i) * t) for i in range(8)])[:, None]  # > 1 kHz
    batch = {"audio": 0.8 * hiss, "label": torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])}
    torch.manual_seed(1)
    loss, logs = family.loss("G", batch)
    family.options.spectral_match = 0.0  # off: no term, nothing logged, the rest of G's loss as it was
    torch.manual_seed(1)
    plain, plain_logs = family.loss("G", batch)
    assert "spectral_gap" not in plain_logs
    assert torch.allclose(loss - plain, logs["spectral_gap"], rtol=1e-4)
    family.options.spectral_match = 1.0
    gaps = generator_phase_alone(family, batch, "spectral_gap")  # G's clips take the real batch's spectrum
    assert gaps[-1] < 0.5 * gaps[0], gaps
    # --preset s9 with the option at 0 trains exactly as --preset s7 (the recipe before the term)
    weights = []
    for preset, options in (("s9", {"spectral_match": 0.0}), ("s7", {})):
        torch.manual_seed(0)
        folder = ganforge.train(quiet=True, **run_config(tmp_path, {"aux_weight": 1.0, **options},
                                                         **{"train.steps": 2, "name": preset,
                                                            "model.preset": preset}))
        weights.append(ganforge.load(folder).family.generator.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
