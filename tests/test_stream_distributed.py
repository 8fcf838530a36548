"""Streamed data under torchrun (gloo, 2 CPU processes): each process reads only its own images."""

import json
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, tiny_overrides
from test_stream import make_folder

pytestmark = pytest.mark.skipif(not torch.distributed.is_gloo_available(), reason="needs torch.distributed with gloo")


@pytest.mark.cpu_only
def test_two_processes_cover_each_image_once_per_epoch(tmp_path, cli_env):
    folder = make_folder(tmp_path / "pics", n=32, classes=("a",))
    # one epoch: 4 steps of a global batch of 8, 4 images a process a step
    overrides = tiny_overrides(tmp_path, **{"data.source": str(folder), "data.stream": True, "data.workers": 0,
                                            "train.batch_size": 8, "train.steps": 4, "model.g_norm": "none",
                                            "model.d_norm": "none"})
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               str(ROOT / "tests" / "stream_worker.py"), str(tmp_path), json.dumps(overrides)]
    result = subprocess.run(command, capture_output=True, text=True, env=cli_env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    for rank in ranks:
        assert len(rank["seen"]) == 16 and rank["decoded"][-1] == 16  # half the set, decoded once each
    assert sorted(ranks[0]["seen"] + ranks[1]["seen"]) == list(range(32))  # together: every image exactly once
