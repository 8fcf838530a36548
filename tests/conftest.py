import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def pytest_configure(config):
    config.addinivalue_line("markers", "cpu_only: checks CPU behaviour (bit-exact resume, reference sums, gloo groups); "
                                       "on a GPU machine it runs as if the machine had no GPU")


@pytest.fixture(autouse=True)
def _cpu_only(request, monkeypatch):
    """Tests marked cpu_only train on the CPU on any machine: 'auto' resolves to the CPU in this process, and the
    processes they start (torchrun) see no GPU. GPU runs are not bit-reproducible (cuDNN autotuning, TF32,
    atomics), so these checks are CPU facts; the rest of the suite runs on the GPU where there is one."""
    if request.node.get_closest_marker("cpu_only"):
        import torch

        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")


def tiny_overrides(tmp_path: Path, **extra) -> dict:
    """A config small enough to train in a second or two on one CPU thread."""
    base = {
        "data.resolution": 16, "model.width": 8, "model.latent_dim": 16, "train.batch_size": 16,
        "train.steps": 6, "train.log_every": 2, "train.sample_every": 3, "train.checkpoint_every": 3,
        "out": str(tmp_path), "name": "run",
    }
    base.update(extra)
    return base


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def cli_env() -> dict:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def assert_streamed_resume_is_exact(tmp_path: Path, common: dict, part: int, total: int) -> None:
    """A streamed run of `total` steps, and one stopped at `part` and resumed to `total` both streamed and in
    memory (the same position in the same order), end with identical checkpoints."""
    import shutil

    import torch

    import ganforge
    from ganforge.training import checkpoint as ckpt

    straight = ganforge.train(quiet=True, **tiny_overrides(tmp_path, name="straight", **common,
                                                           **{"train.steps": total}))
    ganforge.train(quiet=True, **tiny_overrides(tmp_path, name="part", **common, **{"train.steps": part}))
    shutil.copytree(tmp_path / "part", tmp_path / "copy")
    streamed = ganforge.train(resume=tmp_path / "part", quiet=True, **{"train.steps": total})
    in_memory = ganforge.train(resume=tmp_path / "copy", quiet=True, **{"train.steps": total, "data.stream": False})
    a, _ = ckpt.load(straight / "checkpoints" / "last.safetensors")
    for resumed in (streamed, in_memory):
        b, _ = ckpt.load(resumed / "checkpoints" / "last.safetensors")
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), key
