"""Scripted experts: per-task waypoint plans followed with the end-effector controller, all envs at once."""

from __future__ import annotations

import numpy as np
import torch

from sims.arrays import to_numpy
from sims.mujoco.controllers import EndEffectorController
from sims.mujoco.env import MujocoTabletopEnv


class WaypointExpert:
    """Follows the task's waypoints: moves the tool towards the current waypoint, advances when it is reached.

    Call ``act()`` after every reset or step; envs whose episode just started (elapsed step 0) are re-planned.
    """

    def __init__(self, env: MujocoTabletopEnv, gain: float = 1.0, controller: EndEffectorController | None = None):
        """``controller``: the end-effector controller whose action space to emit (default: the env's own)."""
        self.controller = controller if controller is not None else env.controller
        if not isinstance(self.controller, EndEffectorController):
            raise ValueError(
                f"the scripted expert drives an end-effector controller; this env uses "
                f"{type(self.controller).__name__}: make the env with controller='ee_delta_pos' or 'ee_delta_pose'"
            )
        self.env = env
        self.gain = gain
        self.plan: list | None = None
        self.phase = np.zeros(env.num_envs, dtype=np.int64)
        self.phase_steps = np.zeros(env.num_envs, dtype=np.int64)

    def _replan(self, env_ids: np.ndarray) -> None:
        fresh = self.env.task.expert_plan(self.env.scene_view().numpy())
        if self.plan is None:
            self.plan = fresh
        else:
            for mine, new in zip(self.plan, fresh):
                mine.target[env_ids] = new.target[env_ids]
        self.phase[env_ids] = 0
        self.phase_steps[env_ids] = 0

    def act(self) -> torch.Tensor:
        """Actions [N, A] for the current state of every env."""
        env = self.env
        started = np.nonzero(to_numpy(env._elapsed) == 0)[0]
        if started.size or self.plan is None:
            self._replan(started if self.plan is not None else np.arange(env.num_envs))
        rows = np.arange(env.num_envs)
        view = env.scene_view().numpy()
        tcp = view.tcp_pos
        targets = np.stack([w.target for w in self.plan], axis=1).copy()  # [N, W, 3]
        carry = np.array([w.carry for w in self.plan])
        for phase in np.nonzero(carry >= 0)[0]:  # steer the held cube's centre, not the tool, onto the target
            targets[:, phase] += tcp - view.cube_pos[:, carry[phase]]
        tolerances = np.array([w.tolerance for w in self.plan])
        min_steps = np.array([w.min_steps for w in self.plan])
        reached = np.linalg.norm(targets[rows, self.phase] - tcp, axis=-1) < tolerances[self.phase]
        advance = reached & (self.phase_steps >= min_steps[self.phase]) & (self.phase < len(self.plan) - 1)
        self.phase = np.where(advance, self.phase + 1, self.phase)
        self.phase_steps = np.where(advance, 0, self.phase_steps + 1)
        controller = self.controller
        delta = (targets[rows, self.phase] - tcp) / controller.max_translation * self.gain
        speed = np.array([w.speed for w in self.plan])[self.phase][:, None]
        delta *= np.minimum(1.0, speed / np.maximum(np.abs(delta).max(axis=1, keepdims=True), 1e-9))
        grips = np.array([w.grip for w in self.plan])[self.phase]
        parts = [delta]
        if controller.with_rotation:
            parts.append(np.zeros((env.num_envs, 3)))
        parts.append(grips[:, None])
        return torch.from_numpy(np.concatenate(parts, axis=1).astype(np.float32))
