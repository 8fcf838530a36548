"""Issue 13, evaluate and tune: positional folders and .npz sets, one-line errors, honest score names, progress,
tune's --out/--name, training-ready best.yaml, missing optuna."""
import json
import sys
from collections import OrderedDict
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.commands.tune import tune_folder
from ganforge.errors import GanforgeError
from ganforge.metrics import stats as stats_module
from ganforge.commands.evaluate import evaluate_command
from ganforge.metrics.extractors import DomainClassifier, classifier_config, extraction_progress, load_extractor
from ganforge.metrics.record import EvalRecord


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """A cache of statistics of this test's own, on disk and in memory."""
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(stats_module, "_memory", OrderedDict())


def tiny_extractor():
    """A 16-feature grey extractor, so 30 images are more than its feature dimension."""
    torch.manual_seed(0)
    config = classifier_config("tiny", ["a", "b"], 1, resolution=16)
    config["widths"], config["feature_dim"] = [8, 8, 8], 16
    model = DomainClassifier(config).eval()
    model.weights_hash = "test"
    return model


def uint8_images(n, size=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 1), dtype=np.uint8)


def write_png_folder(folder: Path, pixels: np.ndarray) -> Path:
    folder.mkdir(parents=True)
    for i, picture in enumerate(pixels):
        Image.fromarray(picture[..., 0]).save(folder / f"{i:03d}.png")
    return folder


def args(**overrides):
    """evaluate_command's parameters as typer would pass them."""
    values = dict(targets=None, metrics="fid", n=10000, extractor=None, real=None, fake=None, json_path=None,
                  out=None, epochs=1, seed=0, batch_size=16)
    values.update(overrides)
    return values


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setattr("ganforge.metrics.evaluate.load_extractor", lambda name, device=None: tiny_extractor())


def test_positional_sets_and_npz_score_like_the_same_pngs(tmp_path, tiny):
    real, fake = uint8_images(30, seed=1), uint8_images(30, seed=2)
    write_png_folder(tmp_path / "real", real)
    write_png_folder(tmp_path / "fake", fake)
    np.savez_compressed(tmp_path / "fake.npz", images=fake, labels=np.arange(30) % 2)  # as ganforge sample writes
    np.savez_compressed(tmp_path / "real.npz", images=real)
    scores = []
    for i, (a, b) in enumerate([("real", "fake"), ("real", "fake.npz"), ("real.npz", "fake")]):
        report = tmp_path / f"{i}.json"
        evaluate_command(**args(targets=[str(tmp_path / a), str(tmp_path / b)], json_path=report))
        written = json.loads(report.read_text())
        assert written["record"]["n_real"] == written["record"]["n_fake"] == 30
        scores.append(written["scores"]["fid"])
    assert scores[0] > 0 and scores[0] == pytest.approx(scores[1], rel=1e-9) == pytest.approx(scores[2], rel=1e-9)
    assert "fake npz:uint8" in written["record"]["image_format"] or "real npz:uint8" in written["record"]["image_format"]
    with pytest.raises(GanforgeError, match="no RUN"):  # positional sets and --real/--fake do not mix
        evaluate_command(**args(targets=[str(tmp_path / "real")], real=tmp_path / "real", fake=tmp_path / "fake"))


def test_npz_at_another_size_is_resized_and_bad_arrays_are_one_line(tmp_path, tiny):
    write_png_folder(tmp_path / "real", uint8_images(30, seed=1))
    np.savez(tmp_path / "big.npz", images=uint8_images(30, size=24, seed=3))
    report = tmp_path / "s.json"
    evaluate_command(**args(targets=[str(tmp_path / "real"), str(tmp_path / "big.npz")], json_path=report))
    assert "npz:uint8->bicubic-antialias@16" in json.loads(report.read_text())["record"]["image_format"]
    np.savez(tmp_path / "keys.npz", x=uint8_images(4))
    np.savez(tmp_path / "nan.npz", images=np.full((4, 16, 16, 1), np.nan, dtype=np.float32))
    np.savez(tmp_path / "flat.npz", images=np.zeros((4, 256), dtype=np.uint8))
    (tmp_path / "junk.npz").write_bytes(b"not an array")
    for name, needle in (("keys", "no 'images' array"), ("nan", "1024 non-finite"), ("flat", "shaped"),
                         ("junk", "cannot read")):
        with pytest.raises(GanforgeError, match=needle) as caught:
            evaluate_command(**args(targets=[str(tmp_path / "real"), str(tmp_path / f"{name}.npz")]))
        assert "\n" not in str(caught.value)


def test_warns_on_one_line_when_images_are_fewer_than_feature_dimensions(tmp_path, capsys, tiny):
    write_png_folder(tmp_path / "real", uint8_images(30, seed=1))
    write_png_folder(tmp_path / "few", uint8_images(12, seed=2))
    evaluate_command(**args(targets=[str(tmp_path / "real"), str(tmp_path / "few")]))
    warning = capsys.readouterr().err.strip().splitlines()
    assert len(warning) == 1 and warning[0].startswith("warning: 12 images for 16-dim") and "singular" in warning[0]
    write_png_folder(tmp_path / "enough", uint8_images(30, seed=2))
    evaluate_command(**args(targets=[str(tmp_path / "real"), str(tmp_path / "enough")]))
    assert capsys.readouterr().err == ""  # 30 > 16: no warning, and no progress bar off a terminal


@pytest.mark.parametrize("n", [0, -5])
def test_n_below_one_is_a_one_line_error(tmp_path, n):
    with pytest.raises(GanforgeError, match=f"--n must be at least 1, got {n}"):
        evaluate_command(**args(targets=[str(tmp_path / "a"), str(tmp_path / "b")], n=n))


def test_unwritable_json_fails_before_any_work(tmp_path):
    (tmp_path / "file").write_text("x")
    missing = [str(tmp_path / "no-real"), str(tmp_path / "no-fake")]  # would fail later: the --json check is first
    for path, needle in ((tmp_path / "file" / "s.json", "not a folder"),
                         (tmp_path / "file" / "deeper" / "s.json", "not a folder"), (tmp_path, "is a folder")):
        with pytest.raises(GanforgeError, match=needle) as caught:
            evaluate_command(**args(targets=missing, json_path=path))
        assert str(caught.value).startswith("--json") and "\n" not in str(caught.value)


def test_scores_are_named_by_their_extractor(tmp_path, capsys, tiny):
    fields = dict(extractor_hash="h", resize_filter="r", n_real=1, n_fake=1, reference="x", reference_split="",
                  image_format="", seed=0)
    inception, digits = EvalRecord(extractor="inception", **fields), EvalRecord(extractor="digits", **fields)
    assert [inception.score_name(k) for k in ("fid", "kid", "is", "precision")] == ["FID", "KID", "IS", "precision"]
    assert [digits.score_name(k) for k in ("fid", "kid", "is")] == [
        "FD (digits extractor)", "KD (digits extractor)", "IS (digits classifier)"]
    write_png_folder(tmp_path / "real", uint8_images(30, seed=1))
    write_png_folder(tmp_path / "fake", uint8_images(30, seed=2))
    report = tmp_path / "s.json"
    evaluate_command(**args(targets=[str(tmp_path / "real"), str(tmp_path / "fake")], metrics="fid,kid",
                            json_path=report))
    table = capsys.readouterr().out
    assert "FD (tiny extractor)" in table and "KD (tiny extractor)" in table and "│ fid" not in table
    written = json.loads(report.read_text())
    assert {"fid", "kid", "kid_std"} <= set(written["scores"])  # the keys stay for existing readers
    assert written["names"]["fid"] == "FD (tiny extractor)"


def test_feature_extraction_reports_progress(tmp_path, capsys, monkeypatch, tiny):
    calls = []
    with extraction_progress(lambda done, total: calls.append((done, total))):
        tiny_extractor().extract(torch.zeros(40, 1, 16, 16), batch_size=16)
    assert calls == [(16, 40), (32, 40), (40, 40)]
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich then treats stderr as a terminal
    write_png_folder(tmp_path / "real", uint8_images(30, seed=1))
    write_png_folder(tmp_path / "fake", uint8_images(30, seed=2))
    evaluate_command(**args(targets=[str(tmp_path / "real"), str(tmp_path / "fake")]))
    assert "tiny features" in capsys.readouterr().err


def test_loading_an_extractor_leaves_the_training_rng_alone():
    """Mid-training evaluation built the extractor from the global RNG, so evaluating changed the run."""
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    load_extractor("digits")
    assert torch.equal(torch.rand(3), expected)


def test_tune_folder_is_out_then_name_like_train(tmp_path):
    assert tune_folder(None, None, "space") == Path("runs") / "tune-space"
    assert tune_folder(tmp_path, None, "space") == tmp_path / "tune-space"
    assert tune_folder(tmp_path, "lr", "space") == tmp_path / "lr"
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "study.db").write_text("")  # a tune folder made when --out was the folder itself
    assert tune_folder(tmp_path / "old", None, "space") == tmp_path / "old"
    for name in ("../x", "a/b", "..", ""):
        with pytest.raises(GanforgeError, match="--name"):
            tune_folder(tmp_path, name, "space")


def test_missing_optuna_is_one_line(monkeypatch, tmp_path):
    from ganforge import tune as tuning

    monkeypatch.setitem(sys.modules, "optuna", None)  # what an install without the tune extra looks like
    for call in (lambda: tuning.tune({"train.lr_g": [1e-4]}, {}, out=tmp_path / "t"),
                 lambda: tuning.make_sampler("tpe", [], 2, 0, False)):
        with pytest.raises(GanforgeError) as caught:
            call()
        assert str(caught.value) == "tune needs optuna: pip install 'ganforge[tune]'"
    assert not (tmp_path / "t").exists()


def test_missing_plot_packages_skip_the_plots(monkeypatch, tmp_path):
    from ganforge.tune import save_plots

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    said = []
    assert save_plots(None, tmp_path / "plots", "fid", None, said.append) == []
    assert said == ["plots skipped: matplotlib is not installed (pip install 'ganforge[tune]')"]


def test_trial_progress_bar_per_trial_and_a_line_when_it_ends(monkeypatch, capsys):
    from ganforge.tune import TrialProgress

    trainer = SimpleNamespace(run_dir=Path("runs/t/trial_0003"), step=2, last_eval={"step": 2, "fid": 12.5},
                              config=SimpleNamespace(train=SimpleNamespace(steps=4)))
    trial = SimpleNamespace(number=3, state=SimpleNamespace(name="COMPLETE"), values=[9.25], params={"x": 1},
                            user_attrs={})
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    with TrialProgress(5, 1, "fid", None, quiet=False) as live:
        live.on_step(trainer)
        task = live.progress.tasks[0]
        assert (task.description, task.completed, task.total, task.fields["score"]) == (
            "trial 0003", 2, 4, "fid 12.5 at step 2")
        live.on_trial_end(trial)
        assert live.progress.tasks == []
    assert "[2/5] trial 3 complete: fid 9.25 [x=1]" in capsys.readouterr().out
    monkeypatch.setenv("TTY_COMPATIBLE", "0")
    with TrialProgress(5, 2, "fid", None, quiet=False) as plain:
        plain.on_step(trainer)
        plain.on_trial_end(trial)
    assert capsys.readouterr().out == "[3/5] trial 3 complete: fid 9.25 [x=1]\n"
    with TrialProgress(5, 2, "fid", None, quiet=True) as quiet:
        quiet.on_trial_end(trial)
    assert capsys.readouterr().out == ""


def test_tune_prints_its_folder_and_trials_and_writes_a_training_ready_best_yaml(tmp_path, capsys):
    pytest.importorskip("optuna")  # the 'tune' extra
    from ganforge.api import resolve_config
    from ganforge.tune import tune

    base = {"data.source": "digits", "data.resolution": 8, "model.width": 8, "model.latent_dim": 16,
            "train.batch_size": 16, "train.steps": 4, "train.eval_every": 1, "train.eval_n": 64,
            "train.log_every": 4, "train.sample_every": 100, "train.checkpoint_every": 100, "train.device": "cpu"}
    result = tune({"train.lr_g": [1e-4, 2e-4]}, base, trials=2, sampler="grid", out=tmp_path / "t", pruner="none",
                  plots=False)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"tune folder {tmp_path / 't'}: study 'ganforge'")
    assert [line.split(" complete")[0] for line in lines[1:3]] == ["[1/2] trial 0", "[2/2] trial 1"]
    text = result.best_config.read_text()
    assert "eval_every is the trial's steps (4; the search evaluated every 1 for pruning)" in text
    best = resolve_config(result.best_config)
    assert best.train.eval_every == 4 and best.train.eval_n == 64
