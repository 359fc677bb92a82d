"""Running mean/variance normaliser whose statistics are saved with the policy."""

from __future__ import annotations

import torch
from torch import nn


class RunningNormalizer(nn.Module):
    """Normalises features with running statistics (parallel-variance update, Chan et al.)."""

    def __init__(self, dim: int, clip: float = 10.0, eps: float = 1e-8):
        super().__init__()
        self.clip = clip
        self.eps = eps
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("var", torch.ones(dim))
        self.register_buffer("count", torch.tensor(0.0))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Fold a batch [B, dim] into the statistics."""
        x = x.reshape(-1, self.mean.shape[0]).to(self.mean.dtype)
        batch_mean = x.mean(0)
        batch_var = x.var(0, unbiased=False)
        n = x.shape[0]
        total = self.count + n
        delta = batch_mean - self.mean
        self.mean += delta * n / total
        self.var = (self.var * self.count + batch_var * n + delta.pow(2) * self.count * n / total) / total
        self.count = total

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.mean) / torch.sqrt(self.var + self.eps)).clamp(-self.clip, self.clip)


STATS_FEATURES = {"state": "observation.state", "privileged": "observation.environment_state"}


def normalizer_from_stats(normalizer: RunningNormalizer, stats: dict, obs_keys: list[str]) -> None:
    """Set ``normalizer`` from a LeRobot meta/stats.json for the concatenation of ``obs_keys``."""
    missing = [STATS_FEATURES[k] for k in obs_keys if STATS_FEATURES[k] not in stats]
    if missing:
        raise KeyError(f"dataset statistics lack {missing}, which this policy's obs_keys {obs_keys} need; "
                       "datasets recorded on robots (teleop, deploy) have no privileged state: train with "
                       "policy.obs_keys=[state]")
    mean = torch.cat([torch.as_tensor(stats[STATS_FEATURES[k]]["mean"]).flatten() for k in obs_keys]).float()
    std = torch.cat([torch.as_tensor(stats[STATS_FEATURES[k]]["std"]).flatten() for k in obs_keys]).float()
    with torch.no_grad():
        normalizer.mean.copy_(mean)
        normalizer.var.copy_(std.pow(2).clamp(min=1e-6))
        normalizer.count.fill_(float(stats["observation.state"]["count"][0]))

