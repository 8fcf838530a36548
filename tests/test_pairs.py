"""Pair makers: deterministic under a seed, changing what they should, writing matching A/B folders."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from ganforge.data.pairs import MAKERS, kuwahara, make_pair, make_pairs
from ganforge.errors import GanforgeError


def photo(size=(48, 40)):
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    return Image.fromarray(small).resize(size, Image.BILINEAR)


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_each_maker_is_deterministic_under_a_seed(kind):
    image = photo()
    a1, b1 = make_pair(kind, image, seed=7, name="x.png")
    a2, b2 = make_pair(kind, image, seed=7, name="x.png")
    assert np.array_equal(np.asarray(a1), np.asarray(a2)) and np.array_equal(np.asarray(b1), np.asarray(b2))
    degraded = b1 if kind == "painting" else a1
    clean = a1 if kind == "painting" else b1
    assert np.array_equal(np.asarray(clean), np.asarray(image))
    assert degraded.size == image.size
    if kind != "grey":
        assert not np.array_equal(np.asarray(degraded), np.asarray(image))
    if kind in ("watermark", "noise", "blur"):  # random parameters: another seed gives another pair
        other, _ = make_pair(kind, image, seed=8, name="x.png")
        assert not np.array_equal(np.asarray(other), np.asarray(a1))


def test_grey_is_luminance():
    a, _ = make_pair("grey", photo(), 0, "x")
    expected = np.asarray(photo().convert("L"))
    assert a.mode == "L" and np.array_equal(np.asarray(a), expected)


def test_watermark_marks_part_of_the_image():
    image = Image.fromarray(np.full((64, 64, 3), 128, np.uint8))
    changed = [np.mean(np.any(np.asarray(make_pair("watermark", image, s, "x")[0]) != 128, -1)) for s in range(8)]
    assert all(0 < c < 0.9 for c in changed)


def test_kuwahara_keeps_edges_and_flat_regions():
    step = np.zeros((20, 20, 3), np.uint8)
    step[:, 10:] = 200
    out = kuwahara(step, 3)
    assert np.array_equal(out, step)  # the least-varied quadrant never straddles the edge
    noisy = np.clip(step + np.random.default_rng(0).normal(0, 10, step.shape), 0, 255).astype(np.uint8)
    assert np.abs(kuwahara(noisy, 3).astype(int) - step).mean() < np.abs(noisy.astype(int) - step).mean()


def test_make_pairs_writes_matching_names_and_is_reproducible(tmp_path):
    (tmp_path / "src" / "sub").mkdir(parents=True)
    photo().save(tmp_path / "src" / "one.jpg")
    photo((30, 30)).save(tmp_path / "src" / "sub" / "two.png")
    assert make_pairs("noise", tmp_path / "src", tmp_path / "out1", seed=3) == 2
    make_pairs("noise", tmp_path / "src", tmp_path / "out2", seed=3)
    for name in ("one.png", "sub/two.png"):
        for side in ("A", "B"):
            assert (tmp_path / "out1" / side / name).read_bytes() == (tmp_path / "out2" / side / name).read_bytes()
    photo().save(tmp_path / "src" / "one.png")
    with pytest.raises(GanforgeError, match="would both be written as one.png"):
        make_pairs("noise", tmp_path / "src", tmp_path / "out3")


def test_make_pairs_cli(tmp_path):
    (tmp_path / "src").mkdir()
    photo().save(tmp_path / "src" / "p.png")
    done = subprocess.run([sys.executable, "-m", "ganforge", "make-pairs", "blur", str(tmp_path / "src"),
                           str(tmp_path / "out"), "--seed", "1"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "A" / "p.png").exists() and (tmp_path / "out" / "B" / "p.png").exists()
    bad = subprocess.run([sys.executable, "-m", "ganforge", "make-pairs", "sketch", str(tmp_path / "src"),
                          str(tmp_path / "out")], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown pair maker 'sketch'" in bad.stderr
