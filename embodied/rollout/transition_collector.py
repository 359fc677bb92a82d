"""Whole transitions for a replay buffer: the collector of off-policy env workers (SAC, RLPD, WSRL with
``dist=local|ray``). The learner stores each step in its buffer and pays the updates it owes for it."""

from __future__ import annotations

import dataclasses
import math

import torch

from embodied.algorithms.registry import register_collector
from embodied.rollout.episode_stats import EpisodeStats
from embodied.rollout.obs import concat, stack_steps

STEP_KEYS = ("obs", "action", "reward", "terminated", "truncated", "final_obs")


def uniform_actions(spec, num_envs: int, device, generator: torch.Generator | None = None) -> torch.Tensor:
    """Actions [num_envs, A] drawn uniformly from the box of ``spec`` (the random phase of off-policy runs)."""
    u = torch.rand(num_envs, spec.dim, generator=generator).to(device)
    return spec.low + (spec.high - spec.low) * u


@register_collector("transitions", outputs=("transitions",), autoreset=True)
class TransitionCollector:
    """``rollout_steps`` steps of every env with actions sampled from the policy's reparameterised head (uniform
    random ones for this collector's first ``learning_starts`` env-steps). ``collect`` returns them stacked [S, N]:
    ``obs`` (frozen-tower features cached), ``action`` [S, N, A], ``reward``, ``terminated``, ``truncated`` [S, N]
    and ``final_obs``, the env's final observation where an episode ended (elsewhere any observation: a replay
    buffer reads only the rows of ended episodes)."""

    @staticmethod
    def env_steps_per_iteration(algo, num_envs: int, max_episode_steps: int, chunk_size: int) -> int:
        """Env-steps one ``collect()`` takes: every env, ``algo.rollout_steps`` steps."""
        return num_envs * algo.rollout_steps

    @staticmethod
    def share(algo, workers: int):
        """One of ``workers`` workers' settings: its share of the random phase, so that every env of the run takes
        as many random steps as in one process (``learning_starts`` counts the env-steps of all envs)."""
        return dataclasses.replace(algo, learning_starts=math.ceil(algo.learning_starts / workers))

    @staticmethod
    def checks(cfg) -> list[tuple[bool, str]]:
        """Nothing beyond the algorithm's checks."""
        return []

    @staticmethod
    def merge(parts: list[dict]) -> dict:
        """Several workers' rollouts as one, their envs side by side ([S, N_1 + N_2 + ...])."""
        return concat(parts, dim=1)

    def __init__(self, env, policy, cfg, teacher=None, generator: torch.Generator | None = None):
        self.env = env
        self.policy = policy
        self.cfg = cfg
        self.generator = generator  # the random phase's draws (a one-process run passes its checkpointed stream)
        self.stats = EpisodeStats(env.num_envs, policy.device)
        self.env_steps = 0  # this collector's, all its envs together: the random phase ends at learning_starts
        self.obs = None  # the envs' current observation as the policy caches it (what actions and the buffer read)
        self.info: dict = {}  # the env's info of the last step

    @torch.no_grad()
    def start(self, seed: int | None) -> None:
        """Reset the envs for the first rollout (``seed`` None: the next scenes of the env's seed, as an autoreset)."""
        self.obs = self.policy.cache_features(self.env.reset(seed=seed)[0])

    @torch.no_grad()
    def act(self, obs: dict) -> torch.Tensor:
        """Uniform random actions [N, A] during the random phase, then samples of the policy at ``obs`` (the actor
        alone, no value head)."""
        if self.env_steps < self.cfg.learning_starts:
            return uniform_actions(self.env.action_spec, self.env.num_envs, self.policy.device, self.generator)
        return self.policy.rsample(obs)[0][:, 0]  # [N, A]

    @torch.no_grad()
    def step(self, action: torch.Tensor) -> tuple:
        """One step of every env with ``action`` [N, A] from the current observation; returns its transition
        ``(obs, action, reward, terminated, truncated, final_obs)`` as a replay buffer stores it: the action the env
        reports it executed (``info["executed_action"]``, a robot's after its safety clamps) where it reports one.
        ``self.info`` keeps the step's ``info``."""
        obs = self.obs
        next_obs, reward, terminated, truncated, self.info = self.env.step(action)
        info = self.info
        if "executed_action" in info:
            action = info["executed_action"].to(action)
        ended = terminated | truncated
        final = self.policy.cache_features(info["final_obs"]) if ended.any() else obs
        self.stats.update(reward, torch.ones_like(reward, dtype=torch.long), info["success"], ended)
        self.obs = self.policy.cache_features(next_obs)  # once per step: a residual's base runs here, not per use
        self.env_steps += self.env.num_envs
        return obs, action, reward.float(), terminated, truncated, final

    @torch.no_grad()
    def collect(self) -> tuple[dict, dict]:
        """``rollout_steps`` steps of every env; returns the stacked transitions and the rollout metrics."""
        steps = {key: [] for key in STEP_KEYS}
        for _ in range(self.cfg.rollout_steps):
            transition = self.step(self.act(self.obs))
            for key, item in zip(STEP_KEYS, transition):
                steps[key].append(item)
        batch = {key: stack_steps(items) if key.endswith("obs") else torch.stack(items) for key, items in steps.items()}
        return batch, self.stats.pop_summary() | {"env_steps": self.env.num_envs * self.cfg.rollout_steps}

    def state_dict(self) -> dict:
        """Env snapshot, episode bookkeeping, the random phase's count and the policy's acting state (a base's
        chunk), for exact resume."""
        return {"env": self.env.get_state(), "stats": self.stats.state_dict(), "env_steps": self.env_steps,
                "acting": self.policy.acting_state()}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a ``state_dict`` snapshot."""
        self.policy.load_acting_state(state.get("acting", {}))
        with torch.no_grad():
            self.obs = self.policy.cache_features(self.env.set_state(state["env"]))
        self.stats.load_state_dict(state["stats"])
        self.env_steps = int(state.get("env_steps", 0))  # a single-process run's checkpoints before it had none
