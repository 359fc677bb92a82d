"""Advantage estimators: GAE for actor-critic PPO, group-normalised returns for GRPO."""

from __future__ import annotations

import torch

from embodied.algorithms.registry import register_advantage


@register_advantage("gae", needs=("step_rewards",))
def gae(rewards, values, next_values, episode_end, gamma: float, lam: float):
    """Generalised advantage estimation over a rollout of S steps and N envs.

    rewards [S, N]: reward of step t; for a truncated episode the collector has already added
        gamma * V(final observation), so no step that ends an episode bootstraps from next_values
    values [S, N]: V(s_t); next_values [S, N]: V(s_{t+1}) (ignored where the episode ended at t)
    episode_end [S, N]: the episode ended at step t (terminated or truncated)
    Returns advantages [S, N] and returns (advantages + values) [S, N].
    """
    assert rewards.shape == values.shape == next_values.shape == episode_end.shape
    steps = rewards.shape[0]
    not_end = 1.0 - episode_end.float()
    delta = rewards + gamma * next_values * not_end - values  # [S, N] TD errors
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in reversed(range(steps)):
        running = delta[t] + gamma * lam * not_end[t] * running
        advantages[t] = running
    return advantages, advantages + values


@register_advantage("grpo", needs=("episode_returns",))
def group_normalized(returns: torch.Tensor, group_size: int, eps: float = 1e-6, scale_by_std: bool = True):
    """GRPO advantage of each trajectory: its return minus the group mean, over the group std.

    returns [B] with B = num_groups * group_size, groups contiguous. Returns [B] (broadcast to steps later).
    """
    assert returns.ndim == 1 and returns.shape[0] % group_size == 0, "returns must be [num_groups * group_size]"
    grouped = returns.view(-1, group_size)  # [G, K]
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    if scale_by_std:
        centred = centred / (grouped.std(dim=1, unbiased=False, keepdim=True) + eps)
    return centred.reshape(-1)
