"""Ctrl-C and SIGTERM during training: the first asks the loop to stop after its step (it then checkpoints and exits
cleanly), a second Ctrl-C aborts at once."""

from __future__ import annotations

import contextlib
import signal
import threading


@contextlib.contextmanager
def stop_on_signals(trainer):
    """Route SIGINT/SIGTERM to `trainer.stop_reason` while training (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(signum, frame):
        if trainer.stop_reason is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        trainer.stop_reason = "interrupted" if signum == signal.SIGINT else "terminated"

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
