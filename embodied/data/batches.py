"""Turn LeRobot dataset items into the policy interface's batches, and endless weighted mixtures of datasets."""

from __future__ import annotations

import os

import torch

from embodied.data.reader import LeRobotDataset, dataset_probabilities
from embodied.data.stats import mixture_stats

IMAGE_PREFIX = "observation.images."


def to_policy_batch(items: list[dict]) -> dict:
    """Collate dataset items into ``{"obs": {state, privileged, rgb{cam}, instruction}, "action", "action_is_pad"}``."""
    first = items[0]
    obs: dict = {"state": torch.stack([i["observation.state"] for i in items]).float(),
                 "instruction": [i["task"] for i in items]}
    if "observation.environment_state" in first:
        obs["privileged"] = torch.stack([i["observation.environment_state"] for i in items]).float()
    cams = [k[len(IMAGE_PREFIX):] for k in first if k.startswith(IMAGE_PREFIX)]
    if cams:
        obs["rgb"] = {cam: torch.stack([i[IMAGE_PREFIX + cam] for i in items]) for cam in cams}
    return {"obs": obs, "action": torch.stack([i["action"] for i in items]).float(),  # [B, T, A]
            "action_is_pad": torch.stack([i["action_is_pad"] for i in items])}  # [B, T]


class DemoStream:
    """Endless iterator of policy batches drawn with replacement from weighted LeRobot datasets.

    Dataset k is drawn with probability weights[k] / sum(weights), frames uniformly within it.
    """

    def __init__(self, paths: list[str], weights: list[float], batch_size: int, action_horizon: int, seed: int):
        for path in paths:
            if not os.path.isdir(path):
                raise FileNotFoundError(f"dataset {path} does not exist; record one with embodied-record-demos")
        self.datasets = [LeRobotDataset(p, action_horizon=action_horizon) for p in paths]
        self.dataset_probs = dataset_probabilities(list(weights) or [1.0] * len(paths), len(paths))
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def stats(self) -> dict:
        """Statistics of the weighted mixture (from each meta/stats.json), used to set the policy's normalisation."""
        if len(self.datasets) == 1:
            return self.datasets[0].stats
        return mixture_stats([d.stats for d in self.datasets], self.dataset_probs.tolist())

    def __next__(self) -> dict:
        which = torch.multinomial(self.dataset_probs, self.batch_size, replacement=True, generator=self.generator)
        items = []
        for k in which.tolist():
            frame = int(torch.randint(len(self.datasets[k]), (1,), generator=self.generator))
            items.append(self.datasets[k][frame])
        return to_policy_batch(items)

    def __iter__(self):
        return self
