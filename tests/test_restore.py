"""The restore family and its data: watermark masks, the held-out split, resolution from the data, the mask output
(zero where nothing is damaged, so those pixels come back untouched) and `translate --masks`."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge.data.pairs import held_out, make_pairs, watermark_with_mask
from ganforge.errors import GanforgeError
from ganforge.families.restore import damage_mask


def photo(seed=0, size=(40, 36)):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (5, 4, 3), dtype=np.uint8)
    return Image.fromarray(small).resize(size, Image.BILINEAR)


def photos(folder, n, size=(40, 36)):
    folder.mkdir(parents=True)
    for i in range(n):
        photo(i, size).save(folder / f"p{i:02d}.png")
    return folder


def pixels(path):
    return np.asarray(Image.open(path)).astype(int)


@pytest.mark.parametrize("size", [(32, 32), (160, 128)])
def test_watermark_mask_is_zero_exactly_where_the_image_is_untouched(size):
    image = photo(3, size)
    for seed in range(6):
        marked, mask = watermark_with_mask(image, np.random.default_rng(seed))
        changed = np.any(np.asarray(marked) != np.asarray(image), -1)
        mask = np.asarray(mask)
        assert mask.shape == changed.shape and changed.any()
        assert not changed[mask == 0].any()  # a zero mask means an untouched pixel
        assert (mask[changed] > 0).all()


def test_marks_scale_with_the_image():
    def marked_share(side):
        image = Image.fromarray(np.full((side, side, 3), 128, np.uint8))
        return np.mean([np.mean(np.asarray(watermark_with_mask(image, np.random.default_rng(s))[1]) > 0)
                        for s in range(12)])
    small, large = marked_share(64), marked_share(384)
    assert 0.03 < small < 0.8 and 0.03 < large < 0.8  # the same share of the picture, not the same pixel count
    assert abs(np.log(large / small)) < np.log(3)


def test_split_is_deterministic_under_the_seed_and_disjoint(tmp_path):
    source = photos(tmp_path / "src", 20, (16, 16))
    make_pairs("watermark", source, tmp_path / "one", seed=5, split=0.25)
    make_pairs("watermark", source, tmp_path / "two", seed=5, split=0.25)
    make_pairs("watermark", source, tmp_path / "other", seed=6, split=0.25)

    def names(root, split):
        return {p.name for p in (root / split / "B").iterdir()}

    train, test = names(tmp_path / "one", "train"), names(tmp_path / "one", "test")
    assert len(test) == 5 and len(train) == 15 and not train & test and len(train | test) == 20
    assert names(tmp_path / "two", "test") == test and names(tmp_path / "other", "test") != test
    for side in "ABM":  # the files themselves are reproducible too
        for name in test:
            assert (tmp_path / "one" / "test" / side / name).read_bytes() == \
                (tmp_path / "two" / "test" / side / name).read_bytes()
    listed = sorted(p.name for p in source.iterdir())
    assert held_out(listed, 0.25, 5) == held_out(listed[::-1], 0.25, 5)  # not the order of the files
    with pytest.raises(GanforgeError, match="--split"):
        held_out(listed, 1.0, 5)


def test_split_cli_and_mask_folder(tmp_path):
    source = photos(tmp_path / "src", 10, (16, 16))
    done = subprocess.run([sys.executable, "-m", "ganforge", "make-pairs", "watermark", str(source),
                           str(tmp_path / "out"), "--split", "0.2", "--seed", "1"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "8 pairs" in done.stdout and "2 held-out pairs" in done.stdout
    for split, n in (("train", 8), ("test", 2)):
        for side in "ABM":
            assert len(list((tmp_path / "out" / split / side).iterdir())) == n


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny restore run on 16 px watermark pairs (and some unmarked ones: A = B)."""
    root = tmp_path_factory.mktemp("restore")
    source = photos(root / "src", 24, (16, 16))
    make_pairs("watermark", source, root / "pairs", seed=0, split=0.25)
    for i in range(8):  # unmarked pairs teach the mask that clean pixels stay clean
        for side in "AB":
            photo(100 + i, (16, 16)).save(root / "pairs" / "train" / side / f"clean{i}.png")
    run = ganforge.train(quiet=True, out=str(root / "runs"), name="tiny",
                         data={"source": str(root / "pairs" / "train")},
                         model={"name": "restore", "width": 8, "options": {"unet_depth": 2, "d_layers": 1}},
                         train={"steps": 120, "batch_size": 8, "log_every": 40, "sample_every": 120,
                                "checkpoint_every": 120})
    return root, run


def test_preset_resolves_to_the_data_resolution(trained, tmp_path):
    root, run = trained
    model = ganforge.load(run)
    assert model.config.data.resolution == 16 and model.family.info.resolution == 16
    data = model.family.load_data(model.config)
    assert all(tuple(image.shape[-2:]) == (16, 16) for image in data.a)  # held at their own size: no resampling
    large = photos(tmp_path / "large", 2, (40, 36))
    make_pairs("watermark", large, tmp_path / "pairs_large", seed=0)
    config = ganforge.api.resolve_config(None, {"model": {"name": "restore"},
                                                "data": {"source": str(tmp_path / "pairs_large")}})
    assert config.data.resolution is None and config.train.batch_size == 16 and config.model.options == {}
    data = ganforge.families.get("restore").load_data(config)
    assert data.resolution == 32 and {tuple(a.shape[-2:]) for a in data.a} == {(36, 40)}
    pix = ganforge.api.resolve_config(None, {"model": {"name": "pix2pix"},
                                             "data": {"source": str(tmp_path / "pairs_large")}})
    assert ganforge.families.get("pix2pix").load_data(pix).resolution == 32  # not 256


def test_mask_output_is_zero_on_unmarked_pairs(trained):
    root, run = trained
    model = ganforge.load(run)
    family, generator = model.family, model.generator
    clean = torch.cat([ganforge.media.from_uint8(torch.from_numpy(np.asarray(photo(200 + i, (16, 16))).copy())
                                                 .permute(2, 0, 1))[None] for i in range(6)])
    restored, mask = family.restore(generator, clean)
    assert mask.shape == (6, 1, 16, 16) and mask.min() >= 0 and mask.max() <= 1
    assert (mask == 0).float().mean() > 0.9  # unmarked images: (nearly) every pixel judged undamaged
    untouched = (mask == 0).expand_as(clean)
    assert torch.equal(restored[untouched], clean[untouched])  # and those pixels come back exactly
    import csv

    with (run / "metrics.csv").open() as handle:  # and it is not the trivial all-zero mask: it learned the marks
        last = list(csv.DictReader(handle))[-1]
    assert float(last["mask_iou"]) > 0.25 and float(last["gain_db"]) > 0


def test_translate_writes_masks_and_keeps_unmasked_pixels(trained, tmp_path):
    root, run = trained
    test = root / "pairs" / "test"
    done = subprocess.run([sys.executable, "-m", "ganforge", "translate", str(run), str(test / "A"), "--out",
                           str(tmp_path / "out"), "--masks", str(tmp_path / "masks"), "--targets", str(test / "B")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "PSNR" in done.stdout and "improved" in done.stdout
    for path in (test / "A").iterdir():
        mask, out, given = pixels(tmp_path / "masks" / path.name), pixels(tmp_path / "out" / path.name), pixels(path)
        assert mask.shape == given.shape[:2]
        assert np.array_equal(out[mask == 0], given[mask == 0])
    pix = subprocess.run([sys.executable, "-m", "ganforge", "translate", str(run), str(test / "A"), "--out",
                          str(tmp_path / "o2"), "--masks", str(test / "A")], capture_output=True, text=True)
    assert pix.returncode == 2 and "input folder" in pix.stderr


def test_translate_opt_sets_inference_options_of_an_older_run(trained, tmp_path):
    from typer.testing import CliRunner

    from ganforge.cli import app

    root, run = trained
    test = root / "pairs" / "test"
    model = ganforge.load(run)
    assert model.config.model.options.get("ensemble") is None  # trained without them
    x = torch.cat([ganforge.media.images.from_picture(Image.open(p).convert("RGB"))
                   for p in sorted((test / "A").iterdir())])
    with torch.no_grad():
        plain = model.family.translate(model.generator, x)
        model.set_options({"ensemble": 4, "window": 8})
        assert model.family.options.ensemble == 4 and model.family.options.window == 8
        assert model.family.options.unet_depth == 2  # the run's own options stay
        ensembled = model.family.translate(model.generator, x)
    assert not torch.equal(plain, ensembled)
    done = CliRunner().invoke(app, ["translate", str(run), str(test / "A"), "--out", str(tmp_path / "out"),
                                    "--opt", "ensemble=4", "--opt", "window=8"])
    assert done.exit_code == 0, done.output
    for i, path in enumerate(sorted((test / "A").iterdir())):
        expected = ((ensembled[i].permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).numpy()
        assert np.abs(pixels(tmp_path / "out" / path.name) - expected).max() <= 1
    for bad, named in (("unet_depth=3", "model.options.unet_depth"), ("ensemble=3", "model.options.ensemble")):
        refused = CliRunner().invoke(app, ["translate", str(run), str(test / "A"), "--out", str(tmp_path / "x"),
                                           "--opt", bad])
        assert isinstance(refused.exception, GanforgeError) and named in str(refused.exception)  # main(): exit 2
    with pytest.raises(GanforgeError, match="ensemble, window, mask_seed"):
        model.set_options({"bottleneck": 4})


def test_copies_give_differently_marked_training_pairs(tmp_path):
    source = photos(tmp_path / "src", 8, (24, 24))
    make_pairs("watermark", source, tmp_path / "one", seed=3, split=0.25)
    make_pairs("watermark", source, tmp_path / "three", seed=3, split=0.25, copies=3)
    train = sorted(p.name for p in (tmp_path / "one" / "train" / "A").iterdir())
    test = sorted(p.name for p in (tmp_path / "one" / "test" / "A").iterdir())
    assert sorted(p.name for p in (tmp_path / "three" / "test" / "A").iterdir()) == test  # held out: one each
    copied = sorted(p.name for p in (tmp_path / "three" / "train" / "A").iterdir())
    assert len(copied) == 3 * len(train) and set(train) <= set(copied)
    for name in train:
        first = tmp_path / "three" / "train" / "A" / name
        assert first.read_bytes() == (tmp_path / "one" / "train" / "A" / name).read_bytes()  # copy 0 = copies=1
        others = [first.with_suffix(f".copy{k}.png") for k in (1, 2)]
        marked = [pixels(first)] + [pixels(p) for p in others]
        assert not np.array_equal(marked[0], marked[1]) and not np.array_equal(marked[1], marked[2])
        clean = [pixels(p.parent.parent / "B" / p.name) for p in [first] + others]
        assert all(np.array_equal(clean[0], c) for c in clean[1:])  # the same clean target
    with pytest.raises(GanforgeError, match="--copies"):
        make_pairs("watermark", source, tmp_path / "none", copies=0)


def test_mask_and_pixel_losses():
    from ganforge.families.restore import mask_loss, pixel_loss

    truth = (torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0)) < 0.1).float()
    right, wrong = (truth * 2 - 1) * 20, (1 - 2 * truth) * 20
    for kind in ("bce", "dice", "focal"):
        assert mask_loss(kind, right, truth) < 1e-3 < mask_loss(kind, wrong, truth)
    unsure = torch.full_like(truth, -3.0)  # "clean everywhere": Dice counts the missed marks, BCE barely does
    assert mask_loss("dice", unsure, truth) - mask_loss("bce", unsure, truth) > 0.8
    source, target = torch.rand(2, 3, 8, 8) * 2 - 1, torch.rand(2, 3, 8, 8) * 2 - 1
    assert torch.isclose(pixel_loss("mse", source, target, source), torch.tensor(1.0))  # untouched: all damage left
    assert pixel_loss("mse", target, target, source) == 0
    assert torch.isclose(pixel_loss("l1", source, target, None), (source - target).abs().mean())


@pytest.mark.parametrize("context", [0, 2])
def test_untrained_network_returns_its_input_exactly(context):
    from ganforge.families.restore import RestoreNet

    net = RestoreNet(3, 3, 8, "batch", "resize", context).eval()
    x = torch.rand(2, 3, 24, 40) * 2 - 1
    raw = net(x)
    assert raw.shape == (2, 4, 24, 40) and torch.all(raw[:, :3] == 0) and torch.all(raw[:, 3] == -3)


def test_presets_bottleneck_and_crop_cap(tmp_path):
    from ganforge.api import resolve_config
    from ganforge.families import DataInfo, create, get

    def depth(preset, **options):
        config = resolve_config(None, {"model": {"name": "restore", "preset": preset, "width": 8,
                                                 "options": options}, "data": {"source": str(tmp_path)}})
        return create(config, DataInfo(3, 32)).generator.body.depth, config

    assert depth("default")[0] == 4  # a 2x2 bottleneck at 32 px
    paper_depth, paper = depth("paper")
    assert paper_depth == 3 and paper.model.options["adversarial_weight"] > 0  # the first recipe: 4x4, PatchGAN
    assert depth("default", bottleneck=8)[0] == 2 and depth("default", unet_depth=1)[0] == 1
    _, photo = depth("photos")
    assert photo.model.g_norm == "instance" and photo.train.batch_size == 4 and photo.model.options["crop"] == 64
    assert photo.model.options["marks"] == "fresh" and photo.model.options["clean_share"] == 0.2
    assert photo.model.options["window"] == 64 and photo.model.options["ensemble"] == 8  # inference only
    assert photo.train.steps == 10000 and photo.train.ema == 0  # measured: 10,000 > 7,000 > 6,000 steps; an EMA hurt
    assert not {"window", "ensemble", "repair"} & set(depth("default")[1].model.options)  # CIFAR recipe unchanged
    make_pairs("watermark", photos(tmp_path / "src", 2, (40, 36)), tmp_path / "pairs", seed=0)
    restore = get("restore")

    def resolution(**data):
        config = resolve_config(None, {"model": {"name": "restore", "options": {"crop": 16}},
                                       "data": {"source": str(tmp_path / "pairs"), **data}})
        return restore.load_data(config).resolution

    assert resolution() == 16 and resolution(resolution=32) == 32  # a cap on the data's own crop, not on a choice


def test_fresh_marks_are_new_each_batch_deterministic_and_resumable(tmp_path):
    from ganforge.data.marked import load_marked

    source = photos(tmp_path / "clean", 4, (40, 36))
    data = load_marked(str(source), None, None, None, clean_share=0.0)
    assert data.resolution == 32 and len(data) == 4 and data.paired
    assert all(torch.equal(b, torch.from_numpy(pixels(p).astype(np.uint8)).permute(2, 0, 1))
               for b, p in zip(data.b, sorted(source.iterdir())))  # B: the clean images at their own size

    def draw(seed, n):
        batches = data.batches(4, torch.device("cpu"), seed)
        return batches, [batches.next() for _ in range(n)]

    _, first = draw(7, 6)
    _, again = draw(7, 6)
    assert all(torch.equal(x["a"], y["a"]) and torch.equal(x["b"], y["b"]) for x, y in zip(first, again))
    _, other = draw(8, 1)
    assert not torch.equal(other[0]["a"], first[0]["a"])  # another seed, other marks
    marked = [damage_mask(x["a"], x["b"], 0.5) for x in first]
    assert all(m.flatten(1).amax(1).sum() >= 2 for m in marked)  # most crops carry marks
    # a batch of 4 is a pass over the 4 images: the same images in the next pass carry other marks
    assert not torch.equal(marked[0].sum((1, 2, 3)).sort()[0], marked[1].sum((1, 2, 3)).sort()[0])
    resumed, _ = draw(7, 3)
    state = resumed.state_dict()
    fresh = data.batches(4, torch.device("cpu"), 123)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.next()["a"], first[3]["a"])  # resume: the batch an uninterrupted run sees


def test_fresh_marks_leave_a_share_of_crops_clean_with_zero_mask_targets(tmp_path):
    from ganforge.data.marked import load_marked

    make_pairs("watermark", photos(tmp_path / "src", 8, (36, 40)), tmp_path / "pairs", seed=0)
    data = load_marked(str(tmp_path / "pairs"), 16, None, None, clean_share=0.5)  # an A/B layout: B is used
    assert all(torch.equal(b, torch.from_numpy(pixels(tmp_path / "pairs" / "B" / f"{name}.png").astype(np.uint8))
                           .permute(2, 0, 1)) for b, name in zip(data.b, data.names))
    batches = data.batches(8, torch.device("cpu"), 0)
    clean = touched = 0
    for _ in range(8):
        batch = batches.next()
        truth = damage_mask(batch["a"], batch["b"], 0.5).flatten(1)
        same = (batch["a"] == batch["b"]).flatten(1).all(1)
        assert torch.all(truth[same] == 0)  # an unmarked crop: every mask target 0
        clean += int(same.sum())
        touched += int((truth.amax(1) > 0).sum())
    assert 16 <= clean <= 48 and touched >= 16  # about half of the 64 crops left clean, the others marked
    with pytest.raises(GanforgeError, match="no image files"):
        load_marked(str(photos(tmp_path / "empty", 0)), None, None, None)


def test_train_with_fresh_marks_from_a_plain_folder(tmp_path):
    source = photos(tmp_path / "clean", 6, (24, 20))
    run = ganforge.train(quiet=True, out=str(tmp_path / "runs"), name="fresh", data={"source": str(source)},
                         model={"name": "restore", "width": 8, "options": {"unet_depth": 2, "marks": "fresh",
                                                                           "clean_share": 0.25}},
                         train={"steps": 6, "batch_size": 4, "log_every": 3, "sample_every": 6,
                                "checkpoint_every": 6})
    model = ganforge.load(run)
    assert model.config.data.resolution == 16 and model.config.model.options["marks"] == "fresh"
    x = torch.rand(1, 3, 20, 24) * 2 - 1
    assert model.family.translate(model.generator, x).shape == x.shape


def test_mask_seed_keeps_only_regions_holding_a_confident_pixel():
    from ganforge.families.restore import seeded_regions

    logit = torch.full((1, 1, 12, 12), -4.0)
    logit[0, 0, 1:4, 1:9] = 1.0  # an unsure region (p 0.73) ...
    logit[0, 0, 2, 8] = 5.0  # ... holding one confident pixel (p 0.99): kept whole
    logit[0, 0, 4, 9] = 1.0  # touching it diagonally: the same region
    logit[0, 0, 7:11, 2:6] = 2.0  # unsure everywhere (p 0.88): dropped
    kept = seeded_regions(logit, 0.95)[0, 0]
    assert kept[1:4, 1:9].all() and kept[4, 9] == 1 and kept[7:11, 2:6].sum() == 0
    assert kept.sum() == 3 * 8 + 1
    assert torch.equal(seeded_regions(logit, 0.8), (logit > 0).float())  # both regions hold a pixel above 0.8


def test_unblend_inverts_an_alpha_blended_mark_and_starts_as_the_identity(tmp_path):
    from ganforge.api import resolve_config
    from ganforge.families import DataInfo, create
    from ganforge.families.restore import ALPHA_MAX, unblend

    g = torch.Generator().manual_seed(0)
    clean = torch.rand(2, 3, 8, 8, generator=g) * 2 - 1
    colour = torch.rand(2, 3, 1, 1, generator=g) * 1.8 - 0.9  # one colour a mark
    alpha = torch.rand(2, 1, 8, 8, generator=g) * 0.85  # opacity per pixel (anti-aliased edges, overlaps)
    marked = (1 - alpha) * clean + alpha * colour
    change = unblend(marked, torch.atanh(colour).expand_as(clean), alpha)
    assert torch.allclose(marked + change, clean, atol=1e-5)  # the true opacity and colour undo the mark exactly
    assert torch.all(unblend(marked, torch.zeros_like(clean), torch.zeros_like(alpha)) == 0)  # opacity 0: no change

    def family(**options):
        config = resolve_config(None, {"model": {"name": "restore", "width": 8, "options": {"unet_depth": 2,
                                                                                            **options}},
                                       "data": {"source": str(tmp_path)}})
        return create(config, DataInfo(3, 16))

    unblending, residual = family(repair="unblend"), family()
    assert unblending.generator.head[-1].out_channels == 5 and residual.generator.head[-1].out_channels == 4
    x = torch.rand(2, 3, 16, 24) * 2 - 1
    out, mask = unblending.restore(unblending.generator.eval(), x)
    assert torch.equal(out, x) and torch.all(mask == 0)  # untrained: the input back, bit for bit
    a = ALPHA_MAX * torch.sigmoid(unblending._heads(unblending.generator, x)[3])
    assert a.shape == (2, 1, 16, 24) and 0 < a.min() and a.max() < ALPHA_MAX
    assert family()._heads(residual.generator, x)[3] is None


def test_fresh_marks_carry_their_opacity_and_opacity_loss_needs_them(tmp_path):
    from ganforge.data.marked import load_marked

    source = photos(tmp_path / "clean", 4, (40, 36))
    data = load_marked(str(source), 16, None, None, clean_share=0.25)
    batches = data.batches(4, torch.device("cpu"), 3)
    for _ in range(4):
        batch = batches.next()
        opacity = batch["opacity"]
        assert opacity.shape == (4, 1, 16, 16) and opacity.min() >= 0 and opacity.max() <= 1
        changed = (batch["a"] != batch["b"]).any(1, keepdim=True)
        assert torch.all(opacity[changed] > 0) and torch.all(~changed[opacity == 0])  # opacity 0: untouched
        assert opacity.amax((1, 2, 3)).gt(0.2).any()  # marks are there, and visible
    run = ganforge.train(quiet=True, out=str(tmp_path / "runs"), name="unblend", data={"source": str(source)},
                         model={"name": "restore", "width": 8, "options": {
                             "unet_depth": 2, "marks": "fresh", "repair": "unblend", "opacity_weight": 1.0}},
                         train={"steps": 4, "batch_size": 4, "log_every": 2, "sample_every": 4,
                                "checkpoint_every": 4})
    assert "opacity" in (run / "metrics.csv").read_text().splitlines()[0]
    model = ganforge.load(run)
    assert model.family.options.repair == "unblend" and model.generator.head[-1].out_channels == 5
    make_pairs("watermark", source, tmp_path / "pairs", seed=0)
    with pytest.raises(GanforgeError, match="opacity_weight needs repair=unblend and marks=fresh"):
        ganforge.train(quiet=True, out=str(tmp_path / "runs"), name="pairs", data={"source": str(tmp_path / "pairs")},
                       model={"name": "restore", "width": 8, "options": {"unet_depth": 2, "repair": "unblend",
                                                                         "opacity_weight": 1.0}},
                       train={"steps": 2, "batch_size": 4})


def test_ensemble_and_windows_average_changes_and_keep_untouched_pixels_exact(tmp_path):
    from ganforge.api import resolve_config
    from ganforge.families import DataInfo, create
    from ganforge.families.restore import dihedral, window_starts

    x = torch.arange(2 * 3 * 4 * 5.0).reshape(2, 3, 4, 5)
    assert all(torch.equal(dihedral(dihedral(x, k), k, inverse=True), x) for k in range(8))
    assert len({tuple(dihedral(x[0, 0], k).flatten().tolist()) for k in range(8)}) == 8  # 8 different copies
    assert window_starts(128, 64) == [0, 32, 64] and window_starts(100, 64) == [0, 32, 36]
    assert window_starts(40, 64) == [0]

    def family(**options):
        config = resolve_config(None, {"model": {"name": "restore", "width": 8,
                                                 "options": {"unet_depth": 2, **options}},
                                       "data": {"source": str(tmp_path)}})
        return create(config, DataInfo(3, 16))

    torch.manual_seed(0)
    plain = family()
    with torch.no_grad():  # a network that changes some pixels and not others
        plain.generator.head[-1].weight.normal_(0, 0.3)
        plain.generator.head[-1].bias[-1] = 0.0
    plain.generator.eval()
    state = plain.generator.state_dict()
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    one, one_mask = plain.restore(plain.generator, images)
    assert 0.05 < (one_mask > 0).float().mean() < 0.95
    for options in ({"ensemble": 8}, {"window": 16}, {"ensemble": 4, "window": 16}):
        model = family(**options)
        model.generator.load_state_dict(state)
        model.generator.eval()
        out, mask = model.restore(model.generator, images)
        assert out.shape == images.shape and mask.shape == one_mask.shape
        assert out.min() >= -1 and out.max() <= 1 and 0 <= mask.min() and mask.max() <= 1
        untouched = (mask == 0).expand_as(images)
        assert untouched.any() and torch.equal(out[untouched], images[untouched])  # bit for bit where no copy acts
        assert not torch.allclose(out, one)  # an average of other passes, not the single pass
    model = family(ensemble=8)
    model.generator.load_state_dict(state)
    model.generator.eval()
    out = model.restore(model.generator, images)[0]
    mirrored = model.restore(model.generator, images.flip(-1))[0]
    assert torch.allclose(mirrored, out.flip(-1), atol=1e-5)  # the group average commutes with a flip
    whole = family(window=32)  # a window as large as the image: the single pass
    whole.generator.load_state_dict(state)
    assert torch.equal(whole.restore(whole.generator.eval(), images)[0], one)


def test_repair_weight_scales_the_guided_loss_on_the_marked_pixels():
    from ganforge.api import resolve_config
    from ganforge.families import DataInfo, create

    gen = torch.Generator().manual_seed(0)
    clean = torch.rand(2, 3, 16, 16, generator=gen) * 2 - 1
    marked = clean.clone()
    marked[:, :, 4:9, 2:12] = 0.9  # an opaque bar: the only damaged pixels
    batch = {"a": marked, "b": clean}

    def step(weight):
        config = resolve_config(None, {"model": {"name": "restore", "width": 8, "options": {
            "unet_depth": 2, "repair_weight": weight}}, "data": {"source": "unused"}})
        torch.manual_seed(1)
        family = create(config, DataInfo(3, 16))
        total, logs = family.loss("G", batch)
        total.backward()
        return total, logs, family.generator.head[-1].weight.grad[:3]  # the residual channels

    (one, logs, grad1), (three, _, grad3), (_, _, grad0) = step(1.0), step(3.0), step(0.0)
    assert logs["guided"] > 0 and torch.isclose(three - one, 2 * logs["guided"])
    # the untrained mask is 0 everywhere, so without the guided loss the residual gets no gradient at all; the
    # guided loss's gradient is 3x as large at weight 3
    assert torch.all(grad0 == 0) and grad1.abs().sum() > 0 and torch.allclose(grad3, 3 * grad1, rtol=1e-4, atol=1e-9)
