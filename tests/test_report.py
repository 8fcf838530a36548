"""`ganforge report`: one self-contained HTML page (well nested, every figure embedded as a data: URI, nothing
fetched) with the curves, the samples over training and their animation, evaluation records, config and
environment."""

import base64
import importlib.util
import sys
from html.parser import HTMLParser

import pytest
import torch

import ganforge
from ganforge.report import build, write

from conftest import tiny_overrides
from test_sampling_commands import cli  # the CLI entry point run in this process

VOID = {"meta", "img", "br", "hr", "link", "input", "source"}
MAGIC = {"image/png": b"\x89PNG", "image/gif": b"GIF8", "video/mp4": b"ftyp"}


class Page(HTMLParser):
    """Checks that elements nest properly and collects the embedded media and every attribute value."""

    def __init__(self):
        super().__init__()
        self.open, self.media, self.values, self.text = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.values += [value or "" for _, value in attrs]
        if tag in ("img", "video", "audio"):
            self.media.append((tag, dict(attrs)["src"]))
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1] if self.open else None}>"
        self.open.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(page: str) -> Page:
    parser = Page()
    parser.feed(page)
    parser.close()
    assert parser.open == [], parser.open
    return parser


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Six steps with samples every 2 and an evaluation every 3 (the bundled digits extractor)."""
    torch.manual_seed(0)
    return ganforge.train(quiet=True, **tiny_overrides(tmp_path_factory.mktemp("runs"), **{
        "data.source": "digits", "data.limit": 64, "train.batch_size": 8, "train.sample_every": 2,
        "train.eval_every": 3, "train.eval_n": 16, "train.eval_metrics": "fid"}))


def test_report_is_self_contained_html_with_every_figure(run, tmp_path):
    path, figures = write(run, tmp_path / "report.html")
    page = parse(path.read_text(encoding="utf-8"))
    # losses, evaluation, the progress animation and the 3 periodic grids (steps 2, 4, 6)
    assert figures == 6 and len(page.media) == 6
    for tag, source in page.media:
        kind, _, payload = source.removeprefix("data:").partition(";base64,")
        assert source.startswith("data:") and payload, source[:40]
        assert MAGIC[kind] in base64.b64decode(payload)[:12], kind
    assert sum(tag == "img" for tag, _ in page.media) >= 5  # curves and grids are pictures
    assert not any("http://" in value or "https://" in value for value in page.values)
    text = " ".join(page.text)
    for expected in ("step 2", "step 6", "eval.csv", "step_000003.json", "scores.fid", "record.extractor", "digits",
                     "name: dcgan", sys.version.split()[0], torch.__version__):
        assert expected in text, expected


def test_animation_is_a_gif_without_imageio_ffmpeg(run, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "imageio_ffmpeg" else real(name, *a))
    page = parse(build(run)[0])
    assert [tag for tag, _ in page.media].count("video") == 0
    assert sum(source.startswith("data:image/gif;base64,") for _, source in page.media) == 1


def test_report_command_and_errors(run, tmp_path, monkeypatch, capsys):
    code, out, err = cli(monkeypatch, capsys, "report", run)
    assert code == 0 and "wrote" in out and (run / "report.html").exists(), err
    code, _, err = cli(monkeypatch, capsys, "report", tmp_path / "missing")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "no such run folder" in err
    (tmp_path / "empty").mkdir()
    code, _, err = cli(monkeypatch, capsys, "report", tmp_path / "empty")
    assert code == 2 and "not a ganforge run folder" in err
