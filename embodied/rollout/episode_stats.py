"""Per-env episode bookkeeping and the exact definitions of the reported metrics.

success_once: the episode reached a success state at any step.
success_at_end: the episode's last step (termination or truncation) was in a success state.
episode_return: sum of rewards of the episode; episode_length: number of control steps.
"""

from __future__ import annotations

import torch


class EpisodeStats:
    """Accumulates per-env returns, lengths and success flags; emits finished episodes."""

    def __init__(self, num_envs: int):
        self.returns = torch.zeros(num_envs)
        self.lengths = torch.zeros(num_envs, dtype=torch.long)
        self.success_once = torch.zeros(num_envs, dtype=torch.bool)
        self.finished: list[dict] = []

    def update(self, rewards: torch.Tensor, steps: torch.Tensor, success: torch.Tensor, done: torch.Tensor) -> None:
        """Fold one (chunk) step: rewards [N] summed over the chunk, steps [N] executed, success [N], done [N]."""
        self.returns += rewards
        self.lengths += steps
        self.success_once |= success
        for i in torch.nonzero(done).flatten().tolist():
            self.finished.append({
                "env": i,
                "episode_return": self.returns[i].item(),
                "episode_length": int(self.lengths[i]),
                "success_once": bool(self.success_once[i]),
                "success_at_end": bool(success[i]),
            })
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
        self.returns, self.lengths, self.success_once = state["returns"], state["lengths"], state["success_once"]
