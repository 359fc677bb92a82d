"""Ctrl-C ends a run cleanly: the first SIGINT asks it to stop after the current step (a checkpoint and the
policy are written), a second one stops at once."""

from __future__ import annotations

import logging
import signal
import threading


class GracefulStop:
    """Context manager; ``requested`` turns true at the first SIGINT (only in the main thread of one process:
    data-parallel ranks would disagree on where to stop)."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.requested = False
        self._previous = None

    def __enter__(self) -> "GracefulStop":
        if self.enabled:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:  # the second Ctrl-C: stop now
            signal.signal(signal.SIGINT, self._previous)
            raise KeyboardInterrupt
        self.requested = True
        logging.getLogger("embodied-train").warning(
            "\nCtrl-C: stopping after this step and saving a checkpoint and the policy (Ctrl-C again to quit now)")

    def __exit__(self, *exc) -> None:
        if self.enabled:
            signal.signal(signal.SIGINT, self._previous)
