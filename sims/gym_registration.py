"""Register every tabletop task with gymnasium as ``embodied/<Task>-v0``."""

from __future__ import annotations

import gymnasium as gym

from sims.tasks import TASKS


def register_all() -> None:
    """Idempotently register the gymnasium ids (importing ``sims`` does this)."""
    for task in TASKS:
        env_id = f"embodied/{task}-v0"
        if env_id not in gym.registry:
            gym.register(env_id, entry_point="sims.gym_env:TabletopGymEnv", kwargs={"task": task})
