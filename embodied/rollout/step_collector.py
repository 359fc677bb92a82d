"""Fixed-length rollouts for actor-critic PPO: action chunks, auto-reset, truncation bootstrapping."""

from __future__ import annotations

import torch

from embodied.algorithms import get_advantage
from embodied.rollout.episode_stats import EpisodeStats
from embodied.rollout.obs import flatten, stack_steps, step_chunk


class StepCollector:
    """Collects ``rollout_steps`` (chunk) steps from every env and computes advantages with the configured estimator."""

    def __init__(self, env, policy, cfg):
        self.env = env
        self.policy = policy
        self.cfg = cfg
        self.stats = EpisodeStats(env.num_envs)
        self.obs = None

    def start(self, seed: int) -> None:
        """Reset the envs for the first rollout."""
        self.obs, _ = self.env.reset(seed=seed)

    @torch.no_grad()
    def collect(self) -> tuple[dict, dict]:
        """Returns the flat training batch and rollout metrics."""
        cfg, policy = self.cfg, self.policy
        gamma = cfg.gamma ** policy.chunk_size
        obs_steps, actions, logprobs, values, rewards, ended = [], [], [], [], [], []
        for _ in range(cfg.rollout_steps):
            obs = policy.cache_features(self.obs)  # frozen-encoder features are stored, not recomputed per epoch
            action, logprob, value = policy.act(obs)  # [N,T,A], [N,T,A], [N]
            next_obs, reward, term, trunc, info, executed = step_chunk(self.env, action)
            reward = reward.float()
            self.stats.update(reward, executed, info["success"], term | trunc)  # metrics see the env's own reward
            if trunc.any():  # bootstrap a truncated (not terminated) episode with V(its final observation)
                final_value = policy.value(info["final_obs"])
                reward = reward + gamma * final_value * (trunc & ~term).float()
            obs_steps.append(obs)
            actions.append(action)
            logprobs.append(logprob)
            values.append(value)
            rewards.append(reward)
            ended.append(term | trunc)
            self.obs = next_obs
        values_t = torch.stack(values)  # [S, N]
        next_values = torch.cat([values_t[1:], policy.value(self.obs)[None]])  # [S, N]
        advantages, returns = get_advantage(cfg.advantage)(
            torch.stack(rewards), values_t, next_values, torch.stack(ended),
            gamma=gamma, lam=cfg.gae_lambda,
        )
        stacked = stack_steps(obs_steps)
        batch = {
            "obs": flatten(stacked),
            "action": torch.stack(actions).flatten(0, 1),
            "old_logprob": torch.stack(logprobs).flatten(0, 1),
            "old_values": values_t.flatten(),
            "advantages": advantages.flatten(),
            "returns": returns.flatten(),
        }
        metrics = self.stats.pop_summary()
        metrics["env_steps"] = self.env.num_envs * cfg.rollout_steps * policy.chunk_size
        return batch, metrics

    def state_dict(self) -> dict:
        """Env snapshot and episode bookkeeping for exact resume."""
        return {"env": self.env.get_state(), "stats": self.stats.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a ``state_dict`` snapshot."""
        self.obs = self.env.set_state(state["env"])
        self.stats.load_state_dict(state["stats"])
