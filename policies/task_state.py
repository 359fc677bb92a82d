"""The auxiliary task-state head of pixel policies' SFT (``policy.aux_state_coef``): the simulator's task state
(``observation.environment_state``: object and goal positions, the commanded cube, ...) predicted from the policy's
image features. It teaches the image towers where things are; the policy still acts from pixels (and instruction and
proprioception) only, and an RL run from the SFT start leaves the head behind."""

from __future__ import annotations

from typing import Callable

import torch


def task_state_slice(dims, privileged_dim: int) -> slice:
    """``policy.aux_state_dims`` ([first, stop) of the task state, or None: all of it) as a slice, checked."""
    if dims is None:
        return slice(0, privileged_dim)
    if (not isinstance(dims, (list, tuple)) or len(dims) != 2 or not all(type(i) is int for i in dims)
            or not 0 <= dims[0] < dims[1] <= privileged_dim):
        raise ValueError(f"policy.aux_state_dims must be [first, stop) with 0 <= first < stop <= {privileged_dim} "
                         f"(the env's task-state size), or null for all of it; got {dims!r}")
    return slice(dims[0], dims[1])


class TaskStateHead:
    """Mixin of a ``torch.nn.Module`` policy: ``task_state_head``, the target's z-score buffers and the loss (the
    attribute names are those its saved weights carry)."""

    def init_task_state_head(self, config: dict, make_head: Callable[[int], torch.nn.Module]) -> None:
        """``aux_state_coef`` and ``aux_state_dims`` of ``config``, checked; with a coefficient, the head
        ``make_head(privileged_dim)`` (features -> task state) and the z-score buffers."""
        self.aux_state_coef = float(config.get("aux_state_coef", 0.0))
        if self.aux_state_coef:
            privileged_dim = int(config.get("privileged_dim", 0))
            if self.aux_state_coef < 0:
                raise ValueError(f"policy.aux_state_coef must be > 0 (0 turns the head off), got {self.aux_state_coef}")
            if privileged_dim <= 0:
                raise ValueError(f"policy.aux_state_coef={self.aux_state_coef} needs the env's task state, but the env "
                                 f"has none (privileged_dim={privileged_dim}): set policy.aux_state_coef=0")
            self.task_state_head = make_head(privileged_dim)
            self.aux_state_dims = task_state_slice(config.get("aux_state_dims"), privileged_dim)
            self.register_buffer("task_state_mean", torch.zeros(privileged_dim))
            self.register_buffer("task_state_std", torch.ones(privileged_dim))
        elif config.get("aux_state_dims") is not None:
            raise ValueError(f"policy.aux_state_dims={config['aux_state_dims']!r} scores a part of the auxiliary "
                             "task-state loss, which policy.aux_state_coef=0 turns off; set a coefficient > 0 or "
                             "policy.aux_state_dims=null")

    @torch.no_grad()
    def set_task_state_stats(self, mean, std) -> None:
        """Mean/std that z-score the auxiliary task-state target (std floored at 0.01)."""
        self.task_state_mean.copy_(torch.as_tensor(mean, dtype=torch.float32).reshape(-1))
        self.task_state_std.copy_(torch.as_tensor(std, dtype=torch.float32).reshape(-1).clamp(min=0.01))

    def task_state_stats_from(self, stats: dict) -> None:
        """The target's z-score from a dataset's ``observation.environment_state`` statistics, with a head."""
        if self.aux_state_coef and "observation.environment_state" in stats:
            task_state = stats["observation.environment_state"]
            self.set_task_state_stats(task_state["mean"], task_state["std"])

    def task_state_loss(self, features: torch.Tensor, task_state: torch.Tensor) -> torch.Tensor:
        """``aux_state_coef`` x the mean squared error of the z-scored task state predicted from ``features``
        [N, F], over the ``aux_state_dims`` of it; ``task_state`` [N, E] in env units."""
        target = (task_state.float() - self.task_state_mean) / self.task_state_std  # [N, E]
        error = (self.task_state_head(features) - target)[:, self.aux_state_dims]  # [N, E'] the scored part
        return self.aux_state_coef * error.pow(2).mean()
