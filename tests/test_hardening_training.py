"""Training under faults (issue 13): damaged checkpoints, interrupted writes, concurrent runs, full disks, read-only
folders, finite divergence, no-op resumes, TensorBoard on resume and start-up messages."""

import errno
import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors import SafetensorError
from safetensors.torch import save_file

import ganforge
from ganforge.errors import GanforgeError
from ganforge.training import checkpoint as ckpt
from ganforge.training import lock as lock_module
from ganforge.training.guard import DivergenceGuard
from ganforge.training.logger import describe

from conftest import tiny_overrides


def _run(tmp_path, callbacks=None, **extra):
    return ganforge.train(quiet=True, callbacks=callbacks, **tiny_overrides(tmp_path, **extra))


def _rewrite(path, change_tensors=None, change_meta=None, with_hash=True):
    """Rewrite a checkpoint with edited tensors/metadata: with a valid hash (a consistent but bad file) or none."""
    tensors, meta = ckpt.load(path)
    if change_tensors:
        change_tensors(tensors)
    if change_meta:
        change_meta(meta)
    if with_hash:
        ckpt.save(path, tensors, meta)
    else:
        save_file(tensors, str(path), metadata={"format": ckpt.FORMAT, "meta": json.dumps(meta)})


def _first_weight(tensors):
    # a plain weight, or the tensor a spectral-norm parametrisation trains (weight.original)
    return next(k for k in sorted(tensors) if k.startswith("family.discriminator.")
                and k.endswith(("weight", "weight.original")))


def _poison(tensors):
    tensors[_first_weight(tensors)].view(-1)[0] = float("nan")


def test_non_finite_checkpoint_is_refused_on_load_and_resume(tmp_path):
    run = _run(tmp_path)
    last = run / "checkpoints" / "last.safetensors"
    _rewrite(last, _poison)
    with pytest.raises(GanforgeError, match=r"last.safetensors holds NaN/inf values in tensor 'family\.discriminator"):
        ganforge.load(run)
    with pytest.raises(GanforgeError, match="NaN/inf"):
        ganforge.train(resume=run, quiet=True, **{"train.steps": 9})


def test_rollback_skips_a_non_finite_last_checkpoint(tmp_path, capsys):
    seen = []

    def poison_last_and_weights(trainer):
        seen.append(trainer.step)
        if trainer.step == 4 and seen.count(4) == 1:
            _rewrite(trainer.checkpoint_dir / "last.safetensors", _poison)  # e.g. written by a buggy version
            with torch.no_grad():
                next(trainer.family.discriminator.parameters()).fill_(float("nan"))

    run = ganforge.train(callbacks=[poison_last_and_weights], **tiny_overrides(tmp_path, **{"train.steps": 9}))
    out = capsys.readouterr().out
    assert "skipped checkpoint" in out and "rolled back to step_000003.safetensors (step 3)" in out
    assert seen[:6] == [1, 2, 3, 4, 5, 4]  # rolled back at step 6 (a NaN loss) to step 3
    tensors, meta = ckpt.load(run / "checkpoints" / "last.safetensors")
    assert meta["step"] == 9 and meta["rollbacks"] == 1


def test_flipped_bit_is_detected_and_old_checkpoints_without_hash_load(tmp_path):
    run = _run(tmp_path)
    last = run / "checkpoints" / "last.safetensors"
    before, _ = ckpt.load(last)
    _rewrite(last, with_hash=False)  # as written before checkpoints carried a hash
    ganforge.load(run)
    after, _ = ckpt.load(last)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    _rewrite(last)
    data = bytearray(last.read_bytes())
    data[-5] ^= 0x10  # one bit of the last tensor's bytes
    last.write_bytes(bytes(data))
    with pytest.raises(GanforgeError, match=r"^checkpoint .*last.safetensors is corrupt \(content hash mismatch\)$"):
        ganforge.load(run)


def test_missing_optimiser_state_is_not_resumed_silently(tmp_path):
    run = _run(tmp_path)
    last = run / "checkpoints" / "last.safetensors"
    original = last.read_bytes()
    _rewrite(last, lambda t: [t.pop(k) for k in [k for k in t if k.startswith("optim.D.")]])
    with pytest.raises(GanforgeError, match="lacks the optimiser state of phase 'D'"):
        ganforge.train(resume=run, quiet=True, **{"train.steps": 9})
    last.write_bytes(original)
    _rewrite(last, change_meta=lambda m: m["optimizers"].pop("G"))
    with pytest.raises(GanforgeError, match="lacks the optimiser state of phase 'G'"):
        ganforge.train(resume=run, quiet=True, **{"train.steps": 9})


def test_tampered_metadata_is_one_line(tmp_path, cli_env):
    run = _run(tmp_path)
    last = run / "checkpoints" / "last.safetensors"
    tensors, meta = ckpt.load(last)
    save_file(tensors, str(last), metadata={"format": ckpt.FORMAT, "meta": "{not json"})
    for call in (ckpt.read_meta, ganforge.load):
        with pytest.raises(GanforgeError, match="metadata is not a JSON object"):
            call(last)
    result = subprocess.run([sys.executable, "-m", "ganforge", "info", str(run)], capture_output=True, text=True,
                            env=cli_env, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "not a JSON object" in result.stderr
    for key in ("step", "config"):
        save_file(tensors, str(last), metadata={"format": ckpt.FORMAT,
                                                "meta": json.dumps({k: v for k, v in meta.items() if k != key})})
        with pytest.raises(GanforgeError, match=f"lacks a valid '{key}'"):
            ganforge.load(run)
        with pytest.raises(GanforgeError, match=f"lacks a valid '{key}'"):
            ganforge.train(resume=run, quiet=True, **{"train.steps": 9})
    ckpt.save(last, {k: v for k, v in tensors.items() if k != "rng.cpu"}, meta)
    with pytest.raises(GanforgeError, match="lacks 'rng.cpu', so training cannot resume"):
        ganforge.train(resume=run, quiet=True, **{"train.steps": 9})


def test_temp_files_of_a_killed_write_are_removed_on_resume(tmp_path):
    run = _run(tmp_path)
    leftover = run / "checkpoints" / ".last.safetensors.1a2b3c4d"
    leftover.write_bytes(b"\0" * 1000)
    ganforge.train(resume=run, quiet=True, **{"train.steps": 7})
    assert not leftover.exists()
    assert sorted(p.name for p in (run / "checkpoints").iterdir() if p.name.startswith(".")) == []


def test_a_second_process_on_the_same_run_is_refused(tmp_path):
    run = _run(tmp_path)
    holder = lock_module.RunLock(run).acquire()
    try:
        with pytest.raises(GanforgeError, match=rf"run folder .* is in use by pid {os.getpid()} on "):
            ganforge.train(resume=run, quiet=True, **{"train.steps": 9})
    finally:
        holder.release()
    ganforge.train(resume=run, quiet=True, **{"train.steps": 9})  # free again, and the run released it too
    lock_module.RunLock(run).acquire().release()


def test_checkpoints_follow_the_umask(tmp_path):
    previous = os.umask(0o002)
    try:
        run = _run(tmp_path)
    finally:
        os.umask(previous)
    for path in (run / "checkpoints").iterdir():
        assert path.stat().st_mode & 0o777 == 0o664, path


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"),
                                   SafetensorError("Error while serializing: IoError(No space left on device)")])
def test_disk_full_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, error):
    write = ckpt._write

    def fill_disk_after_step_3(tmp, data):
        if ".step_000003." in tmp.name:
            monkeypatch.setattr(ckpt, "full", True, raising=False)
        elif getattr(ckpt, "full", False):
            tmp.write_bytes(data[: len(data) // 2])  # a partial temp file, as a real full disk leaves
            raise error
        write(tmp, data)

    monkeypatch.setattr(ckpt, "_write", fill_disk_after_step_3)
    with pytest.raises(GanforgeError, match=r"^cannot write checkpoint .*last.safetensors: disk full"):
        _run(tmp_path, **{"train.steps": 9})
    folder = tmp_path / "run" / "checkpoints"
    assert ckpt.load(folder / "last.safetensors")[1]["step"] == 3
    assert sorted(p.name for p in folder.iterdir()) == ["last.safetensors", "step_000003.safetensors"]


def test_resume_of_a_read_only_run_folder_is_one_line_and_changes_nothing(tmp_path, monkeypatch):
    run = _run(tmp_path)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    real_open = os.open

    def read_only(path, flags, *args):  # root writes through chmod, so simulate the refusal of a read-only folder
        if str(path).startswith(str(run)) and flags & (os.O_WRONLY | os.O_RDWR):
            raise PermissionError(errno.EROFS, "Read-only file system")
        return real_open(path, flags, *args)

    monkeypatch.setattr(lock_module.os, "open", read_only)
    with pytest.raises(GanforgeError, match=r"^cannot write to the run folder .*: Read-only file system$"):
        ganforge.train(resume=run, quiet=True, **{"train.steps": 9})
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_divergence_guard_flags_explosions_only():
    guard = DivergenceGuard(1e4)
    assert guard.check({"d_loss": 0.01, "g_loss": -3.0}) is None
    assert guard.check({"d_loss": 900.0, "g_loss": -2000.0}) is None  # large moves from near zero: floored median
    assert "g_loss reached 1e+08" in guard.check({"d_loss": 1.0, "g_loss": -1e8})
    assert guard.check({"d_loss": float("nan")}) is None  # NaN is the NaN check's job
    assert DivergenceGuard(0).check({"x": 1.0}) is None and DivergenceGuard(0).check({"x": 1e30}) is None


def test_finite_divergence_rolls_back_and_stops(tmp_path):
    explosive = {"train.lr_g": 1e6, "train.lr_d": 1e6, "train.steps": 30, "train.sample_every": 100}
    with pytest.raises(GanforgeError, match=r"training diverged: weight_norm/\w+ reached .* \(train.divergence\)"):
        _run(tmp_path, **explosive)
    _, meta = ckpt.load(tmp_path / "run" / "checkpoints" / "last.safetensors")
    assert meta["step"] == 0 and meta["rollbacks"] == 3  # saved right after the last rollback
    run = _run(tmp_path, name="unguarded", **explosive, **{"train.divergence": 0})
    assert ckpt.load(run / "checkpoints" / "last.safetensors")[1]["step"] == 30
    with pytest.raises(GanforgeError, match="train.divergence must be 0 .off. or greater than 1"):
        _run(tmp_path, name="bad", **{"train.divergence": 0.5})


def test_rollback_count_and_lr_scale_reach_disk_at_once(tmp_path):
    on_disk = {}

    def poison_then_read(trainer):
        if trainer.step == 5 and trainer.rollbacks == 0:
            with torch.no_grad():
                next(trainer.family.discriminator.parameters()).fill_(float("nan"))
        if trainer.rollbacks == 1 and trainer.step == 4:  # after the rollback, before the next checkpoint
            on_disk.update(ckpt.read_meta(trainer.checkpoint_dir / "last.safetensors"))

    _run(tmp_path, callbacks=[poison_then_read], **{"train.steps": 9})
    assert on_disk["step"] == 3 and on_disk["rollbacks"] == 1 and on_disk["lr_scale"] == 0.5


def test_resume_to_fewer_steps_is_refused_and_leaves_the_run(tmp_path):
    run = _run(tmp_path)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    for steps in (4, 6):
        with pytest.raises(GanforgeError, match=r"already at step 6 and train.steps is \d; pass --steps above 6"):
            ganforge.train(resume=run, quiet=True, **{"train.steps": steps})
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_tensorboard_keeps_the_resume_step_and_rewrites_what_came_after(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    run = _run(tmp_path, **{"train.steps": 4, "train.log_every": 1, "train.checkpoint_every": 2})
    with SummaryWriter(str(run / "tb")) as writer:  # a run killed after logging step 5, before its checkpoint
        writer.add_scalar("d_loss", 999.0, 5)
    ganforge.train(resume=run, quiet=True, **{"train.steps": 6})
    events = EventAccumulator(str(run / "tb"))
    events.Reload()
    scalars = events.Scalars("d_loss")
    assert [e.step for e in scalars] == [1, 2, 3, 4, 5, 6]
    assert scalars[4].value != 999.0
    rows = (run / "metrics.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == [1, 2, 3, 4, 5, 6]


def test_metrics_row_cut_short_by_a_kill_is_dropped_on_resume(tmp_path):
    run = _run(tmp_path, **{"train.steps": 4, "train.log_every": 1, "train.checkpoint_every": 2})
    with (run / "metrics.csv").open("a") as handle:
        handle.write("1")  # the first byte of a row for step 1x, when the process was killed
    (run / ".metrics.csv.tmp").write_text("step\n")  # a rewrite killed before its rename
    ganforge.train(resume=run, quiet=True, **{"train.steps": 6})
    rows = (run / "metrics.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert not (run / ".metrics.csv.tmp").exists()


def test_run_folder_is_printed_when_piped_and_slow_speed_is_not_zero(tmp_path, capsys):
    run = ganforge.train(**tiny_overrides(tmp_path, **{"train.steps": 2}))
    assert capsys.readouterr().out.splitlines()[0] == f"run folder: {run}"
    assert describe({"d_loss": 1.0, "img_per_s": 0.4}) == "d_loss 1.000 0.4 img/s"
    assert describe({"img_per_s": 0.0412}) == "0.041 img/s" and describe({"img_per_s": 1234.4}) == "1234 img/s"


def test_invalid_config_or_name_leaves_no_folder(tmp_path):
    with pytest.raises(GanforgeError, match="power of two"):
        _run(tmp_path / "a", **{"data.resolution": 24})
    with pytest.raises(GanforgeError, match="larger than the data set"):  # found while building the trainer
        _run(tmp_path / "b", **{"data.limit": 10})
    assert not (tmp_path / "a").exists() and not (tmp_path / "b" / "run").exists()
    for name in ("../../x", "a/b", ".."):
        with pytest.raises(GanforgeError, match="name must be a plain folder name inside --out"):
            _run(tmp_path / "c" / "d", name=name)
    assert not (tmp_path / "c").exists() and not (tmp_path / "x").exists()
