"""Dense reward terms shared by the pick-and-place style tasks."""

from __future__ import annotations

import numpy as np

from sims.tasks.base import CUBE_HALF, SceneView, is_grasping, reach_reward


def pick_place_reward(
    view: SceneView, cube: np.ndarray, place_pos: np.ndarray, place_tol: float, need_release: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Staged reward (reach, grasp, carry, release) normalised to [0, 1], and whether the cube is placed.

    cube: [N] index of the cube to move; place_pos: [N, 3] where its centre must go.
    """
    rows = np.arange(cube.shape[0])
    cube_pos = view.cube_pos[rows, cube]  # [N, 3]
    reach = reach_reward(np.linalg.norm(view.tcp_pos - cube_pos, axis=-1))
    grasped = is_grasping(view, cube).astype(np.float64)
    place_dist = np.linalg.norm(cube_pos - place_pos, axis=-1)
    carry = grasped * reach_reward(place_dist)
    placed = place_dist < place_tol
    staged = reach + grasped + carry  # at most 3
    if not need_release:
        return np.where(placed, 3.0, staged) / 3.0, placed
    released = view.finger_gap > 2 * CUBE_HALF + 0.01
    return np.where(placed, 3.0 + released, staged) / 4.0, placed
