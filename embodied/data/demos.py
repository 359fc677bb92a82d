"""Record scripted-expert demonstrations from the batched simulator into a LeRobot v3.0 dataset."""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from embodied.data.writer import LeRobotDatasetWriter


REWARD = "next.reward"  # LeRobot's name for the reward of the step that starts at a frame


def env_features(env) -> dict:
    """LeRobot features of a batched env's observations, actions and rewards (state, task state, cameras, action,
    the step's reward: off-policy RL learns from the demonstrations' rewards)."""
    o, a = env.observation_spec, env.action_spec
    features = {
        "observation.state": {"dtype": "float32", "shape": [o.state_dim], "names": None},
        "observation.environment_state": {"dtype": "float32", "shape": [o.privileged_dim], "names": None},
        "action": {"dtype": "float32", "shape": [a.dim], "names": list(a.names)},
        REWARD: {"dtype": "float32", "shape": [1], "names": None},
    }
    for cam in o.cameras:
        features[f"observation.images.{cam}"] = {"dtype": "video", "shape": [o.image_height, o.image_width, 3]}
    return features


def frame_of(obs: dict, action: torch.Tensor, i: int) -> dict:
    """The dataset frame of env ``i`` from a batched observation and the action taken in it."""
    frame = {"observation.state": obs["state"][i].numpy(), "observation.environment_state": obs["privileged"][i].numpy(),
             "action": action[i].numpy().astype(np.float32)}
    for cam, images in obs.get("rgb", {}).items():
        frame[f"observation.images.{cam}"] = images[i].numpy()
    return frame


EXPERTS = ("waypoints", "planner")


def make_expert(env, name: str, seed: int):
    """``waypoints``: the task's scripted end-effector expert; ``planner``: the same waypoints through IK and
    joint-space Informed RRT* (needs ``controller=joint_delta``). Planned for the env's current scene."""
    if name == "waypoints":
        from sims.experts import WaypointExpert

        return WaypointExpert(env)
    if name == "planner":
        from sims.planning.planned_expert import PlannedExpert

        expert = PlannedExpert(env, seed=seed)
        expert.start()
        return expert
    raise KeyError(f"unknown expert {name!r}; available: {EXPERTS}")


def next_wave(episode_rows: list[dict], seed: int) -> int:
    """The first wave of a resumed recording: after the last scene any saved episode came from, so that no scene
    is recorded twice. Episodes saved before scenes were noted count as one wave each (waves save >= 1 episode
    unless the expert fails every world)."""
    waves = [int(r["scene/seed"]) - seed for r in episode_rows if r.get("scene/seed") is not None]
    if len(waves) < len(episode_rows):
        return max([len(episode_rows), *[w + 1 for w in waves]])
    return max(waves, default=-1) + 1


def record_expert_demos(env, writer: LeRobotDatasetWriter, num_episodes: int, seed: int,
                        only_successes: bool = True, progress: bool = True, expert: str = "waypoints",
                        first_wave: int = 0, frames_after_success: int | None = None) -> dict:
    """Run an expert (``EXPERTS``) in waves of ``env.num_envs`` and save each episode; returns counts.

    Wave w resets the worlds with seed ``seed + w`` (from ``first_wave``: see ``next_wave`` for a resume); each
    episode's row notes its scene (``scene/seed``, ``scene/reset_id``). Failed episodes are discarded when
    ``only_successes``. ``frames_after_success``: an episode ends this many frames after the step that first
    reached success (None: it runs to the env's episode limit). The env must be built with ``autoreset=False``.
    """
    saved = attempted = 0
    bar = tqdm(total=num_episodes, desc="demos", unit="ep", disable=not progress)
    wave = first_wave
    while saved < num_episodes:
        obs, info = env.reset(seed=seed + wave)
        scenes = [{"scene/seed": seed + wave, "scene/reset_id": int(i)} for i in info["reset_ids"]]
        wave += 1
        policy = make_expert(env, expert, seed + wave)
        buffers: list[list[tuple[dict, str]]] = [[] for _ in range(env.num_envs)]
        success = torch.zeros(env.num_envs, dtype=torch.bool)
        frames_left = torch.full((env.num_envs,), env.max_episode_steps)  # frames each episode still records
        for _ in range(env.max_episode_steps):
            action = policy.act()
            frames = [(frame_of(obs, action, i), obs["instruction"][i]) for i in range(env.num_envs)]
            obs, reward, term, trunc, info = env.step(action)
            for i, (frame, instruction) in enumerate(frames):
                if frames_left[i] <= 0:
                    continue
                if REWARD in writer.features:  # (a dataset recorded before rewards were, resumed, has none)
                    frame[REWARD] = np.array([float(reward[i])], dtype=np.float32)
                buffers[i].append((frame, instruction))
            frames_left -= 1
            if frames_after_success is not None:
                first = info["success"] & ~success
                frames_left[first] = torch.clamp(frames_left[first], max=frames_after_success)
            success |= info["success"]
            if (term | trunc).all() or (frames_left <= 0).all():
                break
        for i in range(env.num_envs):
            if saved >= num_episodes:
                break
            attempted += 1
            if only_successes and not success[i]:
                continue
            for frame, task in buffers[i]:
                writer.add_frame(frame, task)
            writer.save_episode(extra=scenes[i])
            saved += 1
            bar.update(1)
    bar.close()
    return {"saved": saved, "attempted": attempted}
