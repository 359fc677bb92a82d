"""The learner's device (``experiment.device``) and envs whose tensors live elsewhere, seen from it."""

from __future__ import annotations

import torch


def learner_device(name: str) -> torch.device:
    """``experiment.device`` as a torch device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (CUDA when present).

    Raises ValueError naming the value and the fix when it is malformed or names a GPU that is not there.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"experiment.device={name!r} is not a device: use cpu, cuda, cuda:N or auto") from err
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"experiment.device={name!r}: the learner runs on cpu or cuda (cuda:N); use one of those")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"experiment.device={name!r} but torch finds no CUDA device here "
                             "(torch.cuda.is_available() is False): use experiment.device=cpu (or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"experiment.device={name!r} but only {torch.cuda.device_count()} CUDA device(s) "
                             f"are visible: use cuda:0..cuda:{torch.cuda.device_count() - 1}")
        return torch.device("cuda", torch.cuda.current_device() if device.index is None else device.index)
    return device


def to_device(tree, device: torch.device):
    """``tree`` (tensors in dicts, tuples and lists; other leaves as they are) with every tensor on ``device``."""
    if isinstance(tree, torch.Tensor):
        return tree.to(device)
    if isinstance(tree, dict):
        return {key: to_device(value, device) for key, value in tree.items()}
    if isinstance(tree, tuple):
        return tuple(to_device(value, device) for value in tree)
    return tree  # instruction lists, numbers, numpy arrays


class DeviceBridge:
    """A batched env on another device than the learner: inputs go to the env's device, results to ``device``.

    The simulator keeps its state on its own device; only what crosses (actions and reset ids in; observations,
    rewards and flags out) is copied, once per step. Every other attribute is the wrapped env's.
    """

    def __init__(self, env, device: torch.device):
        self.env = env
        self.device = device
        self.env_device = torch.device(getattr(env, "device", "cpu"))

    def __getattr__(self, name):
        return getattr(self.env, name)

    def reset(self, seed: int | None = None, reset_ids=None):
        """``env.reset`` with its results on the learner's device."""
        return to_device(self.env.reset(seed=seed, reset_ids=to_device(reset_ids, self.env_device)), self.device)

    def step(self, action):
        """``env.step`` with its results on the learner's device."""
        return to_device(self.env.step(to_device(action, self.env_device)), self.device)

    def chunk_step(self, actions):
        """``env.chunk_step`` with its results on the learner's device."""
        return to_device(self.env.chunk_step(to_device(actions, self.env_device)), self.device)

    def set_state(self, state: dict):
        """``env.set_state``; the returned observation on the learner's device."""
        return to_device(self.env.set_state(state), self.device)


def for_learner(env, device: torch.device):
    """``env`` itself when its tensors are already on ``device``, else a ``DeviceBridge`` to it."""
    env_device = torch.device(getattr(env, "device", "cpu"))
    return env if env_device == device else DeviceBridge(env, device)
