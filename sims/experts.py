"""Scripted experts: per-task waypoint plans followed with the end-effector controller, all envs at once."""

from __future__ import annotations

import numpy as np
import torch

from sims.arrays import to_numpy
from sims.mujoco.controllers import EndEffectorController
from sims.mujoco.env import MujocoTabletopEnv
from sims.tasks.base import Waypoint

WAYPOINT_FIELDS = ("grip", "tolerance", "min_steps", "speed", "carry")


def plan_arrays(plan: list[Waypoint], num_envs: int) -> dict[str, np.ndarray]:
    """A plan of W waypoints as arrays: ``target`` [N, W, 3] and each other field [N, W] (a waypoint's field is one
    value for every env, or one per env when the envs run different tasks)."""
    arrays = {"target": np.stack([w.target for w in plan], axis=1).astype(np.float64)}
    for name in WAYPOINT_FIELDS:
        arrays[name] = np.stack([np.broadcast_to(np.asarray(getattr(w, name), dtype=np.float64), (num_envs,))
                                 for w in plan], axis=1)
    return arrays


def hold_last_waypoint(plan: dict[str, np.ndarray], width: int) -> dict[str, np.ndarray]:
    """``plan_arrays`` widened to ``width`` waypoints by repeating the last one (a final waypoint is held)."""
    extra = width - plan["target"].shape[1]
    if extra == 0:
        return plan
    return {name: np.concatenate([array] + [array[:, -1:]] * extra, axis=1) for name, array in plan.items()}


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
        self.plan: dict[str, np.ndarray] | None = None  # targets [N, W, 3]; grip, tolerance, ... [N, W]
        self.phase = np.zeros(env.num_envs, dtype=np.int64)
        self.phase_steps = np.zeros(env.num_envs, dtype=np.int64)

    def _replan(self, env_ids: np.ndarray) -> None:
        fresh = plan_arrays(self.env.task.expert_plan(self.env.scene_view().numpy()), self.env.num_envs)
        if self.plan is None:
            self.plan = fresh
        else:  # a suite's plans differ in length by task: the shorter one holds its last waypoint
            width = max(self.plan["target"].shape[1], fresh["target"].shape[1])
            self.plan, fresh = hold_last_waypoint(self.plan, width), hold_last_waypoint(fresh, width)
            for name, array in self.plan.items():
                array[env_ids] = fresh[name][env_ids]
        self.phase[env_ids] = 0
        self.phase_steps[env_ids] = 0

    def _current_phase(self, view) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Every env's current waypoint (fields [N]) and where the tool must go for it [N, 3]: a waypoint that
        carries a held cube steers the cube's centre, not the tool, onto its target."""
        plan = {name: array[np.arange(len(self.phase)), self.phase] for name, array in self.plan.items()}
        target = plan["target"].copy()
        carried = np.nonzero(plan["carry"] >= 0)[0]
        target[carried] += view.tcp_pos[carried] - view.cube_pos[carried, plan["carry"][carried].astype(np.int64)]
        return plan, target

    def act(self) -> torch.Tensor:
        """Actions [N, A] for the current state of every env."""
        env = self.env
        started = np.nonzero(to_numpy(env._elapsed) == 0)[0]
        if started.size or self.plan is None:
            self._replan(started if self.plan is not None else np.arange(env.num_envs))
        view = env.scene_view().numpy()
        tcp = view.tcp_pos
        plan, target = self._current_phase(view)
        reached = np.linalg.norm(target - tcp, axis=-1) < plan["tolerance"]
        advance = reached & (self.phase_steps >= plan["min_steps"]) & (self.phase < self.plan["target"].shape[1] - 1)
        self.phase = np.where(advance, self.phase + 1, self.phase)
        self.phase_steps = np.where(advance, 0, self.phase_steps + 1)
        plan, target = self._current_phase(view)
        controller = self.controller
        delta = (target - tcp) / controller.max_translation * self.gain
        speed = plan["speed"][:, None]
        delta *= np.minimum(1.0, speed / np.maximum(np.abs(delta).max(axis=1, keepdims=True), 1e-9))
        parts = [delta]
        if controller.with_rotation:
            parts.append(np.zeros((env.num_envs, 3)))
        parts.append(plan["grip"][:, None])
        return torch.from_numpy(np.concatenate(parts, axis=1).astype(np.float32))
