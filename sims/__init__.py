"""Batched simulators and tabletop tasks for embodied-vla (imports neither ``embodied`` nor ``policies``)."""

from __future__ import annotations

from sims.api import BACKENDS, ActionSpec, BatchedEnv, ObservationSpec
from sims.gym_registration import register_all

register_all()


def make_env(backend: str = "mujoco", **kwargs) -> BatchedEnv:
    """Build a batched env: ``make_env("mujoco", task="PickCube", num_envs=64)``; backends mujoco, mujoco_warp,
    maniskill, libero."""
    return BACKENDS.lookup(backend)(**kwargs)


__all__ = ["BACKENDS", "ActionSpec", "BatchedEnv", "ObservationSpec", "make_env"]
