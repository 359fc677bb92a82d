"""PickCube: grasp a cube and lift it to a goal position in the air."""

from __future__ import annotations

import numpy as np

from sims.arrays import namespace, device
from sims.mujoco.scene import Cube
from sims.tasks.base import (CUBE_HALF, EpisodeInit, FLOATING_GOAL, GOAL_SHADOW, SceneView, TASKS, Task, Waypoint,
                             is_grasping, with_shadow)
from sims.tasks.rewards import pick_place_reward


@TASKS.register("PickCube", attribute="name")
class PickCube(Task):
    """Pick up the red cube and move it to the green sphere."""

    cubes = (Cube("cube", CUBE_HALF, (0.85, 0.1, 0.1, 1.0)),)
    markers = (FLOATING_GOAL, GOAL_SHADOW)  # marker 0 is the goal; 1 marks the table beneath it
    max_episode_steps = 60
    privileged_dim = 17
    success_radius = 0.025

    def sample_episode(self, rng: np.random.Generator) -> EpisodeInit:
        cube = np.array([[*rng.uniform([-0.1, -0.1], [0.1, 0.1]), CUBE_HALF]])
        goal = rng.uniform([-0.1, -0.1, 0.08], [0.1, 0.1, 0.25])[None]
        return EpisodeInit(cube, rng.uniform(-np.pi / 4, np.pi / 4, size=1), with_shadow(goal), "pick up the red cube")

    def privileged(self, view: SceneView) -> np.ndarray:
        xp = namespace(view.cube_pos)
        cube, goal = view.cube_pos[:, 0], view.marker_pos[:, 0]
        first = xp.zeros(cube.shape[0], dtype=xp.int64, device=device(cube))
        grasped = xp.astype(is_grasping(view, first), cube.dtype)[:, None]
        return xp.astype(xp.concat(
            [cube, view.cube_quat[:, 0], goal, goal - cube, cube - view.tcp_pos, grasped], axis=-1
        ), xp.float32)

    def evaluate(self, view: SceneView):
        xp = namespace(view.cube_pos)
        cube = xp.zeros(view.tcp_pos.shape[0], dtype=xp.int64, device=device(view.tcp_pos))
        reward, placed = pick_place_reward(view, cube, view.marker_pos[:, 0], self.success_radius, need_release=False)
        success = placed & (view.cube_pos[:, 0, 2] > CUBE_HALF + 0.01)
        return xp.where(success, 1.0, reward), success, self.failed(view)

    def expert_plan(self, view: SceneView) -> list[Waypoint]:
        cube = view.cube_pos[:, 0].copy()
        above = cube + np.array([0.0, 0.0, 0.1])
        lifted = cube + np.array([0.0, 0.0, 0.06])
        return [
            Waypoint(above, grip=1.0, tolerance=0.02),
            Waypoint(cube, grip=1.0, tolerance=0.008),
            Waypoint(cube, grip=-1.0, tolerance=1.0, min_steps=5),
            Waypoint(lifted, grip=-1.0, tolerance=0.02),
            Waypoint(view.marker_pos[:, 0].copy(), grip=-1.0, tolerance=0.0, carry=0),
        ]
