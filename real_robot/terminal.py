"""Single key presses from a terminal, or any readable file descriptor (a pipe in tests): cbreak mode, so a
key counts without Enter, and reads that never block longer than asked."""

from __future__ import annotations

import os
import select


class KeyReader:
    """``open()`` puts a terminal in cbreak mode, ``close()`` restores it; ``read(timeout)`` returns the
    characters typed so far ('' when none arrive within ``timeout`` s), or None at the end of the input."""

    def __init__(self, fd: int):
        self.fd = fd
        self._saved = None

    def open(self) -> None:
        """cbreak mode when ``fd`` is a terminal (pipes need nothing)."""
        if os.isatty(self.fd):
            import termios
            import tty

            self._saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)

    def close(self) -> None:
        """Restore the terminal's previous mode (safe to call twice)."""
        if self._saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None

    def read(self, timeout: float = 0.0) -> str | None:
        """Available characters, '' when nothing arrived within ``timeout``, None when the input has ended."""
        if not select.select([self.fd], [], [], timeout)[0]:
            return ""
        data = os.read(self.fd, 64)
        return data.decode(errors="ignore") if data else None
