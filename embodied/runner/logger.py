"""Tensorboard scalars and mp4 evaluation videos of a run."""

from __future__ import annotations

import math
import os

import imageio.v2 as imageio
import numpy as np
from torch.utils.tensorboard import SummaryWriter


class StatMeans:
    """Per-key means of update statistics (a key may be missing from some updates: the actor's, while only the
    critics step), from the additions since the last ``take``."""

    def __init__(self):
        self.totals: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, stats: dict) -> None:
        """Count one update's statistics."""
        for key, value in stats.items():
            self.totals[key] = self.totals.get(key, 0.0) + value
            self.counts[key] = self.counts.get(key, 0) + 1

    def take(self) -> dict:
        """The mean of each key since the last call (``{}`` without an addition), then forget them."""
        means = {key: total / self.counts[key] for key, total in self.totals.items()}
        self.totals, self.counts = {}, {}
        return means


class RunLogger:
    """Writes scalars under ``<run>/tb`` and videos under ``<run>/videos``."""

    def __init__(self, run_dir: str):
        self.run_dir = run_dir
        os.makedirs(run_dir, exist_ok=True)
        self.writer = SummaryWriter(os.path.join(run_dir, "tb"))

    def scalars(self, prefix: str, values: dict, step: int) -> None:
        """Log every finite numeric value as ``prefix/name``."""
        for name, value in values.items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                self.writer.add_scalar(f"{prefix}/{name}", value, step)

    def video(self, name: str, frames: list[np.ndarray], fps: int) -> str:
        """Encode frames [H, W, 3] uint8 to ``videos/<name>.mp4``; returns the path."""
        path = os.path.join(self.run_dir, "videos", f"{name}.mp4")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        imageio.mimwrite(path, frames, fps=fps, macro_block_size=1)
        return path

    def close(self) -> None:
        """Flush and close the tensorboard writer."""
        self.writer.close()
