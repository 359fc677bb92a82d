"""PushCube: push a cube across the table onto a goal disc."""

from __future__ import annotations

import numpy as np

from sims.mujoco.scene import Cube, Marker
from sims.tasks.base import CUBE_HALF, EpisodeInit, SceneView, Task, Waypoint, reach_reward


class PushCube(Task):
    """Push the red cube onto the green disc."""

    name = "PushCube"
    cubes = (Cube("cube", CUBE_HALF, (0.85, 0.1, 0.1, 1.0)),)
    markers = (Marker("goal", "disc", 0.05, (0.1, 0.8, 0.2, 1.0)),)
    max_episode_steps = 50
    privileged_dim = 16
    success_radius = 0.05
    push_offset = CUBE_HALF + 0.02  # where the tool stands behind the cube

    def sample_episode(self, rng: np.random.Generator) -> EpisodeInit:
        cube_xy = rng.uniform([-0.1, -0.1], [0.05, 0.1])
        angle = rng.uniform(-np.pi / 8, np.pi / 8)
        distance = rng.uniform(0.1, 0.15)
        goal_xy = cube_xy + distance * np.array([np.cos(angle), np.sin(angle)])
        cube = np.array([[*cube_xy, CUBE_HALF]])
        goal = np.array([[*goal_xy, 0.001]])
        return EpisodeInit(cube, rng.uniform(-np.pi / 4, np.pi / 4, size=1), goal, "push the red cube to the green target")

    def _push_point(self, view: SceneView) -> np.ndarray:
        cube = view.cube_pos[:, 0]
        direction = view.marker_pos[:, 0, :2] - cube[:, :2]
        direction /= np.linalg.norm(direction, axis=-1, keepdims=True) + 1e-9
        point = cube.copy()
        point[:, :2] -= direction * self.push_offset
        return point

    def privileged(self, view: SceneView) -> np.ndarray:
        cube, goal = view.cube_pos[:, 0], view.marker_pos[:, 0]
        return np.concatenate(
            [cube, view.cube_quat[:, 0], goal, goal - cube, cube - view.tcp_pos], axis=-1
        ).astype(np.float32)

    def evaluate(self, view: SceneView):
        cube_to_goal = np.linalg.norm(view.marker_pos[:, 0, :2] - view.cube_pos[:, 0, :2], axis=-1)
        tcp_to_push = np.linalg.norm(view.tcp_pos - self._push_point(view), axis=-1)
        behind = tcp_to_push < 0.03
        success = cube_to_goal < self.success_radius
        staged = reach_reward(tcp_to_push) + behind * (1.0 + 2.0 * reach_reward(cube_to_goal))  # at most 4
        reward = np.where(success, 1.0, staged / 4.0)
        return reward, success, self.failed(view)

    def expert_plan(self, view: SceneView) -> list[Waypoint]:
        start = self._push_point(view)
        above = start + np.array([0.0, 0.0, 0.08])
        goal = view.marker_pos[:, 0].copy()
        goal[:, 2] = CUBE_HALF
        return [
            Waypoint(above, grip=-1.0, tolerance=0.02),
            Waypoint(start, grip=-1.0, tolerance=0.01),
            Waypoint(goal, grip=-1.0, tolerance=0.0, speed=0.3, carry=0),
        ]
