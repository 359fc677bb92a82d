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


def mixture_stats(datasets: list[dict], probabilities) -> dict:
    """Per-feature stats of the mixture that draws a frame from dataset k with probability ``probabilities[k]``.

    Mean and second moment are the probability-weighted ones (the distribution a policy trained on the mixture
    sees), not frame-count weighted; ``count`` is the total number of frames. Features missing from any dataset
    are left out.
    """
    p = [float(x) for x in probabilities]
    shared = [key for key in datasets[0] if all(key in d for d in datasets[1:])]
    out = {}
    for key in shared:
        parts = [{s: np.asarray(v, dtype=np.float64) for s, v in d[key].items()} for d in datasets]
        mean = sum(w * s["mean"] for w, s in zip(p, parts))
        second = sum(w * (s["std"] ** 2 + s["mean"] ** 2) for w, s in zip(p, parts))
        out[key] = {"mean": mean, "std": np.sqrt(np.maximum(second - mean**2, 0.0)),
                    "min": np.minimum.reduce([s["min"] for s in parts]),
                    "max": np.maximum.reduce([s["max"] for s in parts]),
                    "count": np.array([int(sum(s["count"][0] for s in parts))])}
    return out


def to_json(stats: dict[str, dict]) -> dict:
    """Nested lists for meta/stats.json."""
    return {k: {s: np.asarray(v).tolist() for s, v in st.items()} for k, st in stats.items()}


def from_json(body: dict) -> dict[str, dict]:
    """Arrays back from meta/stats.json."""
    return {k: {s: np.asarray(v, dtype=np.float64) for s, v in st.items()} for k, st in body.items()}
