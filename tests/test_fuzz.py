"""Fuzzing bad input: corrupt files, bad configs, damaged checkpoints and bad flags, each given to the real CLI entry
point in this process. Every case must end with a one-line `error: ...` on stderr and exit code 2: no traceback,
no exit 0, nothing written where it should not be. The cases are generated (seeded), and counted in the report."""

from __future__ import annotations

import json
import random
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from ganforge import cli

TINY = ["--resolution", "16", "--width", "8", "--latent-dim", "16", "--batch-size", "8", "--quiet"]


def run_cli(args: list, capsys, monkeypatch) -> tuple[int, str]:
    """(exit code, stderr) of `ganforge ARGS` run in this process through the real entry point."""
    monkeypatch.setattr(sys, "argv", ["ganforge", *map(str, args)])
    capsys.readouterr()
    code = 0
    try:
        cli.main()
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    return code, capsys.readouterr().err


def bad_data_files(root: Path, rng: random.Random) -> list[Path]:
    """Files and folders that are not usable training data."""
    root.mkdir(parents=True, exist_ok=True)
    made = []

    def path(name: str) -> Path:
        made.append(root / name)
        return root / name

    path("empty.npy").write_bytes(b"")
    path("noise.png").write_bytes(bytes(rng.randrange(256) for _ in range(200)))
    path("truncated.npz").write_bytes(b"PK\x03\x04" + bytes(40))
    np.save(path("strings.npy"), np.full((4, 8, 8, 1), "x"))
    np.save(path("complex.npy"), np.ones((4, 8, 8), np.complex64))
    np.save(path("scalar.npy"), np.float32(3))
    np.save(path("one_d.npy"), np.zeros(16, np.float32))
    np.save(path("five_d.npy"), np.zeros((2, 2, 8, 8, 1), np.float32))
    np.save(path("nan.npy"), np.full((4, 8, 8), np.nan, np.float32))
    np.save(path("inf.npy"), np.full((4, 8, 8), np.inf, np.float32))
    np.save(path("objects.npy"), np.array([{"a": 1}] * 4, dtype=object), allow_pickle=True)
    np.savez(path("no_images.npz"), other=np.zeros((4, 8, 8)))
    np.savez(path("bad_labels.npz"), images=np.zeros((4, 8, 8), np.uint8), labels=np.array([0.5, 1, 2, 3]))
    np.savez(path("few_labels.npz"), images=np.zeros((4, 8, 8), np.uint8), labels=np.array([0, 1]))
    np.save(path("zero_images.npy"), np.zeros((0, 8, 8), np.uint8))
    corrupt = path("corrupt_folder")
    corrupt.mkdir()
    for i in range(3):
        (corrupt / f"{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(rng.randrange(256) for _ in range(30)))
    path("no_images_folder").mkdir()
    (root / "no_images_folder" / "readme.txt").write_text("not an image")
    path("missing_file.npy")
    path("plain.txt").write_text("hello")
    return made


FREE_FORM = {"source", "root", "name", "options", "eval_metrics", "eval_extractor"}  # any string may be valid


def invalid_values(hint: str) -> list:
    """Values no field of this type accepts."""
    wrong_shape = [[1, 2], {"a": 1}]
    if "bool" in hint:
        return ["abc", 5, *wrong_shape] + ([] if "None" in hint else [None])
    if "int" in hint or "float" in hint:
        return ["abc", True, ".nan", ".inf", "-.inf", *wrong_shape] + ([] if "None" in hint else [None])
    return ["no-such-choice", *wrong_shape]


def bad_configs(rng: random.Random, n: int) -> list[str]:
    """YAML texts that must be refused: a field given a wrong value, an unknown key, or broken YAML."""
    from dataclasses import fields
    from typing import get_type_hints

    from ganforge.config import SECTIONS

    texts = ["train: [1, 2]\n", "data: 5\n", "- a\n- b\n", "train:\n  steps: [\n", "model:\n  nme: dcgan\n",
             "bogus: 1\n", "train:\n  lr_g: .nan\n", "train:\n  beta1: 5\n", "train:\n  batch_size: 0\n",
             "model:\n  name: nosuchgan\n", "model:\n  options:\n    nosuchoption: 1\n", "\x00\x01\x02"]
    choices = [(section, f.name, value) for section, cls in SECTIONS.items() for f in fields(cls)
               if f.name not in FREE_FORM for value in invalid_values(str(get_type_hints(cls)[f.name]))]
    for section, key, value in rng.sample(choices, min(len(choices), n - len(texts))):
        text = json.dumps({section: {key: value}})
        texts.append(text.replace('".nan"', ".nan").replace('".inf"', ".inf").replace('"-.inf"', "-.inf"))
    return texts


def damaged_checkpoints(source: Path, root: Path, rng: random.Random) -> list[Path]:
    """Run folders whose last checkpoint is damaged in one way each."""
    good = (source / "checkpoints" / "last.safetensors").read_bytes()
    header_len = struct.unpack("<Q", good[:8])[0]
    header = json.loads(good[8:8 + header_len])
    variants = {
        "truncated_half": good[: len(good) // 2],
        "truncated_header": good[:20],
        "empty": b"",
        "random": bytes(rng.randrange(256) for _ in range(4096)),
        "pickle": b"\x80\x04\x95" + bytes(60),
        "bitflip": _flip(good, 8 + header_len + (len(good) - 8 - header_len) // 2),
    }
    for name, edit in {"bad_json": lambda m: "{not json", "no_step": lambda m: _drop(m, "step"),
                       "no_config": lambda m: _drop(m, "config"), "no_optimizers": lambda m: _drop(m, "optimizers"),
                       "step_text": lambda m: _set(m, "step", "many")}.items():
        changed = dict(header)
        changed["__metadata__"] = dict(header["__metadata__"], meta=edit(header["__metadata__"]["meta"]))
        variants[name] = _with_header(good, header_len, changed)
    runs = []
    for name, content in variants.items():
        run = root / name
        (run / "checkpoints").mkdir(parents=True)
        (run / "checkpoints" / "last.safetensors").write_bytes(content)
        runs.append(run)
    return runs


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x10]) + data[at + 1:]


def _drop(meta: str, key: str) -> str:
    parsed = json.loads(meta)
    parsed.pop(key, None)
    return json.dumps(parsed)


def _set(meta: str, key: str, value) -> str:
    return json.dumps(json.loads(meta) | {key: value})


def _with_header(data: bytes, header_len: int, header: dict) -> bytes:
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    return struct.pack("<Q", len(encoded)) + encoded + data[8 + header_len:]


BAD_FLAGS = [
    ["--steps", "-1"], ["--steps", "abc"], ["--steps", "0"], ["--resolution", "7"], ["--resolution", "48"],
    ["--channels", "2"], ["--batch-size", "0"], ["--lr-g", "-1"], ["--lr-d", "nan"], ["--lr-g", "inf"],
    ["--beta1", "-1"], ["--beta2", "1"], ["--ema", "1.5"], ["--n-critic", "0"], ["--device", "tpu"],
    ["--model", "nosuchgan"], ["--loss", "nosuchloss"], ["--penalty", "nosuch"], ["--g-norm", "weird"],
    ["--latent-dim", "0"], ["--width", "-3"], ["--limit", "0"], ["--opt", "nokey"], ["--opt", "nosuch=1"],
    ["--opt", "upsample=sideways"], ["--opt", "diffaugment=zoom"], ["--penalty-weight", "-1"],
    ["--name", "../../escape"], ["--name", "a/b"], ["--seed", "-5"],
]


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    import ganforge

    out = tmp_path_factory.mktemp("good")
    return ganforge.train(quiet=True, **{"data.resolution": 16, "model.width": 8, "model.latent_dim": 16,
                                         "train.batch_size": 8, "train.steps": 2, "out": str(out), "name": "good"})


def check(args, capsys, monkeypatch, report, failures: list) -> None:
    """Run one case; a case fails unless it ends with exit code 2 and one `error:` line (warnings aside)."""
    code, err = run_cli(args, capsys, monkeypatch)
    lines = [line for line in err.strip().splitlines() if not line.startswith("warning:")]
    report["cases"] += 1
    if "Traceback" in err or code != 2 or len(lines) != 1 or not lines[0].startswith("error:"):
        failures.append((args, code, err.strip()[-400:]))
        report["failures"] += 1
        report["tracebacks"] += "Traceback" in err


@pytest.fixture(scope="module")
def report():
    report = {"cases": 0, "tracebacks": 0, "failures": 0}
    yield report
    print(f"\nfuzz: {report['cases']} cases, {report['tracebacks']} tracebacks, {report['failures']} failures")


def test_bad_data_files(tmp_path, capsys, monkeypatch, report):
    failures = []
    for path in bad_data_files(tmp_path / "data", random.Random(0)):
        check(["train", "--data", path, "--out", tmp_path / "runs", "--name", path.stem, "--steps", "1", *TINY],
              capsys, monkeypatch, report, failures)
        assert not (tmp_path / "runs" / path.stem / "checkpoints").exists()
    assert not failures, failures


def test_bad_configs(tmp_path, capsys, monkeypatch, report):
    failures = []
    for i, text in enumerate(bad_configs(random.Random(1), 60)):
        config = tmp_path / f"c{i}.yaml"
        config.write_text(text)
        check(["train", "--config", config, "--out", tmp_path / "runs", "--name", f"c{i}", "--steps", "1"],
              capsys, monkeypatch, report, failures)
        assert not (tmp_path / "runs" / f"c{i}").exists(), text  # an invalid config leaves no run folder
    assert not failures, failures


def test_damaged_checkpoints(tmp_path, good_run, capsys, monkeypatch, report):
    failures = []
    for run in damaged_checkpoints(good_run, tmp_path / "damaged", random.Random(2)):
        # `info` reads the header alone: it is asked only about damage the header shows
        reads_tensors = run.name in ("bitflip", "no_optimizers")
        for args in ([] if reads_tensors else [["info", run]]) + [
                ["sample", run, "--n", "2", "--out", tmp_path / "x.png"],
                ["train", "--resume", run, "--steps", "4", "--quiet"]]:
            check(args, capsys, monkeypatch, report, failures)
    assert not failures, failures


def test_bad_flags(tmp_path, good_run, capsys, monkeypatch, report):
    failures = []
    for flags in BAD_FLAGS:
        check(["train", *flags, "--out", tmp_path, "--steps", "1", "--dry-run"] if "--steps" not in flags
              else ["train", *flags, "--out", tmp_path, "--dry-run"], capsys, monkeypatch, report, failures)
    for args in (["sample", good_run, "--n", "0"], ["sample", good_run, "--out", tmp_path / "x.bmpx"],
                 ["sample", good_run, "--device", "cuda:7"], ["sample", good_run, "--truncation", "0.5"],
                 ["sample", good_run, "--class", "3"], ["interpolate", good_run, "--fps", "0"],
                 ["interpolate", good_run, "--points", "1"], ["interpolate", good_run, "--out", tmp_path / "w.png"],
                 ["evaluate", good_run, "--n", "0"], ["info", tmp_path / "nothing"],
                 ["train", "--resume", tmp_path / "nothing"], ["train", "--resume", good_run, "--steps", "1"]):
        check(args, capsys, monkeypatch, report, failures)
    assert not failures, failures
