"""A tiny deterministic BatchedEnv for collector tests: outcomes are set by the reset id, not by physics."""

import numpy as np

from sims.api import ActionSpec, BatchedEnv, ObservationSpec, StepResult


class ScriptedOutcomeEnv(BatchedEnv):
    """Reset id k: k % 3 == 0 every env succeeds, == 1 every env fails, == 2 only even env indices succeed."""

    def __init__(self, num_envs: int, max_episode_steps: int = 3, autoreset: bool = True, reward: float = 0.0):
        super().__init__(num_envs, ActionSpec(1, -1.0, 1.0, ("a",)), ObservationSpec(1, 1, (), 0, 0),
                         max_episode_steps, autoreset=autoreset)
        self.reward = reward
        self.ids = np.zeros(num_envs, dtype=np.int64)

    def _reset_worlds(self, env_ids, rngs):
        self.ids[env_ids] = self.reset_ids[env_ids]

    def _advance(self, actions, env_ids):
        pass

    def _observe(self):
        return {"state": self._elapsed[:, None].astype(np.float32),
                "privileged": (self.ids[:, None] % 3).astype(np.float32), "instruction": [""] * self.num_envs}

    def _evaluate(self):
        kind = self.ids % 3
        even = (np.arange(self.num_envs) % 2) == 0
        success = (kind == 0) | ((kind == 2) & even)
        return StepResult(np.full(self.num_envs, self.reward, np.float32) + success, success,
                          np.zeros(self.num_envs, bool))
