"""Fixed-length rollouts for actor-critic PPO: action chunks, auto-reset, truncation bootstrapping."""

from __future__ import annotations

import torch

from embodied.algorithms.registry import get_advantage, register_collector
from embodied.rollout.episode_stats import EpisodeStats
from embodied.rollout.obs import flatten, rollout_observation, stack_steps, step_chunk


# fixed-length step rollouts: per-step rewards, critic values and episode ends
@register_collector("steps", outputs=("step_rewards", "returns", "old_values"), autoreset=True, pipelines=True)
class StepCollector:
    """Collects ``rollout_steps`` (chunk) steps from every env and computes advantages with the configured estimator.

    One rollout step is three phases, ``infer`` (policy), ``step_chunk`` (simulator) and ``record``
    (bookkeeping), so that a pipelined collector can interleave the phases of two collectors.
    """

    @staticmethod
    def env_steps_per_iteration(algo, num_envs: int, max_episode_steps: int, chunk_size: int) -> int:
        """Env-steps one ``collect()`` takes: every env, ``algo.rollout_steps`` chunks."""
        return num_envs * algo.rollout_steps * chunk_size

    @staticmethod
    def share(algo, workers: int):
        """The settings of one of ``workers`` env workers (each runs its envs for the whole rollout)."""
        return algo

    @staticmethod
    def checks(cfg) -> list[tuple[bool, str]]:
        """Nothing beyond the common checks."""
        return []

    def __init__(self, env, policy, cfg, teacher=None):
        self.env = env
        self.policy = policy
        self.cfg = cfg
        self.teacher = teacher  # algo=opd: its inputs are kept in the rollout beside the policy's
        self.stats = EpisodeStats(env.num_envs, policy.device)
        self.obs = None
        self._steps: dict[str, list] = {}

    def start(self, seed: int) -> None:
        """Reset the envs for the first rollout."""
        self.obs, _ = self.env.reset(seed=seed)

    @torch.no_grad()
    def collect(self) -> tuple[dict, dict]:
        """Returns the flat training batch and rollout metrics."""
        self.begin()
        for _ in range(self.cfg.rollout_steps):
            inferred = self.infer()
            self.record(inferred, step_chunk(self.env, inferred[1]))
        return self.finish()

    def begin(self) -> None:
        """Start a new rollout's step lists."""
        self._steps = {key: [] for key in ("obs", "action", "logprob", "value", "reward", "ended")}

    @torch.no_grad()
    def infer(self) -> tuple:
        """Policy phase on the current observation: (obs with cached features, action [N,T,A], logprob, value [N])."""
        obs = rollout_observation(self.policy, self.obs, self.teacher)  # frozen-tower features, not re-run per epoch
        action, logprob, value = self.policy.act(obs)
        return obs, action, logprob, value

    @torch.no_grad()
    def record(self, inferred: tuple, stepped: tuple) -> None:
        """Bookkeeping phase: fold the simulator's result of ``inferred``'s action into the rollout."""
        obs, action, logprob, value = inferred
        next_obs, reward, term, trunc, info, executed = stepped
        reward = reward.float()
        self.stats.update(reward, executed, info["success"], term | trunc)  # metrics see the env's own reward
        if trunc.any():  # bootstrap a truncated (not terminated) episode with V(its final observation)
            final_value = self.policy.value(info["final_obs"])
            reward = reward + self.cfg.gamma ** self.policy.chunk_size * final_value * (trunc & ~term).float()
        for key, item in zip(self._steps, (obs, action, logprob, value, reward, term | trunc)):
            self._steps[key].append(item)
        self.obs = next_obs

    @torch.no_grad()
    def finish(self) -> tuple[dict, dict]:
        """Advantages over the recorded steps; returns the flat batch and rollout metrics."""
        cfg, steps = self.cfg, self._steps
        values = torch.stack(steps["value"])  # [S, N]
        next_values = torch.cat([values[1:], self.policy.value(self.obs)[None]])  # [S, N]
        advantages, returns = get_advantage(cfg.advantage)(
            torch.stack(steps["reward"]), values, next_values, torch.stack(steps["ended"]),
            gamma=cfg.gamma ** self.policy.chunk_size, lam=cfg.gae_lambda,
        )
        batch = {
            "obs": flatten(stack_steps(steps["obs"])),
            "action": torch.stack(steps["action"]).flatten(0, 1),
            "old_logprob": torch.stack(steps["logprob"]).flatten(0, 1),
            "old_values": values.flatten(),
            "advantages": advantages.flatten(),
            "returns": returns.flatten(),
        }
        metrics = self.stats.pop_summary()
        metrics["env_steps"] = self.env.num_envs * len(steps["value"]) * self.policy.chunk_size
        self._steps = {}
        return batch, metrics

    def state_dict(self) -> dict:
        """Env snapshot and episode bookkeeping for exact resume."""
        return {"env": self.env.get_state(), "stats": self.stats.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a ``state_dict`` snapshot."""
        self.obs = self.env.set_state(state["env"])
        self.stats.load_state_dict(state["stats"])
