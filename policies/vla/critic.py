"""The VLA's asymmetric critic (``policy.critic=privileged``): a value MLP on proprioception and the simulator's task
state, so PPO's advantages do not hang on what the pixel backbone has learnt to see. The actor still acts from pixels,
instruction and proprioception; the critic is needed only while training in simulation."""

from __future__ import annotations

import torch
from torch import nn


class PrivilegedCritic(nn.Module):
    """V(state, task state): z-scored inputs (statistics fixed when the policy is built) -> MLP -> [N]."""

    MIN_SPREAD = 1e-3  # task-state entries that barely vary over the first resets (a grasp flag, a resting cube's
    # height) are centred but not scaled: a std floored near 0 would blow them up once they change

    def __init__(self, state_dim: int, privileged_dim: int, hidden: int = 256):
        super().__init__()
        self.register_buffer("task_state_mean", torch.zeros(privileged_dim))
        self.register_buffer("task_state_std", torch.ones(privileged_dim))
        self.net = nn.Sequential(nn.Linear(state_dim + privileged_dim, hidden), nn.Tanh(),
                                 nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    @torch.no_grad()
    def fit_task_state(self, task_states: torch.Tensor) -> None:
        """Mean/std of task states [N, E] that z-score the input; std 1 where the spread is under MIN_SPREAD (one
        sample included)."""
        task_states = task_states.float()
        std = task_states.std(0, unbiased=False)  # [E]; 0 (not NaN) for a single sample
        self.task_state_mean.copy_(task_states.mean(0))
        self.task_state_std.copy_(torch.where(std < self.MIN_SPREAD, torch.ones_like(std), std))

    def forward(self, state: torch.Tensor, obs: dict) -> torch.Tensor:
        """``state`` [N, S] already normalised; ``obs["privileged"]`` [N, E] in env units -> values [N]."""
        if "privileged" not in obs:
            raise ValueError("policy.critic=privileged reads the simulator's task state (obs['privileged']), which "
                             "these observations lack: use policy.critic=backbone where there is no simulator")
        task_state = (obs["privileged"].float() - self.task_state_mean) / self.task_state_std  # [N, E]
        return self.net(torch.cat([state.float(), task_state], dim=-1)).squeeze(-1)
