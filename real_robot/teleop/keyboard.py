"""Keyboard teleoperation: pynput when an X session is reachable, otherwise the terminal itself (works over SSH
and on Wayland, where pynput cannot hook keys).

Keys: w/s = +x/-x, a/d = +y/-y, r/f = up/down, space = toggle the gripper, Enter or n = finish the episode,
Backspace or b = discard and re-record it, Esc or q = stop the session. In the terminal a key moves the arm for
``hold_s`` after each press (held keys auto-repeat); with pynput it moves while the key is down.
"""

from __future__ import annotations

import logging
import sys
import threading
import time

import numpy as np

from real_robot.teleop.device import TeleopCommand, TeleopDevice, register_device
from real_robot.terminal import KeyReader

log = logging.getLogger("real_robot.teleop")

MOTION_KEYS = {"w": (0, 1.0), "s": (0, -1.0), "a": (1, 1.0), "d": (1, -1.0), "r": (2, 1.0), "f": (2, -1.0)}
EVENT_KEYS = {"enter": "finish", "n": "finish", "backspace": "rerecord", "b": "rerecord", "esc": "stop",
              "q": "stop"}
TERMINAL_NAMES = {"\r": "enter", "\n": "enter", "\x7f": "backspace", "\x08": "backspace", "\x1b": "esc",
                  " ": "space"}


@register_device("keyboard")
class KeyboardDevice(TeleopDevice):
    """End-effector teleop from the keyboard (``backend``: auto | pynput | terminal)."""

    def __init__(self, speed: float = 1.0, backend: str = "auto", hold_s: float = 0.15, fd: int | None = None):
        super().__init__(speed)
        if backend not in ("auto", "pynput", "terminal"):
            raise ValueError(f"keyboard backend must be auto, pynput or terminal, got {backend!r}")
        self.backend, self.hold_s, self.fd = backend, hold_s, fd
        self._held: dict[str, float] = {}  # key -> time until which it counts as held
        self._events: list[str] = []
        self._lock = threading.Lock()
        self._listener = None
        self._terminal: KeyReader | None = None

    # ------------------------------------------------------------------------------------ key state
    def press(self, key: str, until: float = float("inf")) -> None:
        """Register a key press (called by the backends; public so a GUI can feed keys too)."""
        with self._lock:
            if key == "space":
                self.gripper = -self.gripper
            elif key in EVENT_KEYS:
                self._events.append(EVENT_KEYS[key])
            if key in MOTION_KEYS:
                self._held[key] = until

    def release(self, key: str) -> None:
        """Register a key release."""
        with self._lock:
            self._held.pop(key, None)

    def _read(self, robot_obs) -> TeleopCommand:
        if self._listener is None:
            self._poll_terminal()
        now = time.monotonic()
        with self._lock:
            translation = np.zeros(3)
            for key, until in list(self._held.items()):
                if until < now:
                    del self._held[key]
                    continue
                axis, sign = MOTION_KEYS[key]
                translation[axis] += sign
            events, self._events = frozenset(self._events), []
        return TeleopCommand(translation=translation, gripper=self.gripper, events=events)

    # -------------------------------------------------------------------------------------- backends
    def _connect(self) -> None:
        if self.backend in ("auto", "pynput"):
            try:
                self._start_pynput()
                return
            except Exception as error:  # noqa: BLE001 - no X server, no permissions, no pynput: use the terminal
                if self.backend == "pynput":
                    raise ImportError(f"pynput cannot listen to the keyboard here ({error}); use "
                                      "device.backend=terminal, or pip install 'embodied-vla[teleop]'") from error
                log.info("pynput unavailable (%s): reading keys from the terminal", error)
        self._start_terminal()

    def _start_pynput(self) -> None:
        from pynput import keyboard  # raises without an X server

        def name(key) -> str | None:
            char = getattr(key, "char", None)
            return char.lower() if char else getattr(key, "name", None)

        self._listener = keyboard.Listener(on_press=lambda k: self.press(name(k)) if name(k) else None,
                                           on_release=lambda k: self.release(name(k)) if name(k) else None)
        self._listener.start()

    def _start_terminal(self) -> None:
        if self.fd is None:
            if sys.stdin is None or not sys.stdin.isatty():
                raise RuntimeError("the keyboard device needs a terminal (stdin is not one) or an X session; "
                                   "use device=scripted for unattended recording")
            self.fd = sys.stdin.fileno()
        self._terminal = KeyReader(self.fd)
        self._terminal.open()

    def _poll_terminal(self) -> None:
        while data := self._terminal.read():  # '' (nothing typed) and None (input ended) both stop
            until = time.monotonic() + self.hold_s
            for char in data:
                key = TERMINAL_NAMES.get(char, char.lower())
                self.press(key, until)

    def _disconnect(self) -> None:
        if self._listener is not None:
            self._listener.stop()
            self._listener = None
        if self._terminal is not None:
            self._terminal.close()
            self._terminal = None
