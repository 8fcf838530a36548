"""Text to image: caption files and vocabulary, the shapes-captions source (seeded, held-out pairs absent from
training), GAN-CLS wrong-caption pairs as fakes and MA-GP in the D loss, bit-exact resume, `sample --caption`."""

import json
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import ganforge
from ganforge import media
from ganforge.data.captions import CaptionSet, Vocabulary, load_captioned, read_captions, tokenize
from ganforge.data.shapes import HELD_OUT, make_scenes, parse_caption, shapes_captions
from ganforge.errors import GanforgeError
from ganforge.families.text2image import (bag_of_words, contrastive_loss, matching_aware_d_loss,
                                           matching_aware_penalty, mismatched, word_feature_gap, word_loss,
                                           word_swapped)
from ganforge.nn.text2image import Discriminator, PoolBlock, WordNet
from ganforge.training import checkpoint as ckpt


def tiny_run(tmp_path, **extra):
    base = {"model.name": "text2image", "data.source": "shapes-captions", "data.limit": 64, "data.resolution": 16,
            "model.width": 4, "model.latent_dim": 8, "model.options": {"embed_dim": 8, "text_dim": 8},
            "train.batch_size": 8, "train.steps": 4, "train.log_every": 1, "train.sample_every": 100,
            "train.checkpoint_every": 2, "out": str(tmp_path), "name": "run"}
    return base | extra


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return ganforge.train(quiet=True, **tiny_run(tmp_path_factory.mktemp("t2i")))


def write_folder(root, lines, name="captions.txt", n=3):
    root.mkdir()
    for i in range(n):
        Image.fromarray(np.full((12, 20, 3), 40 * i, np.uint8)).save(root / f"im{i}.png")
    (root / name).write_text("\n".join(lines) + "\n")
    return root


def test_caption_files_txt_and_jsonl(tmp_path):
    lines = ["# a comment", "im0.png\ta red circle", "im1.png: A Blue square!", "", "im0.png: a red disc"]
    txt = write_folder(tmp_path / "t", lines)
    assert read_captions(txt) == {"im0.png": ["a red circle", "a red disc"], "im1.png": ["A Blue square!"]}
    rows = [{"file": "im0.png", "caption": "one"}, {"image": "im2.png", "captions": ["two", "three"]}]
    jsonl = write_folder(tmp_path / "j", [json.dumps(r) for r in rows], "captions.jsonl")
    assert read_captions(jsonl) == {"im0.png": ["one"], "im2.png": ["two", "three"]}
    data = load_captioned(str(jsonl), 16, None, None)
    assert data.images.shape == (2, 3, 16, 16) and data.owner.tolist() == [0, 1, 1]
    assert data.facts["vocabulary"] == ["one", "three", "two"] and data.facts["max_length"] == 1
    with pytest.raises(GanforgeError, match=r"captions.txt:2: expected 'file<TAB>caption'"):
        read_captions(write_folder(tmp_path / "bad", ["im0.png: fine", "no separator here"]))
    with pytest.raises(GanforgeError, match="needs shapes-captions or a folder with captions.txt"):
        load_captioned(str(tmp_path), 16, None, None)


def test_vocabulary_encodes_pads_and_marks_unknown_words():
    vocab = Vocabulary.build(["a red circle", "a blue circle", "A red, square."])
    assert vocab.words[:2] == ["<pad>", "<unk>"] and vocab.words[2:5] == ["a", "circle", "red"]
    assert tokenize("A red, square.") == ["a", "red", "square"]
    ids, unknown = vocab.encode(["a red zorb circle", "a blue square plus more words"], 5)
    assert unknown == ["more", "plus", "zorb"]  # words past the length are not read
    assert ids.shape == (2, 5) and ids[0].tolist()[2] == 1 and ids[0, 4] == 0  # <unk>, then padding
    assert vocab.decode(ids[0]) == "a red <unk> circle"
    assert vocab.decode(vocab.encode(["a blue square"], 6)[0][0]) == "a blue square"


def test_batches_pair_each_image_with_one_of_its_own_captions():
    images = torch.arange(4, dtype=torch.uint8).view(4, 1, 1, 1).expand(4, 3, 8, 8).clone()
    texts = ["zero", "one a", "one b", "two", "three a", "three b", "three c"]
    data = CaptionSet(images, texts, torch.tensor([0, 1, 1, 2, 3, 3, 3]), Vocabulary.build(texts))
    batches = data.batches(4, torch.device("cpu"), seed=0)
    seen = set()
    for _ in range(30):
        batch = batches.next()
        for image, caption in zip(batch["image"], batch["caption"]):
            index = round(float((image[0, 0, 0] + 1) * 127.5))
            text = data.vocabulary.decode(caption)
            assert text.startswith(["zero", "one", "two", "three"][index])
            seen.add(text)
    assert seen == set(texts)  # every caption of an image gets drawn


def test_shapes_captions_seeded_with_held_out_pairs_absent_from_training():
    a, b = shapes_captions(120, 16, seed=3), shapes_captions(120, 16, seed=3)
    assert torch.equal(a.images, b.images) and a.texts == b.texts and a.images.shape == (120, 3, 16, 16)
    assert not torch.equal(a.images, shapes_captions(120, 16, seed=4).images)
    pairs = set()
    for text in a.texts:
        scene = parse_caption(text)
        assert scene is not None, text
        pairs |= {(t.colour, t.shape) for t in scene.things}
    assert not pairs & set(HELD_OUT) and len(pairs) >= 15
    held = make_scenes(50, seed=0, split="held-out")
    assert all(s.held_out for s in held)
    scene = parse_caption("a small red circle left of a blue square")
    assert (scene.first.colour, scene.first.size, scene.second.shape, scene.relation) == ("red", "small", "square",
                                                                                         "left of")
    assert scene.canonical() == scene
    assert parse_caption("a blue square right of a red circle").canonical().first.colour == "red"
    assert parse_caption("a red dog") is None


def test_wrong_caption_pairs_count_as_fakes():
    real, fake = torch.tensor([2.0, 1.5]), torch.tensor([-1.0, -2.0])
    low, high = torch.tensor([-1.0, -1.0]), torch.tensor([3.0, 3.0])
    for kind in ("hinge", "nonsaturating", "least-squares", "wasserstein"):
        # D is penalised for scoring real images with wrong captions as real, as for fakes
        assert matching_aware_d_loss(kind, real, fake, high) > matching_aware_d_loss(kind, real, fake, low)
        assert matching_aware_d_loss(kind, real, fake, high, mismatch=0) == matching_aware_d_loss(kind, real, fake, low,
                                                                                                   mismatch=0)
    # hinge, DF-GAN's weighting: relu(1 - real) + (relu(1 + fake) + relu(1 + wrong)) / 2
    assert matching_aware_d_loss("hinge", real, fake, high).item() == pytest.approx(0 + (0 + 4) / 2)
    captions = torch.tensor([[3, 4, 0], [3, 4, 0], [5, 6, 7], [3, 4, 0]])
    assert mismatched(captions).tolist() == [-1, -1, 1, 2]  # rows whose previous row says the same are left out
    torch.manual_seed(0)
    captions = torch.tensor([[2, 3, 4, 0], [2, 5, 6, 7], [2, 5, 6, 7], [2, 8, 4, 0]])
    for _ in range(5):  # hard wrong captions: one word changed, to the previous row's word at that place
        swapped, possible = word_swapped(captions)
        assert possible.tolist() == [True, True, False, True]
        changed = swapped != captions
        assert changed.sum(1).tolist() == [1, 1, 0, 1]
        assert torch.equal(swapped[changed], captions.roll(1, 0)[changed]) and (swapped[changed] != 0).all()


def test_family_d_loss_scores_real_images_with_wrong_captions(trained):
    family = ganforge.load(trained).family
    family.train()
    batch = type(family).load_data(family.config).batches(8, torch.device("cpu"), seed=1).next()
    calls = []
    judge, judge_words = family.judge, family.judge_words

    def recording(images, sentence, judge=judge):
        calls.append((images.detach().clone(), sentence.detach().clone()))
        return judge(images, sentence)

    family.judge = recording
    family.judge_words = lambda images, sentence: recording(images, sentence, judge_words)  # the default's word head
    family.options.magp_weight = 2.0  # the paper's MA-GP (off by default)
    loss, logs = family.loss("D", batch)
    assert torch.isfinite(loss) and {"d_wrong", "magp"} <= set(logs)
    own = family.discriminator.encode(batch["caption"]).detach()
    wrong = mismatched(batch["caption"])
    real_wrong = calls[2]
    keep = wrong >= 0
    assert torch.equal(real_wrong[0], batch["image"][keep])  # real images ...
    assert torch.allclose(real_wrong[1], own[wrong[keep]])  # ... with other rows' captions
    assert not torch.allclose(real_wrong[1], own[keep])
    family.options.hard_wrong = 1.0  # every wrong caption now differs from the right one by one word
    calls.clear()
    family.loss("D", batch)
    captions = batch["caption"]
    _, possible = word_swapped(captions)
    images, sentences = calls[2]
    assert torch.equal(images, batch["image"][possible | (wrong >= 0)])
    previous = captions.roll(1, 0)
    assert possible.sum() >= len(sentences) // 2
    for row, sentence in zip((possible | (wrong >= 0)).nonzero().flatten().tolist(), sentences):
        one_word = [torch.where(torch.arange(captions.shape[1]) == k, previous[row], captions[row])
                    for k in range(captions.shape[1]) if 0 != previous[row, k] != captions[row, k] != 0]
        encoded = family.discriminator.encode(torch.stack(one_word or [previous[row]])).detach()
        assert any(torch.allclose(sentence, e, atol=1e-6) for e in encoded)


def test_matching_aware_penalty_includes_the_caption_gradient():
    images = torch.randn(3, 2, 4, 4, requires_grad=True)
    weights = torch.randn(3, 5)
    sentence = (weights * 2).requires_grad_(True)
    scores = (images.flatten(1).sum(1) * 0.5) + (sentence * 2).sum(1)
    norm = torch.sqrt(torch.full((3,), 32 * 0.25 + 5 * 4.0))
    assert matching_aware_penalty(scores, images, sentence, 6.0).item() == pytest.approx(norm.pow(6).mean().item())


def test_projection_term_is_the_inner_product_with_the_caption():
    torch.manual_seed(0)
    d = Discriminator(10, 4, 6, "bag", 3, 16, 4, "none", projection=True)
    images, captions = torch.randn(5, 3, 16, 16), torch.randint(2, 10, (5, 7))
    sentence = d.encode(captions)
    with_term = d.score(images, sentence)
    project, d.project = d.project, None
    without = d.score(images, sentence)
    features = torch.nn.functional.leaky_relu(d.blocks(torch.nn.functional.leaky_relu(d.from_rgb(images), 0.2)), 0.2)
    by_hand = (features.sum((2, 3)) * (sentence @ project.weight.T)).sum(1)
    assert torch.allclose(with_term - without, by_hand, atol=1e-5)
    d.project = project
    other = d.encode(captions.roll(1, 0))  # other captions: other projection terms
    assert not torch.allclose(d.score(images, other) - d.score(images, sentence), without - without)


def test_word_head_learns_caption_words_from_real_images_and_scores_the_generator(trained):
    captions = torch.tensor([[5, 3, 4, 0], [1, 2, 0, 0]])  # 1 is <unk>: never a target, nor is <pad>
    bag = bag_of_words(captions, 7)
    assert bag.tolist() == [[0, 0, 0, 1, 1, 1, 0], [0, 0, 1, 0, 0, 0, 0]]
    assert word_loss(20 * (2 * bag - 1), captions) < 1e-6 < 20 < word_loss(-20 * (2 * bag - 1), captions)
    # the head learns which words real images' captions have (here each 16 px render with its first caption)
    data = shapes_captions(64, 16, seed=3)
    images, tokens = media.from_uint8(data.images), data.tokens[data.first]
    assert Discriminator(len(data.vocabulary), 8, 8, "bag", 3, 16, 4, "spectral").words is None  # off: no layer
    for trunk in ("shared", "own"):  # on D's pooled features, or a batch-normed trunk of its own
        torch.manual_seed(0)
        d = Discriminator(len(data.vocabulary), 8, 8, "bag", 3, 16, 4, "spectral", word_head=trunk)
        optimiser = torch.optim.Adam(d.parameters(), 4e-3)
        sentence = torch.zeros(len(images), 8)
        losses = []
        for _ in range(40):
            loss = word_loss(d.score_and_words(images, sentence)[1], tokens)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        assert losses[-1] < 0.7 * losses[0], trunk
    # in the family: D's loss adds the head's loss on real images, G's loss the head's loss on G's images
    family = ganforge.load(trained).family
    family.options.text_words = 0.0  # D's loss without the default's text term (tested on its own)
    family.options.word_head = 0.5
    family.discriminator.words = torch.nn.Linear(family.discriminator.project.out_features, len(family.vocabulary))
    family.train()
    batch = type(family).load_data(family.config).batches(8, torch.device("cpu"), seed=1).next()
    loss, logs = family.loss("D", batch)
    blank = torch.zeros(8, family.options.text_dim)  # the word logits do not depend on the caption
    d_words = word_loss(family.discriminator.score_and_words(batch["image"], blank)[1], batch["caption"])
    # (rel=1e-3: spectral norm's power iteration moves a little with every forward pass in training mode)
    assert logs["d_words"].item() == pytest.approx(d_words.item(), rel=1e-3)
    assert loss.item() == pytest.approx(logs["d_loss"].item() + 0.5 * logs["d_words"].item(), rel=1e-5)
    torch.manual_seed(7)
    loss, logs = family.loss("G", batch)
    torch.manual_seed(7)
    fake = family.generate(family.generator, family.generator_inputs(batch))
    g_words = word_loss(family.discriminator.score_and_words(fake, blank)[1], batch["caption"])
    assert logs["g_words"].item() == pytest.approx(g_words.item(), rel=1e-3)
    assert loss.item() == pytest.approx(logs["g_loss"].item() + 0.5 * logs["g_words"].item(), rel=1e-5)
    family.zero_grad(set_to_none=True)
    loss.backward()  # G is pushed towards images whose words the head finds
    assert family.generator.to_rgb.weight.grad.abs().sum() > 0
    # an own trunk reads G's images with real images' batch statistics, and G's images leave those alone
    family.discriminator.words = WordNet(3, 16, 4, len(family.vocabulary))
    family.loss("D", batch)
    stats = {k: v.clone() for k, v in family.discriminator.words.state_dict().items() if "running" in k}
    assert any(not torch.equal(v, torch.zeros_like(v)) for k, v in stats.items() if "mean" in k)
    _, logs = family.loss("G", batch)
    assert family.discriminator.words.training and "g_words" in logs
    assert all(torch.equal(v, family.discriminator.words.state_dict()[k]) for k, v in stats.items())
    recipes = ganforge.families.get("text2image")
    assert recipes.Options().word_head == 0 and recipes.recipe("paper")["model"]["options"].get("word_head", 0) == 0
    assert recipes.recipe("default")["model"]["options"]["word_head"] > 0  # old runs store no word_head: no head


def test_word_match_pulls_the_generators_head_features_towards_real_ones_per_word(trained, tmp_path):
    captions = torch.tensor([[2, 3, 0], [2, 4, 0], [5, 0, 0]])  # words 2 (twice), 3, 4, 5
    real, fake = torch.tensor([[1.0, 0], [3, 0], [0, 4]]), torch.tensor([[0.0, 0], [0, 2], [0, 4]])
    # word 2: mean (2, 0) vs (0, 1) -> 5; word 3: (1, 0) vs (0, 0) -> 1; word 4: (3, 0) vs (0, 2) -> 13; word 5: 0
    assert word_feature_gap(fake, real, captions, captions, 6).item() == pytest.approx((5 + 1 + 13 + 0) / 4)
    other = torch.tensor([[3, 0, 0], [3, 0, 0], [3, 0, 0]])  # only words both batches have count
    assert word_feature_gap(fake, real, other, captions, 6).item() == pytest.approx(((0 - 1) ** 2 + 2 ** 2) / 1)
    assert word_feature_gap(real, real, captions, captions.flip(0), 6) > 0 == word_feature_gap(real, real, captions,
                                                                                              captions, 6)
    family = ganforge.load(trained).family
    family.options.word_head, family.options.word_match = 0.5, 0.25
    family.discriminator.words = WordNet(3, 16, 4, len(family.vocabulary))
    family.train()
    batch = type(family).load_data(family.config).batches(8, torch.device("cpu"), seed=1).next()
    family.loss("D", batch)  # running statistics of real images
    stats = {k: v.clone() for k, v in family.discriminator.words.state_dict().items() if "running" in k}
    torch.manual_seed(7)
    loss, logs = family.loss("G", batch)
    torch.manual_seed(7)
    fake = family.generate(family.generator, family.generator_inputs(batch))
    head = family.discriminator.words.eval()  # both read with real images' statistics, as in G's step
    gap = word_feature_gap(head.features(fake), head.features(batch["image"]), batch["caption"], batch["caption"],
                           len(family.vocabulary))
    head.train()
    assert logs["g_match"].item() == pytest.approx(gap.item(), rel=1e-4) and gap > 0
    assert loss.item() == pytest.approx(logs["g_loss"].item() + 0.5 * logs["g_words"].item() + 0.25 * gap.item(),
                                        rel=1e-5)
    family.zero_grad(set_to_none=True)
    loss.backward()  # G is pulled by it; G's and real images leave the head's statistics alone
    assert family.generator.to_rgb.weight.grad.abs().sum() > 0
    assert all(torch.equal(v, family.discriminator.words.state_dict()[k]) for k, v in stats.items())
    assert ganforge.families.get("text2image").Options().word_match == 0
    with pytest.raises(GanforgeError, match="word_match"):  # no head, nothing to match
        ganforge.train(quiet=True, **tiny_run(tmp_path, **{"model.options": {"word_match": 1.0, "word_head": 0}}))


def test_word_fake_teaches_the_head_that_generated_images_have_none_of_the_words(trained):
    family = ganforge.load(trained).family
    family.options.text_words = 0.0  # D's loss without the default's text term (tested on its own)
    family.options.word_head, family.options.word_fake = 0.5, 0.1
    family.discriminator.words = WordNet(3, 16, 4, len(family.vocabulary))
    family.train()
    batch = type(family).load_data(family.config).batches(8, torch.device("cpu"), seed=1).next()
    head = family.discriminator.words
    torch.manual_seed(3)
    loss, logs = family.loss("D", batch)
    # the batch statistics are updated by real images only, once per D step (the scores of real images with wrong
    # captions do not run the head), G's images go through it in eval mode
    assert head.net[1].num_batches_tracked.item() == 1
    torch.manual_seed(3)
    with torch.no_grad():
        fake = family.generate(family.generator, family.generator_inputs(batch))
    head.eval()  # G's images are read with real images' statistics, as in G's step
    none = word_loss(head(fake), torch.zeros_like(batch["caption"]))  # all-zero targets: no word is in them
    head.train()
    assert logs["d_fake_words"].item() == pytest.approx(none.item(), rel=1e-5) and none > 0
    assert loss.item() == pytest.approx(logs["d_loss"].item() + 0.5 * logs["d_words"].item()
                                        + 0.5 * 0.1 * logs["d_fake_words"].item(), rel=1e-5)
    family.zero_grad(set_to_none=True)
    loss.backward()  # the head learns from it; G gets nothing from D's loss
    assert head.net[0].weight.grad.abs().sum() > 0 and family.generator.to_rgb.weight.grad is None
    assert ganforge.families.get("text2image").Options().word_fake == 0


def test_pooled_body_batch_norms_each_judged_batch_and_feeds_the_shared_word_head(trained):
    recipes = ganforge.families.get("text2image")
    assert recipes.Options().d_body == "strided"  # runs saved before the option load with the strided body
    family = ganforge.load(trained).family
    family.options.text_words = 0.0  # D's loss without the default's text term (tested on its own)
    family.options.word_head, family.options.word_trunk, family.options.d_body = 1.0, "shared", "pooled"
    d = family.discriminator = Discriminator(len(family.vocabulary), 8, 8, "gru", 3, 16, 4, "spectral", True,
                                             "shared", "pooled")
    assert all(isinstance(b, PoolBlock) for b in d.blocks) and len(d.blocks) == 2  # 16 px -> 8 -> 4
    assert isinstance(d.words, torch.nn.Linear)  # the head reads the pooled body's features
    family.train()
    images = torch.rand(6, 3, 16, 16) * 2 - 1
    sentence = torch.randn(6, 8)
    # training mode: each judged batch is normalised by its own statistics, so an image's score depends on the
    # batch it is judged with (DCGAN's discriminator); the strided body judges each image alone
    assert not torch.allclose(d.score(images, sentence)[:3], d.score(images[:3], sentence[:3]), atol=1e-4)
    for body in ("strided", "pooled_instance"):  # these judge each image alone
        alone = Discriminator(len(family.vocabulary), 8, 8, "gru", 3, 16, 4, "none", True, body=body)
        assert torch.allclose(alone.score(images, sentence)[:3], alone.score(images[:3], sentence[:3]), atol=1e-5)
    assert isinstance(alone.blocks[0].norm, torch.nn.InstanceNorm2d)
    batch = type(family).load_data(family.config).batches(8, torch.device("cpu"), seed=1).next()
    loss, logs = family.loss("D", batch)
    assert loss.item() == pytest.approx(logs["d_loss"].item() + logs["d_words"].item(), rel=1e-5)
    family.zero_grad(set_to_none=True)
    word_loss(d.score_and_words(batch["image"], torch.zeros(8, 8))[1], batch["caption"]).backward()
    # the word loss trains the body's batch-normed convolutions
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in d.blocks[0].parameters())


def test_contrastive_loss_prefers_own_captions_and_trains_both_players(trained):
    captions = torch.tensor([[3, 4, 0], [3, 5, 0], [6, 4, 0]])
    sentences = torch.eye(3) * 5 + 0.1
    assert contrastive_loss(sentences, sentences, captions) < 0.01  # each image on its own caption
    assert contrastive_loss(sentences.roll(1, 0), sentences, captions) > 3  # each on another's
    # by hand: InfoNCE both ways over cosine / 0.1, averaged
    images, text = torch.randn(3, 4), torch.randn(3, 4)
    cos = F.normalize(images, dim=1) @ F.normalize(text, dim=1).T / 0.1
    by_hand = (-cos.diag() + cos.logsumexp(1)).mean() / 2 + (-cos.diag() + cos.logsumexp(0)).mean() / 2
    assert contrastive_loss(images, text, captions).item() == pytest.approx(by_hand.item(), rel=1e-5)
    # a row with the same caption text is no negative: rows 0 and 2 share a caption, so each leaves the other out
    same = torch.tensor([[3, 4, 0], [3, 5, 0], [3, 4, 0]])
    masked = cos.clone()
    masked[0, 2] = masked[2, 0] = float("-inf")
    by_hand = (-masked.diag() + masked.logsumexp(1)).mean() / 2 + (-masked.diag() + masked.logsumexp(0)).mean() / 2
    assert contrastive_loss(images, text, same).item() == pytest.approx(by_hand.item(), rel=1e-5)
    # in the family: off by default (no layer, old runs load); on, D's loss and G's loss both add it
    assert ganforge.families.get("text2image").Options().contrastive == 0
    family = ganforge.load(trained).family
    family.options.text_words = 0.0  # D's loss without the default's text term (tested on its own)
    d = family.discriminator
    assert d.embed_image is None
    family.options.contrastive, family.options.word_head, d.words = 0.5, 0.0, None
    d.embed_image = Discriminator(len(family.vocabulary), 8, 8, "gru", 3, 16, 4, "spectral", embed=True).embed_image
    family.train()
    batch = type(family).load_data(family.config).batches(8, torch.device("cpu"), seed=1).next()
    loss, logs = family.loss("D", batch)
    sentence = d.encode(batch["caption"])
    expected = contrastive_loss(d.judge(batch["image"], sentence, embed=True)[2], sentence, batch["caption"])
    assert logs["d_contrast"].item() == pytest.approx(expected.item(), rel=1e-3)
    assert loss.item() == pytest.approx(logs["d_loss"].item() + 0.5 * logs["d_contrast"].item(), rel=1e-5)
    family.zero_grad(set_to_none=True)
    expected.backward()  # D's encoder and image embedding learn from it
    assert d.text.embed.weight.grad.abs().sum() > 0 and all(p.grad.abs().sum() > 0 for p in d.embed_image.parameters())
    torch.manual_seed(7)
    loss, logs = family.loss("G", batch)
    torch.manual_seed(7)
    fake = family.generate(family.generator, family.generator_inputs(batch))
    expected = contrastive_loss(d.judge(fake, sentence, embed=True)[2], sentence, batch["caption"])
    assert logs["g_contrast"].item() == pytest.approx(expected.item(), rel=1e-3)
    assert loss.item() == pytest.approx(logs["g_loss"].item() + 0.5 * logs["g_contrast"].item(), rel=1e-5)
    family.zero_grad(set_to_none=True)
    loss.backward()  # G is pushed towards images that match their own captions
    assert family.generator.to_rgb.weight.grad.abs().sum() > 0


def test_word_projection_lets_the_matching_score_read_the_word_heads_trunk(trained, tmp_path):
    family = ganforge.load(trained).family
    assert family.options.word_trunk == "own" and not family.options.word_projection  # off by default
    d = family.discriminator
    assert d.project_words is None
    family.options.word_projection = True
    with_words = Discriminator(len(family.vocabulary), 8, 8, "gru", 3, 16, 4, "spectral", True, "own",
                               word_projection=True)
    d.project_words = with_words.project_words
    torch.nn.init.normal_(d.project_words.parametrizations.weight.original)
    images, sentence = torch.rand(5, 3, 16, 16) * 2 - 1, torch.randn(5, 8)
    family.eval()
    both = d.score(images, sentence)
    # the score is the strided body's matching score plus <the head's 128 features, a map of the sentence>
    features = d.words.features(images)
    projected = (features * d.project_words(sentence)).sum(1)
    d.project_words = None
    assert torch.allclose(both, d.score(images, sentence) + projected, atol=1e-5)
    d.project_words = with_words.project_words
    # D's step: the head's trunk learns from the matching loss, and reads G's images in eval mode (real images'
    # statistics), so only real images (own and wrong captions) move its running statistics
    family.train()
    batch = type(family).load_data(family.config).batches(8, torch.device("cpu"), seed=1).next()
    tracked = d.words.net[1].num_batches_tracked.item()
    family.zero_grad(set_to_none=True)
    loss, logs = family.loss("D", batch)
    assert d.words.net[1].num_batches_tracked.item() == tracked + 2
    loss.backward()  # the matching loss trains the second projection (and through it the trunk)
    assert all(p.grad.abs().sum() > 0 for p in d.project_words.parameters())
    family.zero_grad(set_to_none=True)
    family.loss("G", batch)[0].backward()
    assert family.generator.to_rgb.weight.grad.abs().sum() > 0 and d.words.training
    with pytest.raises(GanforgeError, match="word_projection: .* needs word_head > 0 and word_trunk=own"):
        ganforge.train(quiet=True, **tiny_run(tmp_path, **{"model.options": {
            "embed_dim": 8, "text_dim": 8, "word_projection": True, "word_trunk": "shared"}}))


def test_text_words_keeps_every_word_of_the_caption_in_ds_sentence_vector(trained):
    family = ganforge.load(trained).family
    d = family.discriminator
    assert family.options.text_words == 1 and d.text_words is not None  # the tiny run trains the default
    recipes = ganforge.families.get("text2image")
    assert recipes.Options().text_words == 0  # an option absent from a saved run is off: old runs load as they were
    assert recipes.recipe("default")["model"]["options"]["text_words"] > 0  # the default since session 7
    assert "text_words" not in recipes.recipe("word-head")["model"]["options"]  # the recipe before it
    assert "text_words" not in recipes.recipe("paper")["model"]["options"]
    family.options.text_words = 0.5
    family.train()
    batch = type(family).load_data(family.config).batches(8, torch.device("cpu"), seed=1).next()
    family.zero_grad(set_to_none=True)
    loss, logs = family.loss("D", batch)
    expected = word_loss(d.text_words(d.encode(batch["caption"])), batch["caption"])
    assert logs["d_text_words"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert loss.item() == pytest.approx(logs["d_loss"].item() + family.options.word_head * logs["d_words"].item()
                                        + 0.5 * expected.item(), rel=1e-4)
    family.zero_grad(set_to_none=True)
    expected.backward()  # it trains D's caption encoder (which G reads captions with), every caption word's vector
    words = batch["caption"].unique()
    grads = d.text.embed.weight.grad[words[words > 1]].abs().sum(1)
    assert (grads > 0).all()
    # and learns: after a few steps the words read back from the sentence vectors are the captions' own
    optimiser = torch.optim.Adam(list(d.text.parameters()) + list(d.text_words.parameters()), 1e-2)
    for _ in range(30):
        step = word_loss(d.text_words(d.encode(batch["caption"])), batch["caption"])
        optimiser.zero_grad()
        step.backward()
        optimiser.step()
    assert step.item() < 0.7 * expected.item()


def test_generator_reads_captions_with_the_discriminators_encoder(tmp_path):
    run = ganforge.train(quiet=True, **tiny_run(tmp_path, **{"train.ema": 0}))
    earlier, family = ganforge.load(run, "step_000002").family, ganforge.load(run).family
    for f in (earlier, family):  # copied after every D step ...
        g_text, d_text = f.generator.text.state_dict(), f.discriminator.text.state_dict()
        assert all(torch.equal(g_text[k], d_text[k]) for k in g_text)
    moved = earlier.discriminator.text.state_dict()
    assert not all(torch.equal(moved[k], d_text[k]) for k in d_text)  # ... from an encoder that D's loss trains
    family.train()
    batch = type(family).load_data(family.config).batches(8, torch.device("cpu"), seed=1).next()
    for shared in (True, False):
        family.options.g_text = "shared" if shared else "own"
        family.generator.copied_text = shared
        family.zero_grad(set_to_none=True)
        loss, _ = family.loss("G", batch)
        loss.backward()
        grads = [p.grad for p in family.generator.text.parameters()]
        assert all(g is None for g in grads) if shared else any(g is not None and g.abs().sum() > 0 for g in grads)
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in family.generator.start.parameters())
    assert ganforge.families.get("text2image").recipe("paper")["model"]["options"] == {  # the networks before
        "magp_weight": 2.0, "g_text": "own", "projection": False, "caption_start": False}
    # a run saved before these options existed stores none of them: the option defaults are the networks it had
    defaults = ganforge.families.get("text2image").Options()
    assert (defaults.g_text, defaults.projection, defaults.caption_start) == ("own", False, False)
    assert {"g_text": "shared", "projection": True, "caption_start": True}.items() <= \
        ganforge.families.get("text2image").recipe("default")["model"]["options"].items()


@pytest.mark.cpu_only
def test_resume_is_bit_exact(tmp_path):
    options = {"model.options": {"embed_dim": 8, "text_dim": 8, "hard_wrong": 0.5,  # its draws resume too
                                 "word_head": 1.0, "word_trunk": "own"}}  # and the trunk's batch statistics
    straight = ganforge.train(quiet=True, **tiny_run(tmp_path / "a", **options))
    ganforge.train(quiet=True, **tiny_run(tmp_path / "b", **{"train.steps": 2}, **options))
    resumed = ganforge.train(resume=tmp_path / "b" / "run", quiet=True, **{"train.steps": 4})
    (a, meta_a), (b, meta_b) = (ckpt.load(r / "checkpoints" / "last.safetensors") for r in (straight, resumed))
    assert meta_a["step"] == meta_b["step"] == 4 and meta_a["info"]["facts"] == meta_b["info"]["facts"]
    assert meta_a["info"]["facts"]["held_out"] == [f"{c} {s}" for c, s in HELD_OUT]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_sample_caption_command(trained, tmp_path, monkeypatch, capsys):
    from ganforge.cli import main

    model = ganforge.load(trained)
    assert model.family.capabilities.captioned

    def run(*args):
        monkeypatch.setattr(sys, "argv", ["ganforge", "sample", str(trained), *args])
        with pytest.raises(SystemExit) as stopped:
            main()
        return stopped.value.code or 0

    out = tmp_path / "grid.npz"
    assert run("--caption", "a green triangle above a red circle", "--n", "4", "--out", str(out)) == 0
    inputs = model.family.caption_inputs(model.sample_inputs(4, 0), ["a green triangle above a red circle"])
    assert model.family.captions_of(inputs) == ["a green triangle above a red circle"] * 4
    expected = media.from_uint8(media.to_uint8(model.generate(inputs).tensor))
    assert torch.equal(media.read(out).tensor, expected)
    other = model.generate(model.family.caption_inputs(model.sample_inputs(4, 0), ["a white cross"])).tensor
    assert not torch.equal(other, model.generate(inputs).tensor)  # the caption changes the images
    # unknown words: a warning; no known word: one line, exit 2; interpolation: one noise, caption moving
    assert run("--caption", "a red zorb", "--n", "2", "--out", str(tmp_path / "z.png")) == 0
    assert "<unk>: zorb" in capsys.readouterr().err
    assert run("--caption", "zorb blip", "--n", "2", "--out", str(tmp_path / "z.png")) == 2
    assert "no word of it is in this model's vocabulary" in capsys.readouterr().err
    walk = model.family.caption_inputs(model.sample_inputs(5, 0), ["a red circle"], towards="a blue square")
    assert torch.equal(walk["noise"][0], walk["noise"][4]) and walk["caption_mix"].tolist() == [0, .25, .5, .75, 1]
    images = model.generate(walk).tensor
    start = model.generate(model.family.caption_inputs({"noise": walk["noise"][:1]}, ["a red circle"])).tensor[0]
    end = model.generate(model.family.caption_inputs({"noise": walk["noise"][:1]}, ["a blue square"])).tensor[0]
    assert torch.allclose(images[0], start, atol=1e-5) and torch.allclose(images[4], end, atol=1e-5)
    assert run("--caption", "a red circle", "--caption-to", "a blue square", "--n", "5",
               "--out", str(tmp_path / "walk.png")) == 0


def test_ui_offers_a_caption_box_and_samples_from_it(trained):
    from ganforge.ui import actions

    models, root, name = actions.Models(), trained.parent, trained.name
    assert actions.offer(models, root, name).captioned
    shown = actions.sample(models, root, name, 3, 1, None, None, "a white cross below a red square")
    model = ganforge.load(trained)
    expected = model.generate(model.family.caption_inputs(model.sample_inputs(3, 1), ["a white cross below a red "
                                                                                      "square"]))
    assert torch.equal(shown.tensor, expected.tensor)


def test_shipped_instruments_read_real_renders_and_reject_wrong_captions():
    from ganforge.metrics.captions import (attribute_accuracy, evaluation_captions, load_classifier, load_matcher,
                                           r_precision, read_scenes)
    from ganforge.data.shapes import render_scenes

    classifier, matcher = load_classifier(), load_matcher()
    scenes, captions = evaluation_captions(120, "held-out", seed=9)
    images = media.from_uint8(render_scenes(scenes, 32, seed=10))
    predicted = read_scenes(classifier, images)
    right = attribute_accuracy(predicted, scenes)
    wrong = attribute_accuracy(predicted, scenes[1:] + scenes[:1])
    assert min(right["colour"], right["shape"], right["position"]) > 0.95  # unseen pairs included: they measure
    assert max(wrong["colour"], wrong["shape"], wrong["position"]) < 0.6
    assert r_precision(matcher, images, captions, candidates=20) > 0.9
    assert r_precision(matcher, images.flip(0), captions, candidates=20) < 0.3
