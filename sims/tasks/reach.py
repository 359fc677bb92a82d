"""Reach: move the tool centre point to a goal sphere in the air."""

from __future__ import annotations

import numpy as np

from sims.arrays import namespace, norm
from sims.tasks.base import EpisodeInit, FLOATING_GOAL, SceneView, TASKS, Task, Waypoint, reach_reward


@TASKS.register("Reach", attribute="name")
class Reach(Task):
    """Bring the gripper to the green sphere."""

    markers = (FLOATING_GOAL,)
    max_episode_steps = 50
    privileged_dim = 6
    success_radius = 0.03

    def sample_episode(self, rng: np.random.Generator) -> EpisodeInit:
        goal = rng.uniform([-0.1, -0.15, 0.05], [0.1, 0.15, 0.25])
        return EpisodeInit(np.zeros((0, 3)), np.zeros(0), goal[None], "reach the green ball")

    def privileged(self, view: SceneView) -> np.ndarray:
        goal = view.marker_pos[:, 0]
        xp = namespace(goal)
        return xp.astype(xp.concat([goal, goal - view.tcp_pos], axis=-1), xp.float32)

    def evaluate(self, view: SceneView):
        distance = norm(view.marker_pos[:, 0] - view.tcp_pos)
        success = distance < self.success_radius
        reward = namespace(distance).where(success, 1.0, reach_reward(distance))
        return reward, success, self.failed(view)

    def expert_plan(self, view: SceneView) -> list[Waypoint]:
        return [Waypoint(view.marker_pos[:, 0].copy(), grip=1.0, tolerance=0.0)]
