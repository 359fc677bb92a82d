"""Dense reward terms shared by the pick-and-place style tasks (array-generic: numpy or torch)."""

from __future__ import annotations

from sims.arrays import namespace, norm, row_index
from sims.tasks.base import CUBE_HALF, SceneView, is_grasping, reach_reward


def pick_place_reward(view: SceneView, cube, place_pos, place_tol: float, need_release: bool):
    """Staged reward (reach, grasp, carry, release) normalised to [0, 1], and whether the cube is placed.

    cube: [N] index of the cube to move; place_pos: [N, 3] where its centre must go.
    """
    xp = namespace(place_pos)
    cube_pos = view.cube_pos[row_index(cube), cube]  # [N, 3]
    reach = reach_reward(norm(view.tcp_pos - cube_pos))
    grasped = xp.astype(is_grasping(view, cube), cube_pos.dtype)
    place_dist = norm(cube_pos - place_pos)
    carry = grasped * reach_reward(place_dist)
    placed = place_dist < place_tol
    staged = reach + grasped + carry  # at most 3
    if not need_release:
        return xp.where(placed, 3.0, staged) / 3.0, placed
    released = xp.astype(view.finger_gap > 2 * CUBE_HALF + 0.01, staged.dtype)
    return xp.where(placed, 3.0 + released, staged) / 4.0, placed
