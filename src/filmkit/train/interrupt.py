"""Ctrl-C and SIGTERM during training: finish the step, save the checkpoint, say how to go on.

The first SIGINT or SIGTERM only raises a flag that the training loop reads after each step; the loop then writes
``last.pt`` at that step (atomically) and raises `TrainingInterrupted`. A second signal exits at once: a user who
presses Ctrl-C twice wants out now, and the atomic writes mean nothing half-written is left behind.
"""

from __future__ import annotations

import shlex
import signal
import threading
from pathlib import Path

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(Exception):
    """Training stopped on a signal after saving its checkpoint; ``exit_code`` is the shell's 128 + signal."""

    def __init__(self, signum: int, step: int, run_dir: Path):
        self.signum, self.step, self.run_dir = signum, step, run_dir
        self.exit_code = 128 + signum
        self.resume_command = shlex.join(["filmkit", "train", "--resume", str(run_dir)])  # a command may say better
        super().__init__(f"{signal.Signals(signum).name} at step {step}: saved {run_dir / 'last.pt'}")


class StopRequests:
    """While entered, SIGINT and SIGTERM set ``signum`` instead of stopping the process (main thread only)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():  # Python lets only the main thread set handlers
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._request)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _request(self, signum: int, frame) -> None:
        if self.signum is not None:
            raise SystemExit(128 + signum)  # the second signal: out at once
        self.signum = signum
