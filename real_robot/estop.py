"""A key e-stop: a thread that watches a terminal (or any readable file descriptor) and calls ``on_stop`` when
one of the stop keys arrives. Works over SSH (no X server or input hooks needed): the terminal is put in
cbreak mode so a single key press counts, and restored afterwards."""

from __future__ import annotations

import logging
import threading
from typing import Callable

from real_robot.terminal import KeyReader

log = logging.getLogger("real_robot.estop")

DEFAULT_STOP_KEYS = " q\x1b"  # space, q, Esc


def describe_key(key: str) -> str:
    """A printable name for a stop key."""
    return {" ": "space", "\x1b": "Esc"}.get(key, repr(key))


class KeyEStop:
    """Calls ``on_stop("operator e-stop (key ...)")`` once when a stop key is read from ``fd``."""

    def __init__(self, on_stop: Callable[[str], None], keys: str = DEFAULT_STOP_KEYS, fd: int | None = None,
                 poll_s: float = 0.05):
        if not keys:
            raise ValueError("KeyEStop needs at least one stop key, e.g. keys=' q'")
        self.on_stop, self.keys, self.poll_s = on_stop, keys, poll_s
        self.keys_in = KeyReader(fd if fd is not None else 0)  # stdin by default
        self.triggered: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "KeyEStop":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        """Put a terminal in cbreak mode (no Enter needed) and start watching."""
        self.keys_in.open()
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="key-estop", daemon=True)
        self._thread.start()
        log.info("e-stop keys: %s", ", ".join(describe_key(k) for k in self.keys))

    def stop(self) -> None:
        """Stop watching and restore the terminal."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None
        self.keys_in.close()

    def _watch(self) -> None:
        while not self._stop.is_set():
            data = self.keys_in.read(self.poll_s)
            if data is None:  # end of input (a closed pipe): nothing more can arrive
                return
            pressed = next((k for k in data if k in self.keys), None)
            if pressed is not None:
                self.triggered = pressed
                self.on_stop(f"operator e-stop (key {describe_key(pressed)})")
                return
