"""Normalisation statistics stored with a policy: state mean/std and action bounds. Never a silent identity."""

from __future__ import annotations

import torch
from torch import nn


class MissingStatsError(RuntimeError):
    """A policy was used or loaded without its normalisation statistics."""


class NormalizationStats(nn.Module):
    """State z-scoring and action scaling to [-1, 1]; raises until ``set`` has been called."""

    def __init__(self, state_dim: int, action_dim: int):
        super().__init__()
        self.register_buffer("state_mean", torch.zeros(state_dim))
        self.register_buffer("state_std", torch.ones(state_dim))
        self.register_buffer("action_low", -torch.ones(action_dim))
        self.register_buffer("action_high", torch.ones(action_dim))
        self.register_buffer("is_set", torch.tensor(False))

    @torch.no_grad()
    def set(self, state_mean, state_std, action_low, action_high) -> None:
        """Install statistics (from a dataset's stats.json or an env's specs); validates shapes and ranges."""
        values = [torch.as_tensor(v, dtype=torch.float32) for v in (state_mean, state_std, action_low, action_high)]
        for name, value, buffer in zip(("state_mean", "state_std", "action_low", "action_high"), values,
                                       (self.state_mean, self.state_std, self.action_low, self.action_high)):
            if value.shape != buffer.shape or not torch.isfinite(value).all():
                raise ValueError(f"{name} must be finite with shape {tuple(buffer.shape)}, got {tuple(value.shape)}")
        if (values[1] <= 0).any() or (values[3] <= values[2]).any():
            raise ValueError("state_std must be > 0 and action_high > action_low in every dimension")
        self.state_mean.copy_(values[0])
        self.state_std.copy_(values[1])
        self.action_low.copy_(values[2])
        self.action_high.copy_(values[3])
        self.is_set.fill_(True)

    def check(self) -> None:
        """Raise MissingStatsError unless statistics were installed."""
        if not bool(self.is_set):
            raise MissingStatsError("this policy has no normalisation statistics; call policy.set_stats(...) with "
                                    "the training data's state mean/std and action bounds before using it")

    def normalize_state(self, state: torch.Tensor) -> torch.Tensor:
        self.check()
        return (state.float() - self.state_mean) / self.state_std

    def normalize_action(self, action: torch.Tensor) -> torch.Tensor:
        """Env units -> [-1, 1]."""
        self.check()
        return 2 * (action - self.action_low) / (self.action_high - self.action_low) - 1

    def unnormalize_action(self, action: torch.Tensor) -> torch.Tensor:
        """[-1, 1] -> env units."""
        self.check()
        return self.action_low + (action + 1) / 2 * (self.action_high - self.action_low)
