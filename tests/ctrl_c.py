"""A Ctrl-C delivered to the test process on the n-th call of a method, as a user's would arrive mid-run."""

import contextlib
import os
import signal

import pytest


@pytest.fixture
def terminal_ctrl_c():
    """SIGINT raises KeyboardInterrupt during the test, as in a terminal, also where the suite runs with SIGINT ignored
    (a background job of a non-interactive shell inherits SIG_IGN)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def ctrl_c_on_call(monkeypatch, owner: type, method: str, call: int):
    """Within the block, ``owner.method`` sends SIGINT to this process on its ``call``-th call, then runs as usual."""
    original, calls = getattr(owner, method), []

    def interrupted(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            os.kill(os.getpid(), signal.SIGINT)  # arrives while this call runs
        return original(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(owner, method, interrupted)
        yield
