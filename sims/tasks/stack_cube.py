"""StackCube: place the red cube on top of the green cube and let go."""

from __future__ import annotations

import numpy as np

from sims.arrays import const, device, namespace, norm
from sims.mujoco.scene import Cube
from sims.tasks.base import CUBE_HALF, EpisodeInit, SceneView, TASKS, Task, Waypoint, is_grasping, sample_separated_xy
from sims.tasks.rewards import pick_place_reward


@TASKS.register("StackCube", attribute="name")
class StackCube(Task):
    """Stack the red cube on the green cube."""

    cubes = (
        Cube("cube_a", CUBE_HALF, (0.85, 0.1, 0.1, 1.0)),
        Cube("cube_b", CUBE_HALF, (0.1, 0.75, 0.2, 1.0)),
    )
    max_episode_steps = 80
    privileged_dim = 21

    def sample_episode(self, rng: np.random.Generator) -> EpisodeInit:
        xy = sample_separated_xy(rng, 2, [-0.1, -0.1], [0.1, 0.1], min_dist=0.08)
        cubes = np.concatenate([xy, np.full((2, 1), CUBE_HALF)], axis=1)
        return EpisodeInit(cubes, rng.uniform(-np.pi / 4, np.pi / 4, size=2), np.zeros((0, 3)),
                           "stack the red cube on the green cube")

    def privileged(self, view: SceneView) -> np.ndarray:
        xp = namespace(view.cube_pos)
        a, b = view.cube_pos[:, 0], view.cube_pos[:, 1]
        first = xp.zeros(a.shape[0], dtype=xp.int64, device=device(a))
        grasped = xp.astype(is_grasping(view, first), a.dtype)[:, None]
        return xp.astype(xp.concat(
            [a, view.cube_quat[:, 0], b, view.cube_quat[:, 1], b - a, a - view.tcp_pos, grasped], axis=-1
        ), xp.float32)

    def evaluate(self, view: SceneView):
        xp = namespace(view.cube_pos)
        a, b = view.cube_pos[:, 0], view.cube_pos[:, 1]
        on_top = b + const(b, [0.0, 0.0, 2 * CUBE_HALF])
        cube = xp.zeros(a.shape[0], dtype=xp.int64, device=device(a))
        reward, placed = pick_place_reward(view, cube, on_top, 0.02, need_release=True)
        xy_ok = norm(a[:, :2] - b[:, :2]) < 0.02
        z_ok = xp.abs(a[:, 2] - b[:, 2] - 2 * CUBE_HALF) < 0.006
        released = ~is_grasping(view, cube) & (view.finger_gap > 2 * CUBE_HALF + 0.005)
        success = xy_ok & z_ok & released
        return xp.where(success, 1.0, reward), success, self.failed(view)

    def expert_plan(self, view: SceneView) -> list[Waypoint]:
        a, b = view.cube_pos[:, 0].copy(), view.cube_pos[:, 1].copy()
        up = np.array([0.0, 0.0, 0.1])
        place = b + np.array([0.0, 0.0, 2 * CUBE_HALF + 0.004])
        return [
            Waypoint(a + up, grip=1.0, tolerance=0.02),
            Waypoint(a, grip=1.0, tolerance=0.008),
            Waypoint(a, grip=-1.0, tolerance=1.0, min_steps=5),
            Waypoint(a + up, grip=-1.0, tolerance=0.02),
            Waypoint(place + np.array([0.0, 0.0, 0.04]), grip=-1.0, tolerance=0.01),
            Waypoint(place, grip=-1.0, tolerance=0.006),
            Waypoint(place, grip=1.0, tolerance=1.0, min_steps=4),
            Waypoint(place + up, grip=1.0, tolerance=0.0),
        ]
