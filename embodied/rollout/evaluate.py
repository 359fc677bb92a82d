"""Deterministic evaluation that does not depend on the number of envs.

Episode j of an evaluation always starts from reset id j of ``eval_seed`` and runs the policy's deterministic
action, so the set of initial states and the per-episode outcomes are the same whatever ``num_envs`` is.
"""

from __future__ import annotations

import numpy as np
import torch

from embodied.rollout.episode_stats import EpisodeStats


def video_frame(env, obs: dict, camera: str) -> np.ndarray:
    """Env 0's image [H, W, 3] from ``camera``: from the observation when the env renders that camera for the
    policy, otherwise rendered for env 0 alone (a state-only run pays for one render per step, not one per env)."""
    if camera in obs.get("rgb", {}):
        return obs["rgb"][camera][0].cpu().numpy()
    return env.render_frames(camera, env_ids=[0])[0]


@torch.no_grad()
def run_episodes(policy, env, num_episodes: int, seed: int, video_camera: str | None = None) -> tuple[list, list]:
    """Episodes 0..num_episodes-1 in waves of env.num_envs; returns one dict of metrics per episode (in reset-id
    order) and video frames of episode 0."""
    if env.autoreset:
        raise ValueError("evaluation needs an env built with autoreset=False")
    was_training, acting = policy.training, policy.acting_state()  # a training rollout's base chunk, set aside
    policy.eval()
    episodes = []
    frames: list[np.ndarray] = []
    n = env.num_envs
    for start in range(0, num_episodes, n):
        ids = torch.arange(start, start + n, device=policy.device).clamp(max=num_episodes - 1)  # pad the last wave
        obs, _ = env.reset(seed=seed, reset_ids=ids)
        policy.reset()
        stats = EpisodeStats(n, policy.device)
        done = torch.zeros(n, dtype=torch.bool, device=policy.device)
        while not done.all():
            if video_camera and start == 0:
                frames.append(video_frame(env, obs, video_camera))
            action = policy.select_action(obs)  # [N, A]
            obs, reward, term, trunc, info = env.step(action)
            finished = (term | trunc) & ~done
            stats.update(reward * (~done), (~done).long(), info["success"] & ~done, finished)
            done |= term | trunc
        keep = min(n, num_episodes - start)
        episodes.extend(stats.finished_in_env_order(keep))
    policy.train(was_training)
    policy.load_acting_state(acting)
    return episodes, frames


def evaluate(policy, env, num_episodes: int, seed: int, video_camera: str | None = None) -> tuple[dict, list]:
    """``run_episodes``' mean metrics (plus ``episodes``, their count) and video frames of episode 0."""
    episodes, frames = run_episodes(policy, env, num_episodes, seed, video_camera)
    summary = {key: float(np.mean([e[key] for e in episodes])) for key in episodes[0]}
    summary["episodes"] = len(episodes)
    return summary, frames
