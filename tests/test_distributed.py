"""Data-parallel training under torchrun on CPU (gloo, 2 processes)."""

import json
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

import ganforge
from ganforge.training import checkpoint as ckpt

from conftest import ROOT, tiny_overrides

pytestmark = pytest.mark.skipif(not torch.distributed.is_gloo_available(), reason="needs torch.distributed with gloo")


def torchrun(tmp_path, overrides, resume=None, env=None):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               str(ROOT / "tests" / "ddp_worker.py"), str(tmp_path), json.dumps(overrides)]
    if resume:
        command.append(str(resume))
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


def settings(tmp_path, name, steps):
    # no batch norm: per-process batch statistics would (rightly) differ from one process's
    return tiny_overrides(tmp_path, **{"name": name, "train.steps": steps, "model.g_norm": "none",
                                       "model.d_norm": "none", "train.batch_size": 16, "train.checkpoint_every": 4})


@pytest.mark.cpu_only
def test_ddp_ranks_agree_match_single_process_and_resume(tmp_path, cli_env):
    torchrun(tmp_path, settings(tmp_path, "ddp", 6), env=cli_env)
    rank0, rank1 = load_file(str(tmp_path / "rank0.safetensors")), load_file(str(tmp_path / "rank1.safetensors"))
    assert rank0.keys() == rank1.keys() and len(rank0) > 0
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key

    # only rank 0 wrote the run folder, and it holds the same weights
    run = tmp_path / "ddp"
    saved, meta = ckpt.load(run / "checkpoints" / "last.safetensors")
    assert meta["step"] == 6
    for key in rank0:
        assert torch.equal(saved[key], rank0[key]), key
    assert len(list((run / "tb").iterdir())) == 1
    assert len((run / "metrics.csv").read_text().splitlines()) == 1 + 3

    # one process with the same global batch and seed ends at the same weights, within float tolerance
    single = ganforge.train(quiet=True, **settings(tmp_path, "single", 6))
    alone, _ = ckpt.load(single / "checkpoints" / "last.safetensors")
    for key in rank0:
        assert torch.allclose(alone[key], rank0[key], atol=1e-4, rtol=1e-3), key

    # resume under DDP: 4 steps, then on to 6, equals 6 straight
    torchrun(tmp_path, settings(tmp_path, "part", 4), env=cli_env)
    torchrun(tmp_path, {"train.steps": 6}, resume=tmp_path / "part", env=cli_env)
    resumed = load_file(str(tmp_path / "rank0.safetensors"))
    for key in rank0:
        assert torch.allclose(resumed[key], rank0[key], atol=1e-6), key


def wait_all(processes, timeout, grace):
    """Exit codes of all processes (None for one killed): each gets `timeout` seconds in all, and once one has failed
    the others only `grace` more (a node whose peer died waits at its next collective)."""
    deadline = time.monotonic() + timeout
    while any(process.poll() is None for process in processes) and time.monotonic() < deadline:
        if any(process.poll() not in (None, 0) for process in processes):
            deadline = min(deadline, time.monotonic() + grace)
        time.sleep(0.2)
    return [process.poll() for process in processes]


@pytest.mark.cpu_only
def test_two_nodes_on_loopback_train_as_one_group(tmp_path, cli_env):
    # the multi-node form: two torchrun launches (one process each) meet at a c10d rendezvous, so RANK differs
    # from LOCAL_RANK on the second node; together they must match the single-node run of the same global batch.
    # The rendezvous store lives in this test, not in one of the agents (`is_host=false`): when the agent that hosts
    # it exits, the other agent's next check of the store fails with "Broken pipe" (CI, session 9), whatever its
    # workers did. Both nodes' logs are shown when either fails.
    store = torch.distributed.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)
    overrides = json.dumps(settings(tmp_path, "nodes", 6))
    logs = [tmp_path / f"node{i}.log" for i in range(2)]
    outputs = [log.open("w") for log in logs]
    launches = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
         "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{store.port}", "--rdzv-id", "ganforge-test",
         "--rdzv-conf", "is_host=false", str(ROOT / "tests" / "ddp_worker.py"), str(tmp_path), overrides],
        stdout=output, stderr=subprocess.STDOUT, env=cli_env) for output in outputs]
    try:
        codes = wait_all(launches, timeout=600, grace=60)
    finally:  # a failed node leaves the other waiting at the rendezvous
        for launch, output in zip(launches, outputs):
            launch.kill()
            output.close()
    assert codes == [0, 0], "\n".join(f"--- node {i} (exit {code}) ---\n{log.read_text()[-3000:]}"
                                      for i, (code, log) in enumerate(zip(codes, logs)))
    rank0, rank1 = load_file(str(tmp_path / "rank0.safetensors")), load_file(str(tmp_path / "rank1.safetensors"))
    saved, meta = ckpt.load(tmp_path / "nodes" / "checkpoints" / "last.safetensors")
    assert meta["step"] == 6 and len(list((tmp_path / "nodes" / "tb").iterdir())) == 1
    single = ganforge.train(quiet=True, **settings(tmp_path, "single", 6))
    alone, _ = ckpt.load(single / "checkpoints" / "last.safetensors")
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]) and torch.equal(saved[key], rank0[key]), key
        assert torch.allclose(alone[key], rank0[key], atol=1e-4, rtol=1e-3), key


@pytest.mark.parametrize("device, gpus, expected", [("cpu", 4, "gloo"), ("cuda", 4, "nccl"), ("cuda", 1, "error")])
def test_process_group_backend_follows_the_run_device(monkeypatch, device, gpus, expected):
    """torchrun on a GPU machine with train.device cpu is a gloo group (it used to pick NCCL whenever CUDA existed);
    more processes on a node than GPUs is a one-line error, not CUDA's 'invalid device ordinal'."""
    from ganforge.errors import GanforgeError
    from ganforge.training.distributed import Distributed

    chosen = []
    monkeypatch.setenv("WORLD_SIZE", "2"), monkeypatch.setenv("RANK", "1"), monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.distributed, "is_nccl_available", lambda: True)
    monkeypatch.setattr(torch.distributed, "init_process_group", chosen.append)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    monkeypatch.setattr(torch.cuda, "set_device", lambda index: chosen.append(f"cuda:{index}"))
    if expected == "error":
        with pytest.raises(GanforgeError, match="LOCAL_RANK 1, 1 GPU.*--nproc-per-node 1"):
            Distributed.from_env(torch.device(device))
        return
    state = Distributed.from_env(torch.device(device))
    assert (state.rank, state.world, state.local_rank) == (1, 2, 1)
    assert chosen == (["cuda:1", "nccl"] if expected == "nccl" else ["gloo"])

