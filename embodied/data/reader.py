"""Read LeRobot v3.0 datasets as a torch Dataset: frames with action chunks, decoded videos, weighted mixing."""

from __future__ import annotations

import json
import os
from collections import OrderedDict

import numpy as np
import torch

from embodied.data import lerobot_format as fmt
from embodied.data.stats import from_json, stats_from_episode_rows
from embodied.data.video import decode_video


class LeRobotDataset(torch.utils.data.Dataset):
    """Frame ``i`` -> every feature at frame i, plus ``action`` as a chunk of ``action_horizon`` frames.

    The chunk holds frames i .. i + horizon - 1 of the same episode; past the episode's end the last action is
    repeated and ``action_is_pad`` marks those steps (LeRobot's delta-timestamp padding). Only the episodes
    committed in meta/info.json are read. Videos are decoded one episode at a time and kept in an LRU cache of
    ``video_cache_bytes`` decoded frames (default 2 GiB: a few hundred 64x64 episodes stay decoded, so random
    minibatches do not decode the same videos again and again).
    """

    def __init__(self, root: str, action_horizon: int = 1, video_cache_bytes: int = 2 << 30):
        import pandas as pd

        self.root = root
        self.info = fmt.load_info(root)
        self.fps = float(self.info["fps"])
        self.features = self.info["features"]
        self.video_keys = fmt.video_keys(self.features)
        self.action_horizon = action_horizon
        n = int(self.info["total_episodes"])
        self.episodes = fmt.read_episode_rows(root, n)
        tasks = pd.read_parquet(os.path.join(root, "meta", "tasks.parquet"))
        self.task_names = {int(i): str(t) for t, i in zip(tasks.index, tasks["task_index"])}
        with open(os.path.join(root, "meta", "stats.json")) as f:
            self.stats = from_json(json.load(f))
        frames_measured = self.stats.get("index", {}).get("count", [self.info["total_frames"]])[0]
        if int(frames_measured) != int(self.info["total_frames"]):  # a save was killed after stats.json
            self.stats = stats_from_episode_rows(self.episodes, self.features) or self.stats
        files = sorted({(r["data/chunk_index"], r["data/file_index"]) for r in self.episodes})
        parts = [self._read_data_file(fmt.DATA_PATH.format(chunk_index=c, file_index=f), n) for c, f in files]
        columns = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]} if parts else {}
        order = np.argsort(columns["index"]) if parts else np.zeros(0, int)
        self.columns = {key: column[order] for key, column in columns.items()}
        if len(order) != int(self.info["total_frames"]):
            raise ValueError(f"{root}: {len(order)} committed frames, info.json says {self.info['total_frames']}")
        starts = np.array([r["dataset_from_index"] for r in self.episodes])
        self.episode_of_frame = np.searchsorted(starts, np.arange(len(order)), side="right") - 1
        self._video_cache: OrderedDict = OrderedDict()
        self._cache_budget = video_cache_bytes
        self._cache_bytes = 0

    def _read_data_file(self, relative_path: str, committed: int) -> dict[str, np.ndarray]:
        """The declared features of one data file's committed rows, as numpy arrays (files may differ in list
        types: LeRobot writes fixed-size lists, older datasets of ours variable ones)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.read_table(os.path.join(self.root, relative_path))
        table = table.filter(pa.array(np.asarray(table.column("episode_index")) < committed))
        missing = [key for key in self.features if key not in self.video_keys and key not in table.column_names]
        if missing:
            raise ValueError(f"{self.root}: meta/info.json declares {missing} but {relative_path} has no such column")
        return {key: table.column(key).to_numpy() if key in fmt.DEFAULT_FEATURES else
                np.stack(table.column(key).to_numpy(zero_copy_only=False)).reshape(table.num_rows, -1)
                for key in self.features if key not in self.video_keys}

    def __len__(self) -> int:
        return len(self.episode_of_frame)

    def episode_frames(self, ep: int, key: str) -> np.ndarray:
        """Decoded frames [length, H, W, 3] of one camera of one episode (LRU cached within the byte budget)."""
        if (ep, key) in self._video_cache:
            self._video_cache.move_to_end((ep, key))
            return self._video_cache[(ep, key)]
        row = self.episodes[ep]
        path = os.path.join(self.root, fmt.VIDEO_PATH.format(
            video_key=key, chunk_index=row[f"videos/{key}/chunk_index"], file_index=row[f"videos/{key}/file_index"]))
        frames = decode_video(path, row[f"videos/{key}/from_timestamp"], row["length"], self.fps)
        self._video_cache[(ep, key)] = frames
        self._cache_bytes += frames.nbytes
        while self._cache_bytes > self._cache_budget and len(self._video_cache) > 1:  # evict least recently used
            self._cache_bytes -= self._video_cache.popitem(last=False)[1].nbytes
        return frames

    def __getitem__(self, index: int) -> dict:
        ep = int(self.episode_of_frame[index])
        row = self.episodes[ep]
        start, end = row["dataset_from_index"], row["dataset_to_index"]
        item = {}
        for key, column in self.columns.items():
            if key in fmt.DEFAULT_FEATURES:
                item[key] = torch.as_tensor(column[index])
            elif key != "action":
                item[key] = torch.as_tensor(column[index]).reshape(self.features[key]["shape"])
        steps = np.arange(index, index + self.action_horizon)
        item["action"] = torch.as_tensor(self.columns["action"][np.minimum(steps, end - 1)])  # [T, A]
        item["action_is_pad"] = torch.as_tensor(steps >= end)
        for key in self.video_keys:
            item[key] = torch.as_tensor(self.episode_frames(ep, key)[index - start])  # uint8 [H, W, 3]
        item["task"] = self.task_names[int(self.columns["task_index"][index])]
        return item


def dataset_probabilities(weights: list[float], count: int) -> torch.Tensor:
    """Mixture weights of ``count`` datasets normalised to probabilities [count] (validated)."""
    if len(weights) != count or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"need one non-negative weight per dataset with a positive sum, got {weights}")
    return torch.tensor(weights, dtype=torch.float64) / sum(weights)


def mixture_sampler(datasets: list[torch.utils.data.Dataset], weights: list[float], num_samples: int,
                    seed: int = 0) -> torch.utils.data.WeightedRandomSampler:
    """Sampler over ``ConcatDataset(datasets)`` drawing dataset k with probability weights[k] / sum(weights)."""
    probs = dataset_probabilities(weights, len(datasets))
    per_sample = torch.cat([torch.full((len(d),), float(p) / len(d)) for d, p in zip(datasets, probs)])
    return torch.utils.data.WeightedRandomSampler(per_sample, num_samples, replacement=True,
                                                  generator=torch.Generator().manual_seed(seed))
