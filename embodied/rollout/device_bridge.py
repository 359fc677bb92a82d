"""Envs whose tensors live on another device (a GPU simulator) seen from the learner's device."""

from __future__ import annotations

import torch

LEARNER_DEVICE = torch.device("cpu")  # policies, rollouts and updates run here


def to_device(tree, device: torch.device):
    """``tree`` (tensors in dicts, tuples and lists; other leaves as they are) with every tensor on ``device``."""
    if isinstance(tree, torch.Tensor):
        return tree.to(device)
    if isinstance(tree, dict):
        return {key: to_device(value, device) for key, value in tree.items()}
    if isinstance(tree, tuple):
        return tuple(to_device(value, device) for value in tree)
    return tree  # instruction lists, numbers


class DeviceBridge:
    """A batched env whose ``reset``/``step``/``chunk_step``/``set_state`` results come back on ``device``.

    The simulator keeps its state on its own device; only what the learner reads (observations, rewards, flags)
    is copied, once per step. Every other attribute is the wrapped env's.
    """

    def __init__(self, env, device: torch.device):
        self.env = env
        self.device = device

    def __getattr__(self, name):
        return getattr(self.env, name)

    def reset(self, *args, **kwargs):
        """``env.reset`` with its results on the learner's device."""
        return to_device(self.env.reset(*args, **kwargs), self.device)

    def step(self, action):
        """``env.step`` with its results on the learner's device."""
        return to_device(self.env.step(action), self.device)

    def chunk_step(self, actions):
        """``env.chunk_step`` with its results on the learner's device."""
        return to_device(self.env.chunk_step(actions), self.device)

    def set_state(self, state: dict):
        """``env.set_state``; the returned observation on the learner's device."""
        return to_device(self.env.set_state(state), self.device)


def for_learner(env, device: torch.device = LEARNER_DEVICE):
    """``env`` itself when its tensors are already on ``device``, else a ``DeviceBridge`` to it."""
    env_device = torch.device(getattr(env, "device", "cpu"))
    return env if env_device == device else DeviceBridge(env, device)
