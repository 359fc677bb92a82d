"""LeRobot datasets that carry rewards as a replay buffer of demonstrations (off-policy RL's ``data.paths``)."""

from __future__ import annotations

import numpy as np
import torch

from embodied.data.compatibility import FEATURE_OF_INPUT
from embodied.data.demos import REWARD
from embodied.data.reader import LeRobotDataset
from embodied.data.replay import ReplayBuffer


def replay_from_datasets(paths: list[str], obs_keys: list[str], n_step: int, gamma: float,
                         device: str = "cpu") -> ReplayBuffer:
    """Every episode of the datasets at ``paths`` as one env of a replay buffer: its frames' ``obs_keys`` (state
    observations), actions and ``next.reward``. A frame's next observation is the following frame, so an episode of
    T frames gives T - 1 transitions, the last one truncated (bootstrapped from the episode's last frame: recorded
    episodes run to the time limit or stop at success, neither of which is a termination). A shorter episode starts
    again where it ends until the longest has played (repeated transitions, never padding), and ``n_step`` rows more
    make the final transitions sampleable. The observation and action features are ``check_datasets``' to check
    (embodied/data/compatibility.py); this refuses state inputs it cannot read and datasets without rewards."""
    unknown = [key for key in obs_keys if key not in FEATURE_OF_INPUT]
    if unknown:
        raise ValueError(f"demonstrations from datasets give state observations {sorted(FEATURE_OF_INPUT)}, not "
                         f"{unknown}: train a state policy (policy.obs_keys=[state, privileged]) or use "
                         "algo.demo_episodes (the scripted expert in simulation)")
    episodes = []
    for path in paths:
        dataset = LeRobotDataset(path)
        if REWARD not in dataset.columns:
            raise ValueError(f"{path} has no {REWARD!r}: off-policy demonstrations need the reward of every step; "
                             "record them with embodied-record-demos (it writes next.reward) or use "
                             "algo.demo_episodes (the scripted expert in simulation)")
        for row in dataset.episodes:
            start, end = int(row["dataset_from_index"]), int(row["dataset_to_index"])
            if end - start >= 2:  # one transition at least
                episodes.append({key: dataset.columns[feature][start:end] for key, feature in
                                 [("action", "action"), ("reward", REWARD)] +
                                 [(key, FEATURE_OF_INPUT[key]) for key in obs_keys]})
    if not episodes:
        raise ValueError(f"{paths}: no episode with two frames or more")
    lengths = np.array([len(episode["action"]) - 1 for episode in episodes])  # transitions per episode
    steps = int(lengths.max()) + n_step
    buffer = ReplayBuffer(steps + 1, len(episodes), n_step, gamma, device=device)
    for t in range(steps):
        index = t % lengths  # [E]: the transition each episode plays at row t
        last = torch.as_tensor(index == lengths - 1)
        obs = {key: _frames(episodes, key, index) for key in obs_keys}
        final = {key: _frames(episodes, key, index + 1) for key in obs_keys} if bool(last.any()) else None
        buffer.add(obs, _frames(episodes, "action", index), _frames(episodes, "reward", index).reshape(-1),
                   torch.zeros_like(last), last, final)
    return buffer


def _frames(episodes: list[dict], key: str, index: np.ndarray) -> torch.Tensor:
    """Frame ``index[e]`` of ``key`` from each episode e, stacked as float [E, ...]."""
    return torch.as_tensor(np.stack([episode[key][i] for episode, i in zip(episodes, index)])).float()
