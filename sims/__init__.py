"""Batched simulators and tabletop tasks for embodied-vla (imports neither ``embodied`` nor ``policies``)."""

from __future__ import annotations

from sims.api import ActionSpec, BatchedEnv, ObservationSpec
from sims.gym_registration import register_all

register_all()


def make_env(backend: str = "mujoco", **kwargs) -> BatchedEnv:
    """Build a batched env: ``make_env("mujoco", task="PickCube", num_envs=64)``; backends mujoco, mujoco_warp, maniskill."""
    if backend == "mujoco":
        from sims.mujoco.env import MujocoTabletopEnv

        return MujocoTabletopEnv(**kwargs)
    if backend == "mujoco_warp":
        from sims.mujoco_warp.env import MujocoWarpTabletopEnv

        return MujocoWarpTabletopEnv(**kwargs)
    if backend == "maniskill":
        from sims.maniskill.env import ManiSkillEnv

        return ManiSkillEnv(**kwargs)
    raise KeyError(f"unknown simulator backend {backend!r}; available: ['maniskill', 'mujoco', 'mujoco_warp']")


__all__ = ["ActionSpec", "BatchedEnv", "ObservationSpec", "make_env"]
