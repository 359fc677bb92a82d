"""LangPlaceCube: several coloured cubes and targets; the instruction names which cube goes on which target."""

from __future__ import annotations

import numpy as np

from sims.arrays import const, namespace, norm, row_index
from sims.mujoco.scene import Cube, Marker
from sims.tasks.base import CUBE_HALF, EpisodeInit, SceneView, TASKS, Task, Waypoint, is_grasping, sample_separated_xy
from sims.tasks.rewards import pick_place_reward

CUBE_COLOURS = {"red": (0.85, 0.1, 0.1, 1.0), "green": (0.1, 0.75, 0.2, 1.0), "blue": (0.15, 0.3, 0.9, 1.0)}
TARGET_COLOURS = {"yellow": (0.95, 0.85, 0.1, 1.0), "purple": (0.55, 0.15, 0.7, 1.0), "white": (0.95, 0.95, 0.95, 1.0)}
TEMPLATES = (
    "put the {cube} cube on the {target} target",
    "move the {cube} cube to the {target} target",
    "place the {cube} cube onto the {target} target",
)


@TASKS.register("LangPlaceCube", attribute="name")
class LangPlaceCube(Task):
    """Move the named cube onto the named target; the other cubes are distractors."""

    cubes = tuple(Cube(f"cube_{c}", CUBE_HALF, rgba) for c, rgba in CUBE_COLOURS.items())
    markers = tuple(Marker(f"target_{t}", "disc", 0.035, rgba) for t, rgba in TARGET_COLOURS.items())
    max_episode_steps = 80
    privileged_dim = 3 * 7 + 3 * 3 + 3 + 3 + 3 + 3 + 1
    goal_state_dims = (3 * 7, privileged_dim)  # all but the cube poses: targets, named cube and target, offsets, grasp
    params_dim = 2  # index of the commanded cube, index of the commanded target
    instructions_vary = True
    target_radius = 0.03

    def sample_episode(self, rng: np.random.Generator) -> EpisodeInit:
        xy = sample_separated_xy(rng, 6, [-0.12, -0.15], [0.12, 0.15], min_dist=0.075)
        cubes = np.concatenate([xy[:3], np.full((3, 1), CUBE_HALF)], axis=1)
        targets = np.concatenate([xy[3:], np.full((3, 1), 0.001)], axis=1)
        cube, target = int(rng.integers(3)), int(rng.integers(3))
        template = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
        text = template.format(cube=list(CUBE_COLOURS)[cube], target=list(TARGET_COLOURS)[target])
        return EpisodeInit(cubes, rng.uniform(-np.pi / 4, np.pi / 4, size=3), targets, text,
                           params=np.array([cube, target], dtype=np.float64))

    @staticmethod
    def _indices(view: SceneView):
        xp = namespace(view.params)
        return xp.astype(view.params[:, 0], xp.int64), xp.astype(view.params[:, 1], xp.int64)

    def privileged(self, view: SceneView):
        xp = namespace(view.cube_pos)
        n = view.tcp_pos.shape[0]
        rows = row_index(view.tcp_pos)
        cube, target = self._indices(view)
        chosen = view.cube_pos[rows, cube]
        goal = view.marker_pos[rows, target]
        one_hot = const(view.tcp_pos, np.eye(3))
        parts = [
            xp.reshape(xp.concat([view.cube_pos, view.cube_quat], axis=-1), (n, -1)),
            xp.reshape(view.marker_pos, (n, -1)),
            one_hot[cube],
            one_hot[target],
            goal - chosen,
            chosen - view.tcp_pos,
            xp.astype(is_grasping(view, cube), chosen.dtype)[:, None],
        ]
        return xp.astype(xp.concat(parts, axis=-1), xp.float32)

    def evaluate(self, view: SceneView):
        xp = namespace(view.cube_pos)
        rows = row_index(view.tcp_pos)
        cube, target = self._indices(view)
        place = view.marker_pos[rows, target] + const(view.marker_pos, [0.0, 0.0, CUBE_HALF - 0.001])
        reward, placed = pick_place_reward(view, cube, place, 0.02, need_release=True)
        chosen = view.cube_pos[rows, cube]
        on_target = norm(chosen[:, :2] - place[:, :2]) < self.target_radius
        resting = chosen[:, 2] < CUBE_HALF + 0.005
        released = view.finger_gap > 2 * CUBE_HALF + 0.005
        success = on_target & resting & released
        return xp.where(success, 1.0, reward), success, self.failed(view)

    def expert_plan(self, view: SceneView) -> list[Waypoint]:
        rows = np.arange(view.tcp_pos.shape[0])
        cube, target = self._indices(view)
        start = view.cube_pos[rows, cube].copy()
        place = view.marker_pos[rows, target] + np.array([0.0, 0.0, CUBE_HALF + 0.003])
        up = np.array([0.0, 0.0, 0.1])
        return [
            Waypoint(start + up, grip=1.0, tolerance=0.02),
            Waypoint(start, grip=1.0, tolerance=0.008),
            Waypoint(start, grip=-1.0, tolerance=1.0, min_steps=5),
            Waypoint(start + up, grip=-1.0, tolerance=0.02),
            Waypoint(place + up * 0.5, grip=-1.0, tolerance=0.01),
            Waypoint(place, grip=-1.0, tolerance=0.008),
            Waypoint(place, grip=1.0, tolerance=1.0, min_steps=4),
            Waypoint(place + up, grip=1.0, tolerance=0.0),
        ]
