"""One training process per run folder: a lock file that says who holds it, and a write check.

The lock is an flock on `train.lock`: the kernel drops it when its process ends, kill -9 included, so a stale
file never blocks a resume (its text only names the holder). Where fcntl is missing (Windows) runs are not locked.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from ganforge.errors import GanforgeError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LOCK_NAME = "train.lock"


def check_writable(folder: Path) -> None:
    """Create `folder` if needed and prove a file can be written in it (one clear line if not)."""
    probe = folder / f".write-test-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666))
        probe.unlink()
    except OSError as error:
        raise GanforgeError(f"cannot write to the run folder {folder}: {error.strerror or error}") from None


class RunLock:
    """Held while a process trains in `run_dir`; a second one gets an error naming the holder."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_NAME
        self._handle = None

    def acquire(self) -> "RunLock":
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = os.fdopen(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666), "r+")
        except OSError as error:
            raise GanforgeError(f"cannot write to the run folder {self.path.parent}: {error.strerror or error}") from None
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = handle.read().strip() or "another process"
                handle.close()
                raise GanforgeError(f"run folder {self.path.parent} is in use by {holder}; wait for it to finish "
                                    "or stop it first") from None
            except OSError:  # a file system without flock (some network mounts): train unlocked rather than not
                pass
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        handle.flush()
        self._handle = handle
        return self

    def release(self) -> None:
        if self._handle is not None:
            self._handle.truncate(0)
            self._handle.close()
            self._handle = None


def claim_run_folder(run_dir: Path) -> RunLock:
    """Lock `run_dir`, check that checkpoints can be written and delete the temp files of writes killed mid-way."""
    from ganforge.training.checkpoint import remove_temporaries

    lock = RunLock(run_dir).acquire()
    try:
        check_writable(Path(run_dir) / "checkpoints")
        remove_temporaries(Path(run_dir) / "checkpoints")
    except BaseException:
        lock.release()
        raise
    return lock
