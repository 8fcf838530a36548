"""The Train tab's background training: `ganforge train` in a child process (one at a time by default), its
progress read from the run folder, and stop as Ctrl-C (SIGINT), so the run checkpoints and can be resumed."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from ganforge.errors import GanforgeError
from ganforge.ui.runs import read_table

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def built_in() -> list[str]:
    from ganforge.data.sources import TORCHVISION_SETS

    return ["digits", *sorted(TORCHVISION_SETS)]


def data_folders(root: Path | None) -> dict[str, Path]:
    """name -> folder for the folders right under `root` (the --data of `ganforge ui`; None: none offered)."""
    if root is None or not Path(root).is_dir():
        return {}
    return {path.name: path for path in sorted(Path(root).iterdir()) if path.is_dir() and not path.name.startswith(".")}


def data_choices(root: Path | None) -> list[str]:
    """What the form offers as training data: the built-in sets, then the folders under `root`."""
    return [*built_in(), *data_folders(root)]


@dataclass
class TrainRequest:
    """The form's values; `data` is a built-in set name or a path on the server."""

    model: str
    data: str
    steps: int
    name: str
    resolution: int | None = None
    batch_size: int | None = None
    width: int | None = None

    def command(self, runs: Path, data_root: Path | None) -> list[str]:
        """The `ganforge train` command line (the CLI checks every value and says what is wrong); data is a
        built-in set or one of the listed folders, never a path typed into the page."""
        if not NAME.match(self.name or ""):
            raise GanforgeError("run name: letters, digits, '.', '_' and '-' only (at most 100), no folders")
        folders = data_folders(data_root)
        if self.data in built_in():
            data = self.data
        elif self.data in folders:
            data = str(folders[self.data])
        else:
            raise GanforgeError(f"unknown data '{self.data}': pick a built-in set or a listed folder")
        args = [sys.executable, "-m", "ganforge", "train", "--model", self.model, "--data", data,
                "--steps", str(int(self.steps)), "--out", str(runs), "--name", self.name]
        for flag, value in (("--resolution", self.resolution), ("--batch-size", self.batch_size),
                            ("--width", self.width)):
            if value:
                args += [flag, str(int(value))]
        return args


class Training:
    """At most `limit` `ganforge train` processes started from the page, writing under `runs`."""

    def __init__(self, runs: Path, limit: int = 1, data_root: Path | None = None):
        self.runs = Path(runs)
        self.limit = limit
        self.data_root = data_root
        self.stopped: set[str] = set()  # asked to stop from the page
        self.jobs: dict[str, tuple[subprocess.Popen, int, deque]] = {}  # name -> (process, steps, output tail)
        self._lock = threading.Lock()

    def running(self) -> list[str]:
        with self._lock:
            return [name for name, (process, _, _) in self.jobs.items() if process.poll() is None]

    def start(self, request: TrainRequest) -> str:
        """Start training `request` in the background; returns the run's name."""
        args = request.command(self.runs, self.data_root)
        with self._lock:
            busy = [name for name, (process, _, _) in self.jobs.items() if process.poll() is None]
            if len(busy) >= self.limit:
                raise GanforgeError(f"{', '.join(busy)} is still training: stop it first (at most {self.limit} at "
                                    "a time)")
            if (self.runs / request.name).exists():
                raise GanforgeError(f"a run named {request.name} already exists: pick another name")
            env = dict(os.environ, PYTHONUNBUFFERED="1")
            process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       text=True, env=env)
            tail: deque = deque(maxlen=20)
            threading.Thread(target=_collect, args=(process, tail), daemon=True).start()
            self.jobs[request.name] = (process, int(request.steps), tail)
        return request.name

    def stop(self, name: str | None = None) -> str:
        """Ask a training to stop as Ctrl-C does: it finishes the step and writes a checkpoint."""
        with self._lock:
            live = {n: job for n, job in self.jobs.items() if job[0].poll() is None}
        if not live:
            raise GanforgeError("no training is running")
        name = name if name in live else next(reversed(live))
        self.stopped.add(name)
        live[name][0].send_signal(signal.SIGINT)
        return name

    def wait(self, name: str, timeout: float | None = None) -> int | None:
        """The exit code of training `name` once it has ended (None: still running after `timeout`)."""
        try:
            return self.jobs[name][0].wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def status(self, name: str | None = None) -> tuple[float, str]:
        """(fraction done, one line) for training `name` (default: the latest started)."""
        with self._lock:
            if name is None and self.jobs:
                name = next(reversed(self.jobs))
            job = self.jobs.get(name) if name else None
        if job is None:
            return 0.0, "no training started from this page"
        process, steps, tail = job
        code = process.poll()
        step = self._step(name, final=code is not None)
        if code is None:
            state = "stopping: finishing the step and checkpointing" if name in self.stopped else "training"
        elif code == 0 and step < steps:
            state = f"stopped with a checkpoint; resumable (ganforge train --resume {self.runs / name})"
        elif code == 0:
            state = "finished"
        else:
            state = f"failed (exit code {code}): {tail[-1] if tail else 'no output'}"
        return min(1.0, step / max(1, steps)), f"{name}: step {step} of {steps}, {state}"

    def _step(self, name: str, final: bool) -> int:
        """The step reached: the last checkpoint's once the process has ended, else the last logged one."""
        checkpoint = self.runs / name / "checkpoints" / "last.safetensors"
        if final and checkpoint.is_file():
            from ganforge.training.checkpoint import read_meta

            try:
                return int(read_meta(checkpoint)["step"])
            except GanforgeError:
                return 0
        rows = read_table(self.runs / name / "metrics.csv")
        return int(rows[-1]["step"]) if rows else 0

    def close(self) -> None:
        """Stop every training still running (each checkpoints first) and wait for them."""
        for name in self.running():
            self.stop(name)
            self.wait(name, 60)


def _collect(process: subprocess.Popen, tail: deque) -> None:
    """Keep the last lines the training printed (its errors, its 'stopped at step N' line)."""
    for line in process.stdout:
        if line.strip():
            tail.append(line.strip()[-300:])
