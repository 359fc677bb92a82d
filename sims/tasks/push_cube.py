"""PushCube: push a cube across the table onto a goal disc."""

from __future__ import annotations

import numpy as np

from sims.arrays import namespace, norm
from sims.mujoco.scene import Cube, Marker
from sims.tasks.base import CUBE_HALF, EpisodeInit, SceneView, TASKS, Task, Waypoint, reach_reward


@TASKS.register("PushCube", attribute="name")
class PushCube(Task):
    """Push the red cube onto the green disc.

    The push direction (initial cube to goal) is fixed at episode start and stored in the episode
    parameters, so the tool's target pose behind the cube never flips when the cube overshoots.
    """

    cubes = (Cube("cube", CUBE_HALF, (0.85, 0.1, 0.1, 1.0)),)
    markers = (Marker("goal", "disc", 0.05, (0.1, 0.8, 0.2, 1.0)),)
    max_episode_steps = 50
    privileged_dim = 18
    params_dim = 2  # unit push direction in the table plane
    params_follow_markers = True  # the push direction points at the goal
    success_radius = 0.05
    push_offset = CUBE_HALF + 0.01  # tool centre behind the cube centre, along the push direction
    behind_tolerance = 0.02  # metres from the push point at which pushing counts

    def sample_episode(self, rng: np.random.Generator) -> EpisodeInit:
        cube_xy = rng.uniform([-0.1, -0.1], [0.05, 0.1])
        angle = rng.uniform(-np.pi / 8, np.pi / 8)
        direction = np.array([np.cos(angle), np.sin(angle)])
        goal_xy = cube_xy + rng.uniform(0.1, 0.15) * direction
        cube = np.array([[*cube_xy, CUBE_HALF]])
        goal = np.array([[*goal_xy, 0.001]])
        return EpisodeInit(cube, rng.uniform(-np.pi / 4, np.pi / 4, size=1), goal,
                           "push the red cube to the green target", params=direction)

    def _push_point(self, view: SceneView):
        xp = namespace(view.cube_pos)
        offset = xp.concat([view.params * self.push_offset, view.params[:, :1] * 0.0], axis=-1)  # [N, 3]
        return view.cube_pos[:, 0] - offset

    def privileged(self, view: SceneView) -> np.ndarray:
        xp = namespace(view.cube_pos)
        cube, goal = view.cube_pos[:, 0], view.marker_pos[:, 0]
        return xp.astype(xp.concat(
            [cube, view.cube_quat[:, 0], goal, goal - cube, self._push_point(view) - view.tcp_pos, view.params],
            axis=-1,
        ), xp.float32)

    def evaluate(self, view: SceneView):
        xp = namespace(view.cube_pos)
        cube_to_goal = norm(view.marker_pos[:, 0, :2] - view.cube_pos[:, 0, :2])
        tcp_to_push = norm(view.tcp_pos - self._push_point(view))
        behind = xp.astype(tcp_to_push < self.behind_tolerance, tcp_to_push.dtype)
        success = cube_to_goal < self.success_radius
        staged = reach_reward(tcp_to_push) + behind * reach_reward(cube_to_goal)  # at most 2
        reward = xp.where(success, 1.0, staged / 2.0)
        return reward, success, self.failed(view)

    def expert_plan(self, view: SceneView) -> list[Waypoint]:
        start = self._push_point(view)
        start[:, :2] -= view.params * 0.01  # stand a little further back before moving in
        above = start + np.array([0.0, 0.0, 0.08])
        goal = view.marker_pos[:, 0].copy()
        goal[:, 2] = CUBE_HALF
        return [
            Waypoint(above, grip=-1.0, tolerance=0.02),
            Waypoint(start, grip=-1.0, tolerance=0.01),
            Waypoint(goal, grip=-1.0, tolerance=0.0, speed=0.3, carry=0),
        ]
