"""Per-env episode bookkeeping and the exact definitions of the reported metrics.

success_once: the episode reached a success state at any step.
success_at_end: the episode's last step (termination or truncation) was in a success state.
episode_return: sum of rewards of the episode; episode_length: number of control steps.
"""

from __future__ import annotations

import torch


class EpisodeStats:
    """Accumulates per-env returns, lengths and success flags; emits finished episodes."""

    def __init__(self, num_envs: int, device: torch.device | str = "cpu"):
        self.returns = torch.zeros(num_envs, device=device)
        self.lengths = torch.zeros(num_envs, dtype=torch.long, device=device)
        self.success_once = torch.zeros(num_envs, dtype=torch.bool, device=device)
        self.finished: list[dict] = []

    def update(self, rewards: torch.Tensor, steps: torch.Tensor, success: torch.Tensor, done: torch.Tensor) -> None:
        """Fold one (chunk) step: rewards [N] summed over the chunk, steps [N] executed, success [N], done [N]."""
        self.returns += rewards
        self.lengths += steps
        self.success_once |= success
        if done.any():  # the finished rows reach the host in one transfer (one sync per step on a GPU)
            ended = torch.nonzero(done).flatten()
            rows = torch.stack([ended.double(), self.returns[ended].double(), self.lengths[ended].double(),
                                self.success_once[ended].double(), success[ended].double()], 1).cpu().tolist()
            self.finished.extend({"env": int(i), "episode_return": ret, "episode_length": int(length),
                                  "success_once": bool(once), "success_at_end": bool(at_end)}
                                 for i, ret, length, once, at_end in rows)
        self.returns[done] = 0.0
        self.lengths[done] = 0
        self.success_once[done] = False

    def pop_summary(self) -> dict:
        """Means over the episodes finished since the last call (empty dict if none)."""
        episodes, self.finished = self.finished, []
        if not episodes:
            return {}
        keys = [k for k in episodes[0] if k != "env"]
        return {key: sum(float(e[key]) for e in episodes) / len(episodes) for key in keys} | {"episodes": len(episodes)}

    def finished_in_env_order(self, num_envs: int) -> list[dict]:
        """The first finished episode of envs 0..num_envs-1, in env order (for evaluation waves)."""
        first: dict[int, dict] = {}
        for episode in self.finished:
            first.setdefault(episode["env"], episode)
        return [{k: v for k, v in first[i].items() if k != "env"} for i in range(num_envs)]

    def state_dict(self) -> dict:
        """Tensors to checkpoint."""
        return {"returns": self.returns.clone(), "lengths": self.lengths.clone(), "success_once": self.success_once.clone()}

    def load_state_dict(self, state: dict) -> None:
        """Restore from ``state_dict``."""
        device = self.returns.device  # a checkpoint is loaded on the CPU
        self.returns, self.lengths, self.success_once = (state[key].to(device) for key in
                                                         ("returns", "lengths", "success_once"))
