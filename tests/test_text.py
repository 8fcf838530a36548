"""Text generation: tokeniser and vocabulary, SeqGAN's batched rollouts and rewards, one MLE and one policy-gradient
step doing what they should, the Gumbel-softmax relaxation, sampling text without the corpus, and bit-exact resume in
every stage (MLE pretraining, D pretraining, adversarial)."""

import csv
import json
import sys

import pytest
import torch

import ganforge
from ganforge.api import resolve_config
from ganforge.config import apply_overrides
from ganforge.data.text import EOS, PAD, SPECIALS, Tokenizer, Vocabulary, load_oracle, load_text
from ganforge.families import get
from ganforge.media.tokens import lines
from ganforge.nn.text import finish, oracle, rollouts

SENTENCES = ["A man rides a bike down the street.", "Two dogs play in the park!", "A cat sleeps on a red sofa.",
             "The man's dog runs, then sleeps.", "A red bus parked near the park.", "Dogs and cats sleep."] * 6


def corpus(tmp_path):
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(SENTENCES) + "\n\n", encoding="utf-8")
    return path


def text_config(tmp_path, name="seqgan", source=None, **extra):
    options = {"embedding_dim": 8, "d_embedding": 8, "d_scale": 0.05, "mle_steps": 2, "d_steps": 2, "d_repeat": 2,
               "max_length": 10}
    if name == "seqgan":
        options["rollouts"] = 2
    overrides = {"model.name": name, "data.source": str(source or corpus(tmp_path)), "model.width": 8,
                 "train.batch_size": 4, "train.steps": 6, "train.log_every": 1, "train.sample_every": 3,
                 "train.checkpoint_every": 1, "train.ema": 0.0, "out": str(tmp_path), "name": "run"}
    config = resolve_config(overrides=overrides)
    return apply_overrides(config, {"model": {"options": options}, **extra})


def family_for(tmp_path, name="seqgan"):
    config = text_config(tmp_path, name)
    data = get(name).load_data(config)
    from ganforge.training.trainer import data_info

    return get(name)(config, data_info(config, data)), data


def test_tokeniser_round_trip():
    words = Tokenizer()
    tokens = words.split("  The man's Bike, parked.  ")
    assert tokens == ["the", "man's", "bike", ",", "parked", "."]
    assert words.split(words.join(tokens)) == tokens  # written samples read back as the same tokens
    chars = Tokenizer("char", lowercase=False)
    assert chars.join(chars.split("Hi, you!")) == "Hi, you!"


def test_vocabulary_cap_unknown_and_round_trip():
    sentences = [Tokenizer().split(s) for s in SENTENCES]
    vocabulary = Vocabulary.build(sentences, 10)
    assert vocabulary.tokens[:4] == list(SPECIALS) and len(vocabulary) == 10
    assert vocabulary.tokens[4:7] == [".", "a", "the"]  # most frequent first, ties alphabetically
    ids, cut = vocabulary.encode(sentences[:2], 12)
    assert cut == 0 and ids.shape == (2, 12)
    assert int(ids[0, len(sentences[0])]) == EOS and int(ids[0, -1]) == PAD
    assert (ids == 3).any()  # words past the cap are <unk>
    full = Vocabulary.build(sentences, 100)
    ids, _ = full.encode(sentences, 12)
    assert [full.decode(row) for row in ids] == sentences
    short, cut = full.encode(sentences[:1], 4)
    assert cut == 1 and full.decode(short[0]) == sentences[0][:4]


def test_oracle_is_reproducible_from_its_seed():
    a, b = load_oracle(3, 50, 6, 8, 40), load_oracle(3, 50, 6, 8, 40)
    assert torch.equal(a.tokens, b.tokens) and a.tokens.shape == (40, 6)
    assert not torch.equal(a.tokens, load_oracle(4, 50, 6, 8, 40).tokens)
    model = oracle(3, 50, 6, 8)
    own = model.nll(a.tokens)
    uniform = model.nll(torch.randint(0, 50, (40, 6), generator=torch.Generator().manual_seed(0)))
    assert own < uniform  # the oracle's own samples are likelier than random sequences


def test_rollouts_keep_prefixes_and_rewards_of_finished_sequences_are_the_d_score(tmp_path):
    torch.manual_seed(0)
    family, data = family_for(tmp_path)
    tokens = data.tokens[:3]
    completed = rollouts(family.generator, tokens, 4)
    length = tokens.shape[1]
    assert completed.shape == (length - 1, 4, 3, length)
    for t in range(1, length):
        assert torch.equal(completed[t - 1, :, :, :t], tokens[None, :, :t].expand(4, -1, -1))
    assert torch.equal(completed, finish(completed.reshape(-1, length), EOS, PAD).reshape(completed.shape))
    family.rollout.load_state_dict(family.generator.state_dict())
    reward = family.rewards(tokens)
    assert reward.shape == tokens.shape and ((reward >= 0) & (reward <= 1)).all()
    family.discriminator.eval()
    with torch.no_grad():
        score = torch.sigmoid(family.discriminator(tokens))
    for row in range(3):
        end = int((tokens[row] == EOS).nonzero()[0])  # every prefix through <eos> is a finished sequence
        assert torch.allclose(reward[row, end:], score[row].expand(length - end), atol=1e-6)


def test_one_mle_step_lowers_the_nll(tmp_path):
    torch.manual_seed(0)
    family, data = family_for(tmp_path)
    batch = {"tokens": data.tokens[:8]}
    optimizer = torch.optim.Adam(family.generator.parameters(), lr=0.01)
    before, _ = family.loss("G_mle", batch)
    before.backward()
    optimizer.step()
    after, _ = family.loss("G_mle", batch)
    assert after < before


class CountingCritic(torch.nn.Module):
    """A fixed toy discriminator: sequences are the more real the more of their tokens are `token`."""

    def __init__(self, token):
        super().__init__()
        self.token = token

    def forward(self, tokens):
        return 8 * ((tokens == self.token).float().mean(1) - 0.25)


def test_one_policy_gradient_step_raises_the_reward(tmp_path):
    torch.manual_seed(0)
    family, data = family_for(tmp_path)
    family.options.pg_batch, family.options.rollouts = 64, 4
    favourite = 6
    family.discriminator = CountingCritic(favourite)
    probe = data.tokens[:16]

    def share():  # the generator's mean probability of the rewarded token, over real prefixes
        with torch.no_grad():
            return float(family.generator(probe).softmax(-1)[..., favourite].mean())

    before = share()
    optimizer = torch.optim.Adam(family.generator.parameters(), lr=0.02)
    loss, logs = family.loss("G", {"tokens": probe})
    loss.backward()
    optimizer.step()
    assert share() > before
    assert 0 < float(logs["reward"]) < 1


def test_gumbel_relaxation_is_a_distribution_with_gradients(tmp_path):
    from ganforge.families.gumbelgan import relaxed_sample

    torch.manual_seed(0)
    family, _ = family_for(tmp_path, "gumbelgan")
    soft = relaxed_sample(family.generator, 40, 10.0, torch.device("cpu"))
    assert soft.shape == (40, family.length, len(family.vocabulary))
    assert torch.allclose(soft.sum(-1), torch.ones(40, family.length), atol=1e-5)
    hard = soft.argmax(-1)
    after = finish(hard, EOS, -1) == -1  # positions after each sequence's first <eos>
    assert after.any() and (soft[after][:, PAD] == 1).all()  # exactly one-hot padding there
    assert (soft[~after][:, PAD] == 0).all()  # never padding before the end
    soft.mul(torch.arange(soft.shape[-1]).float()).sum().backward()
    assert family.generator.output.weight.grad.abs().sum() > 0


def trained_state(run):
    from ganforge.training import checkpoint as ckpt

    tensors, meta = ckpt.load(run / "checkpoints" / "last.safetensors")
    return {k: v for k, v in tensors.items() if k.startswith(("family.", "optim.", "rng."))}, meta


@pytest.mark.cpu_only
@pytest.mark.parametrize("name", ["seqgan", "gumbelgan"])
def test_resume_is_bit_exact_in_every_stage(name, tmp_path):
    """Steps 0-1 MLE, 2-3 D pretraining (seqgan), then adversarial; stopping inside each stage and resuming gives
    the same weights, optimiser states and RNG as one uninterrupted run."""
    whole = ganforge.train(text_config(tmp_path / "a", name), quiet=True)
    first = text_config(tmp_path / "b", name)
    first.train.steps = 1
    run = ganforge.train(first, quiet=True)
    for stop in (3, 5, 6):
        run = ganforge.train(resume=run, quiet=True, **{"train.steps": stop})
    expected, meta_a = trained_state(whole)
    got, meta_b = trained_state(run)
    assert meta_a["step"] == meta_b["step"] == 6 and expected.keys() == got.keys()
    assert all(torch.equal(expected[k], got[k]) for k in expected), [k for k in expected if not torch.equal(expected[k], got[k])]
    rows = list(csv.DictReader((whole / "metrics.csv").open()))
    assert {"nll", "d_loss", "g_loss"} <= set(rows[0])  # every stage ran
    if name == "seqgan":  # D's logs are means over its d_repeat steps, not sums
        assert all(0 <= float(row["d_accuracy"]) <= 1 for row in rows if row["d_accuracy"])


def test_sample_text_without_the_corpus(tmp_path, monkeypatch, capsys):
    from ganforge.cli import main

    source = corpus(tmp_path)
    run = ganforge.train(text_config(tmp_path, source=source), quiet=True)
    assert (run / "samples" / "step_000006.txt").exists()
    monkeypatch.setattr(sys, "argv", ["ganforge", "evaluate", str(run), "--references", str(source), "--n", "20",
                                      "--json", str(tmp_path / "scores.json")])
    with pytest.raises(SystemExit) as stopped:
        main()
    assert (stopped.value.code or 0) == 0, capsys.readouterr().err
    scores = json.loads((tmp_path / "scores.json").read_text())["scores"]
    assert {"bleu2", "bleu5", "self_bleu4", "nll_test", "unique", "copied"} <= set(scores)
    assert 0 <= scores["bleu5"] <= scores["bleu2"] <= 1 and scores["nll_test"] > 0
    source.unlink()  # the checkpoint holds the vocabulary
    model = ganforge.load(run)
    assert model.family.vocabulary == ganforge.load(run, "step_000005").family.vocabulary
    known = set(model.family.vocabulary)
    outputs = {}
    for label, flags in (("a", []), ("b", []), ("cold", ["--temperature", "0.2"]), ("seed", ["--seed", "4"])):
        out = tmp_path / f"{label}.txt"
        monkeypatch.setattr(sys, "argv", ["ganforge", "sample", str(run), "--n", "30", "--out", str(out), *flags])
        with pytest.raises(SystemExit) as stopped:
            main()
        assert (stopped.value.code or 0) == 0, capsys.readouterr().err
        outputs[label] = out.read_text(encoding="utf-8").splitlines()
        assert len(outputs[label]) == 30
        assert all(set(line.split()) <= known - {"<pad>", "<bos>", "<eos>"} for line in outputs[label])
    assert outputs["a"] == outputs["b"] and outputs["a"] != outputs["seed"] and outputs["a"] != outputs["cold"]
    samples = model.sample(30)
    assert lines(samples) == outputs["a"]
    monkeypatch.setattr(sys, "argv", ["ganforge", "sample", str(run), "--temperature", "0", "--out",
                                      str(tmp_path / "x.txt")])
    with pytest.raises(SystemExit) as stopped:
        main()
    assert stopped.value.code == 2 and "--temperature" in capsys.readouterr().err


def test_text_data_errors_are_one_line(tmp_path):
    from ganforge.errors import GanforgeError

    with pytest.raises(GanforgeError, match="no such text file"):
        load_text(str(tmp_path / "missing.txt"), Tokenizer(), 100, 8)
    (tmp_path / "empty").mkdir()
    with pytest.raises(GanforgeError, match="no .txt files"):
        load_text(str(tmp_path / "empty"), Tokenizer(), 100, 8)
    with pytest.raises(GanforgeError, match="--data digits: no such text file"):
        ganforge.train(quiet=True, **{"model.name": "seqgan", "data.source": "digits", "out": str(tmp_path)})


def test_a_gan_starts_from_a_pretrained_mle_run(tmp_path):
    """`--opt pretrained=RUN --opt mle_steps=0`: the generator starts as the MLE run's (D pretraining leaves it)."""
    mle = text_config(tmp_path / "mle")
    mle.train.steps = 2
    source = ganforge.train(mle, quiet=True)
    gan = text_config(tmp_path / "gan")
    gan.train.steps = 1
    gan.model.options |= {"pretrained": str(source), "mle_steps": 0, "d_steps": 1}
    run = ganforge.train(gan, quiet=True)
    trained, started = ganforge.load(source).generator.state_dict(), ganforge.load(run).generator.state_dict()
    assert all(torch.equal(trained[k], started[k]) for k in trained)


def test_temperature_on_a_model_without_one_is_one_line(tmp_path, monkeypatch, capsys):
    from conftest import tiny_overrides

    from ganforge.cli import main

    run = ganforge.train(quiet=True, **tiny_overrides(tmp_path, **{"train.steps": 1}))
    monkeypatch.setattr(sys, "argv", ["ganforge", "sample", str(run), "--temperature", "0.5", "--out",
                                      str(tmp_path / "x.png")])
    with pytest.raises(SystemExit) as stopped:
        main()
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and "no sampling temperature" in err and len(err.strip().splitlines()) == 1
