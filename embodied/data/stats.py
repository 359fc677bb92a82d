"""Per-feature statistics as in LeRobot's meta/stats.json (mean, std, min, max, count and the quantiles q01, q10,
q50, q90, q99), mergeable across episodes and datasets.

Quantiles follow LeRobot's estimator exactly (``lerobot.datasets.compute_stats``), so that its QUANTILES
normalisation reads our datasets: per episode and dimension a 5000-bin histogram between min - 1e-10 and
max + 1e-10 in the data's own dtype, linear interpolation inside the bin that holds q * count; across episodes
the count-weighted mean of the episodes' quantiles. Images are sampled and measured as LeRobot does (at most
~n^0.75 evenly spaced frames, per-channel pixel statistics scaled to [0, 1]); their std is computed in float64
(LeRobot 0.4.4 squares uint8 pixels and overflows, so its image std differs).
"""

from __future__ import annotations

import numpy as np

QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}  # LeRobot's DEFAULT_QUANTILES
QUANTILE_BINS = 5000


def sample_frame_indices(length: int) -> np.ndarray:
    """Frames LeRobot measures for image statistics: all of up to 100, then ~length^0.75 evenly spaced."""
    count = length if length < 100 else max(100, min(int(length**0.75), 10_000))
    return np.round(np.linspace(0, length - 1, count)).astype(int)


def histogram_quantiles(x: np.ndarray) -> dict[str, np.ndarray]:
    """LeRobot's histogram quantiles of the rows of ``x`` [n, d] (n >= 2), each [d], in float64."""
    n = x.shape[0]
    out = {key: np.empty(x.shape[1]) for key in QUANTILES}
    for i in range(x.shape[1]):
        column = x[:, i]
        lo, hi = column.min(), column.max()  # numpy scalars: the 1e-10 margin is taken in the data's dtype
        edges = np.linspace(lo - 1e-10, hi + 1e-10, QUANTILE_BINS + 1)
        cumsum = np.cumsum(np.histogram(column, bins=edges)[0].astype(np.float64))
        for key, q in QUANTILES.items():
            target = q * n
            k = int(np.searchsorted(cumsum, target))
            if k == 0:
                out[key][i] = edges[0]
            elif k >= len(cumsum):
                out[key][i] = edges[-1]
            else:
                in_bin = cumsum[k] - cumsum[k - 1]
                out[key][i] = edges[k] if in_bin == 0 else \
                    edges[k] + (target - cumsum[k - 1]) / in_bin * (edges[k + 1] - edges[k])
    return out


def feature_stats(values: np.ndarray, is_image: bool) -> dict:
    """Stats of one episode's values [T, ...]; images [T, H, W, 3] uint8 give per-channel stats in [0, 1], shape [3, 1, 1]."""
    if is_image:
        frames = values[sample_frame_indices(values.shape[0])]
        if max(frames.shape[1:3]) >= 300:  # LeRobot measures large images at about 150 px
            step = int(max(frames.shape[1:3]) / 150)
            frames = frames[:, ::step, ::step]
        raw, count, shape, scale = frames.reshape(-1, 3), frames.shape[0], (3, 1, 1), 255.0
    else:
        raw = values.reshape(values.shape[0], -1)
        count, shape, scale = values.shape[0], values.shape[1:] or (1,), 1.0
    x = raw.astype(np.float64) / scale
    stats = {"mean": x.mean(0), "std": x.std(0), "min": x.min(0), "max": x.max(0)}
    if raw.shape[0] >= 2:
        stats |= {key: q / scale for key, q in histogram_quantiles(raw).items()}
    else:  # one sample: LeRobot sets every quantile to the mean
        stats |= {key: stats["mean"].copy() for key in QUANTILES}
    return {key: v.reshape(shape) for key, v in stats.items()} | {"count": np.array([count])}


def merge_stats(a: dict | None, b: dict) -> dict:
    """Stats of the union of two sets of frames (parallel mean/variance combination; quantiles count-weighted,
    as LeRobot aggregates them, when both sides have them)."""
    if a is None:
        return b
    na, nb = float(a["count"][0]), float(b["count"][0])
    n = na + nb
    mean = (a["mean"] * na + b["mean"] * nb) / n
    var = (a["std"] ** 2 * na + b["std"] ** 2 * nb + (a["mean"] - b["mean"]) ** 2 * na * nb / n) / n
    merged = {"mean": mean, "std": np.sqrt(var), "min": np.minimum(a["min"], b["min"]),
              "max": np.maximum(a["max"], b["max"]), "count": np.array([int(n)])}
    return merged | {key: (a[key] * na + b[key] * nb) / n for key in QUANTILES if key in a and key in b}


def mixture_stats(datasets: list[dict], probabilities) -> dict:
    """Per-feature stats of the mixture that draws a frame from dataset k with probability ``probabilities[k]``.

    Mean and second moment are the probability-weighted ones (the distribution a policy trained on the mixture
    sees), not frame-count weighted; quantiles are probability-weighted too (when every dataset has them);
    ``count`` is the total number of frames. Features missing from any dataset are left out.
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
        out[key] |= {q: sum(w * s[q] for w, s in zip(p, parts)) for q in QUANTILES if all(q in s for s in parts)}
    return out


def stats_from_episode_rows(rows: list[dict], features: dict) -> dict | None:
    """Dataset stats merged from the per-episode ``stats/<feature>/<stat>`` columns of the episodes table (the
    committed episodes only, unlike a meta/stats.json that a crash may have left one episode ahead); None when
    a row lacks them."""
    merged: dict = {}
    for row in rows:
        for key, spec in features.items():
            names = [n for n in ("mean", "std", "min", "max", "count", *QUANTILES) if f"stats/{key}/{n}" in row]
            if not {"mean", "std", "min", "max", "count"} <= set(names):
                return None
            shape = (3, 1, 1) if spec["dtype"] == "video" else tuple(spec["shape"])
            one = {n: np.asarray(row[f"stats/{key}/{n}"], dtype=np.float64).reshape((1,) if n == "count" else shape)
                   for n in names}
            merged[key] = merge_stats(merged.get(key), one)
    return merged


def to_json(stats: dict[str, dict]) -> dict:
    """Nested lists for meta/stats.json."""
    return {k: {s: np.asarray(v).tolist() for s, v in st.items()} for k, st in stats.items()}


def from_json(body: dict) -> dict[str, dict]:
    """Arrays back from meta/stats.json."""
    return {k: {s: np.asarray(v, dtype=np.float64) for s, v in st.items()} for k, st in body.items()}
