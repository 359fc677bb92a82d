"""GRPO data: groups of rollouts that start from identical reset ids, with dynamic sampling and refill."""

from __future__ import annotations

import dataclasses

import torch

from embodied.algorithms.registry import get_advantage, register_collector
from embodied.rollout.obs import concat, flatten, rollout_observation, select, stack_steps, step_chunk


# whole episodes in groups from identical resets: one return per episode, no critic values
@register_collector("groups", outputs=("episode_returns",), autoreset=False)
class GroupCollector:
    """Runs whole episodes in groups of ``group_size`` envs sharing a reset id.

    Dynamic sampling: a group whose members all succeed or all fail carries no learning signal; it is dropped
    and further groups are collected until ``groups_per_batch`` informative groups are found or
    ``max_sampling_rounds`` rounds have run (then the batch holds what was found).
    """

    @staticmethod
    def env_steps_per_iteration(algo, num_envs: int, max_episode_steps: int, chunk_size: int) -> int:
        """The env-step budget one ``collect()`` is counted as: ``groups_per_batch`` groups of whole episodes."""
        return algo.groups_per_batch * algo.group_size * max_episode_steps

    @staticmethod
    def share(algo, workers: int):
        """The settings of one of ``workers`` env workers: its share of the groups."""
        return dataclasses.replace(algo, groups_per_batch=algo.groups_per_batch // workers)

    @staticmethod
    def checks(cfg) -> list[tuple[bool, str]]:
        """Whole groups side by side, per env worker and per batch."""
        a, workers = cfg.algo, max(cfg.dist.num_env_workers, 1)
        return [
            (a.group_size >= 2, f"algo.group_size must be >= 2 for group normalisation, got {a.group_size}"),
            (cfg.env.num_envs % a.group_size == 0, f"env.num_envs={cfg.env.num_envs} must be a multiple of "
                                                   f"algo.group_size={a.group_size}: each group runs side by side"),
            ((cfg.env.num_envs // workers) % a.group_size == 0,
             f"each of the {workers} env workers needs a multiple of algo.group_size={a.group_size} envs; "
             f"env.num_envs={cfg.env.num_envs} does not split so"),
            (a.groups_per_batch % workers == 0,
             f"algo.groups_per_batch={a.groups_per_batch} must split evenly over dist.num_env_workers={workers}"),
        ]

    def __init__(self, env, policy, cfg, teacher=None):
        if env.autoreset:
            raise ValueError("GRPO needs an env built with autoreset=False (whole episodes per group)")
        self.env = env
        self.policy = policy
        self.cfg = cfg
        self.teacher = teacher  # a distillation teacher: its inputs are kept in the rollout beside the policy's

    def start(self, seed: int) -> None:
        """Seed the envs; every round then resets them with fresh group ids."""
        self.env.reset(seed=seed)

    @torch.no_grad()
    def _round(self) -> dict:
        """One round of num_envs / group_size groups, run to the end of every episode."""
        env, k = self.env, self.cfg.group_size
        group_ids = env.next_reset_ids(env.num_envs // k)
        obs, _ = env.reset(reset_ids=torch.from_numpy(group_ids).repeat_interleave(k))
        steps, actions, logprobs, masks = [], [], [], []
        device = self.policy.device
        returns = torch.zeros(env.num_envs, device=device)
        success_once = torch.zeros(env.num_envs, dtype=torch.bool, device=device)
        active = torch.ones(env.num_envs, dtype=torch.bool, device=device)
        for _ in range(env.max_episode_steps):
            obs = rollout_observation(self.policy, obs, self.teacher)  # frozen-tower features, not re-run per epoch
            action, logprob, _ = self.policy.act(obs)
            next_obs, reward, term, trunc, info, _ = step_chunk(env, action)
            steps.append(obs)
            actions.append(action)
            logprobs.append(logprob)
            masks.append(active.clone())
            returns += reward * active
            success_once |= info["success"] & active
            active &= ~(term | trunc)
            obs = next_obs
            if not active.any():
                break
        return {"obs": steps, "action": actions, "logprob": logprobs, "mask": masks,
                "returns": returns, "success_once": success_once}

    def collect(self) -> tuple[dict, dict]:
        """Returns the flat batch of kept groups' steps (with broadcast advantages) and metrics."""
        cfg, k = self.cfg, self.cfg.group_size
        kept: list[tuple[dict, torch.Tensor]] = []  # (round data, env indices of kept groups)
        kept_groups = dropped_groups = rounds = env_steps = 0
        all_returns, all_success = [], []
        while kept_groups < cfg.groups_per_batch and rounds < cfg.max_sampling_rounds:
            data = self._round()
            rounds += 1
            env_steps += int(torch.stack(data["mask"]).sum()) * self.policy.chunk_size
            all_returns.append(data["returns"])
            all_success.append(data["success_once"])
            grouped = data["success_once"].view(-1, k)
            informative = grouped.any(1) & ~grouped.all(1) if cfg.dynamic_sampling else \
                torch.ones(len(grouped), dtype=torch.bool, device=grouped.device)
            groups = torch.nonzero(informative).flatten()[: cfg.groups_per_batch - kept_groups]
            dropped_groups += int((~informative).sum())
            if len(groups):
                envs = (groups[:, None] * k + torch.arange(k, device=groups.device)).flatten()
                kept.append((data, envs))
                kept_groups += len(groups)
        metrics = {
            "success_once": torch.cat(all_success).float().mean().item(),
            "episode_return": torch.cat(all_returns).mean().item(),
            "kept_groups": kept_groups, "dropped_groups": dropped_groups, "sampling_rounds": rounds,
            "env_steps": env_steps, "episodes": rounds * self.env.num_envs,
        }
        if not kept:
            return {}, metrics
        return self._batch(kept), metrics

    def _batch(self, kept: list[tuple[dict, torch.Tensor]]) -> dict:
        parts = {"obs": [], "action": [], "old_logprob": [], "advantages": []}
        for data, envs in kept:
            advantages = get_advantage(self.cfg.advantage)(data["returns"][envs], self.cfg.group_size)  # [len(envs)]
            mask = torch.stack(data["mask"])[:, envs]  # [S, E]
            obs = flatten(stack_steps(data["obs"]))  # [S*N, ...]
            num_envs = self.env.num_envs
            steps = torch.arange(mask.shape[0], device=mask.device)
            flat_index = (steps[:, None] * num_envs + envs[None, :])[mask]  # rows of valid steps of kept envs
            parts["obs"].append(select(obs, flat_index))
            parts["action"].append(torch.stack(data["action"]).flatten(0, 1)[flat_index])
            parts["old_logprob"].append(torch.stack(data["logprob"]).flatten(0, 1)[flat_index])
            parts["advantages"].append(advantages.expand(mask.shape[0], -1)[mask])
        return {"obs": concat(parts["obs"]), "action": torch.cat(parts["action"]),
                "old_logprob": torch.cat(parts["old_logprob"]), "advantages": torch.cat(parts["advantages"])}

    def state_dict(self) -> dict:
        """Env snapshot for exact resume (rounds always start with a reset)."""
        return {"env": self.env.get_state()}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a ``state_dict`` snapshot."""
        self.env.set_state(state["env"])
