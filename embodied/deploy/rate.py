"""Fixed-rate control loops: sleep to the next tick (no catch-up burst after an overrun) and keep the periods."""

from __future__ import annotations

import time

import numpy as np


def period_stats(periods_ms: list) -> dict:
    """p50/p99 of control-loop periods and jitter (p99 - p50), milliseconds (NaN when there are none)."""
    if not periods_ms:
        return {"period_p50_ms": float("nan"), "period_p99_ms": float("nan"), "jitter_ms": float("nan")}
    p50, p99 = np.percentile(periods_ms, [50, 99])
    return {"period_p50_ms": float(p50), "period_p99_ms": float(p99), "jitter_ms": float(p99 - p50)}


class FixedRate:
    """``wait()`` at the end of every iteration holds the loop at ``hz``; ``periods_ms`` are the measured ones."""

    def __init__(self, hz: float):
        self.period = 1.0 / hz
        self.periods_ms: list[float] = []
        self._next_tick = time.perf_counter()
        self._last_tick: float | None = None

    def wait(self) -> None:
        """Sleep until the next tick; after an overrun, start counting again from now."""
        self._next_tick += self.period
        delay = self._next_tick - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        else:
            self._next_tick = time.perf_counter()
        now = time.perf_counter()
        if self._last_tick is not None:
            self.periods_ms.append((now - self._last_tick) * 1e3)
        self._last_tick = now
