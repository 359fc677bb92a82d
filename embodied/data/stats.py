"""Per-feature statistics (mean, std, min, max, count) as in LeRobot's meta/stats.json, mergeable across episodes."""

from __future__ import annotations

import numpy as np


def feature_stats(values: np.ndarray, is_image: bool) -> dict:
    """Stats of one episode's values [T, ...]; images [T, H, W, 3] uint8 give per-channel stats in [0, 1], shape [3, 1, 1]."""
    if is_image:
        x = values.reshape(-1, 3).astype(np.float64) / 255.0
        shape = (3, 1, 1)
    else:
        x = values.reshape(values.shape[0], -1).astype(np.float64)
        shape = values.shape[1:] or (1,)
    return {"mean": x.mean(0).reshape(shape), "std": x.std(0).reshape(shape), "min": x.min(0).reshape(shape),
            "max": x.max(0).reshape(shape), "count": np.array([values.shape[0]])}


def merge_stats(a: dict | None, b: dict) -> dict:
    """Stats of the union of two sets of frames (parallel mean/variance combination)."""
    if a is None:
        return b
    na, nb = float(a["count"][0]), float(b["count"][0])
    n = na + nb
    mean = (a["mean"] * na + b["mean"] * nb) / n
    var = (a["std"] ** 2 * na + b["std"] ** 2 * nb + (a["mean"] - b["mean"]) ** 2 * na * nb / n) / n
    return {"mean": mean, "std": np.sqrt(var), "min": np.minimum(a["min"], b["min"]),
            "max": np.maximum(a["max"], b["max"]), "count": np.array([int(n)])}


def to_json(stats: dict[str, dict]) -> dict:
    """Nested lists for meta/stats.json."""
    return {k: {s: np.asarray(v).tolist() for s, v in st.items()} for k, st in stats.items()}


def from_json(body: dict) -> dict[str, dict]:
    """Arrays back from meta/stats.json."""
    return {k: {s: np.asarray(v, dtype=np.float64) for s, v in st.items()} for k, st in body.items()}
