"""Task definition shared by the tabletop backends: scene objects, episode sampling, reward, success, expert."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

import numpy as np

from sims.arrays import device, namespace, norm, row_index, to_numpy
from sims.mujoco.scene import Cube, Marker
from sims.registry import Registry

CUBE_HALF = 0.02
# The goal of Reach and PickCube. Visual only (success is measured to its centre): large, nearly opaque and on a
# post to the table, so that a 64 px camera can tell where it floats (README, "pixel VLA").
FLOATING_GOAL = Marker("goal", "sphere", 0.03, (0.1, 0.9, 0.2, 0.9), stem=0.3)
# PickCube's goal also marks the table under it (visual only): a camera finds this disc on the table plane as well as
# it finds the cube, and the sphere's height above it (README, "pixel VLA": the goal's height was the error left).
GOAL_SHADOW = Marker("goal_shadow", "disc", 0.03, (0.1, 0.9, 0.2, 0.9))


def with_shadow(goal: np.ndarray) -> np.ndarray:
    """Marker positions [2, 3] of a floating goal [1, 3] and its disc on the table top beneath it."""
    return np.concatenate([goal, goal * np.array([1.0, 1.0, 0.0]) + np.array([0.0, 0.0, 0.001])])


@dataclass
class SceneView:
    """Arrays describing the batched world state that tasks read (leading dim N).

    numpy on the CPU backend, torch tensors on the env's device for ``mujoco_warp``: ``privileged`` and
    ``evaluate`` are array-generic; ``expert_plan`` runs on the host (``view.numpy()``).
    """

    tcp_pos: np.ndarray  # [N, 3]
    finger_gap: np.ndarray  # [N] distance between the finger pads
    cube_pos: np.ndarray  # [N, K, 3]
    cube_quat: np.ndarray  # [N, K, 4] (w, x, y, z)
    cube_linvel: np.ndarray  # [N, K, 3]
    marker_pos: np.ndarray  # [N, M, 3]
    params: np.ndarray  # [N, E] per-episode task parameters (e.g. which cube and target)

    def numpy(self) -> "SceneView":
        """The same view as host numpy arrays."""
        return SceneView(*(to_numpy(getattr(self, f)) for f in self.__dataclass_fields__))


@dataclass
class EpisodeInit:
    """The initial configuration of one episode, drawn from its generator."""

    cube_pos: np.ndarray  # [K, 3]
    cube_yaw: np.ndarray  # [K]
    marker_pos: np.ndarray  # [M, 3]
    instruction: str
    params: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [E]


@dataclass(frozen=True)
class Waypoint:
    """A phase of a scripted expert: move the tool to ``target`` with the gripper command ``grip``. Each field but
    ``target`` is one value for every env, or an array [N] when the envs run different tasks (a suite)."""

    target: np.ndarray  # [N, 3]
    grip: float  # -1 closed, +1 open
    tolerance: float  # metres: phase ends when the tool is this close (and min_steps elapsed)
    min_steps: int = 0
    speed: float = 1.0  # cap on the normalised translation command
    carry: int = -1  # index of a held cube whose centre (not the tool) must reach the target, or -1


def reach_reward(distance):
    """Dense shaping in (0, 1]: 1 at distance 0, about 0.24 at 0.2 m."""
    return 1.0 - namespace(distance).tanh(5.0 * distance)


def is_grasping(view: SceneView, cube):
    """Whether the fingers are closed on cube index ``cube`` [N]: pads near it, gap between the cube's width and the
    diagonal of its face (the tool's yaw is fixed, so the fingers close across a cube turned up to 45 degrees to them;
    an open gripper is 0.08 apart)."""
    pos = view.cube_pos[row_index(cube), cube]
    near = norm(view.tcp_pos - pos) < 0.02
    gap = view.finger_gap
    return near & (gap > 2 * CUBE_HALF - 0.005) & (gap < 2 * CUBE_HALF * np.sqrt(2.0) + 0.004)


def sample_separated_xy(rng: np.random.Generator, count: int, low, high, min_dist: float) -> np.ndarray:
    """Draw ``count`` points in the box [low, high]^2 that are at least ``min_dist`` apart (rejection)."""
    points: list[np.ndarray] = []
    for _ in range(1000):
        candidate = rng.uniform(low, high)
        if all(np.linalg.norm(candidate - p) >= min_dist for p in points):
            points.append(candidate)
            if len(points) == count:
                return np.stack(points)
    raise RuntimeError(f"could not place {count} objects {min_dist} m apart in {low}..{high}")


# env.task <Name>: a module of sims/tasks/ registers its task class here
TASKS = Registry("task", package="sims.tasks", key="env.task (or env=<config>)")


class Task(abc.ABC):
    """A tabletop task: what is in the scene, how episodes start, how they are scored, how an expert solves them."""

    name: str = ""
    cubes: tuple[Cube, ...] = ()
    markers: tuple[Marker, ...] = ()
    max_episode_steps: int = 50
    privileged_dim: int = 0
    # [first, stop) of the task state that says which object goes where, when the rest (e.g. distractor poses)
    # would drown it in a loss that scores the whole state (the VLA's auxiliary loss); None: all of it
    goal_state_dims: tuple[int, int] | None = None
    params_dim: int = 0
    instructions_vary: bool = False  # whether episodes of this task get different instruction texts
    params_follow_markers: bool = False  # True: params derive from where the markers are, so they cannot move alone
    ends_on_success: bool = False  # the env's default for terminate_on_success (a suite's episodes end at success)

    @abc.abstractmethod
    def sample_episode(self, rng: np.random.Generator) -> EpisodeInit:
        """Draw an episode's initial object poses, markers, instruction and parameters."""

    def episode_for(self, rng: np.random.Generator, reset_id: int) -> EpisodeInit:
        """The episode of reset id ``reset_id`` drawn from its generator ``rng`` (a suite picks its task by the id;
        a single task ignores it)."""
        return self.sample_episode(rng)

    @abc.abstractmethod
    def privileged(self, view: SceneView):
        """Task state for state-based policies, float32 [N, privileged_dim] (the view's array type)."""

    @abc.abstractmethod
    def evaluate(self, view: SceneView):
        """Dense reward in [0, 1] [N], success [N], failure [N] of the current state (the view's array type)."""

    @abc.abstractmethod
    def expert_plan(self, view: SceneView) -> list[Waypoint]:
        """Waypoints of the scripted expert for the current episodes (computed at episode start; numpy view)."""

    def failed(self, view: SceneView):
        """An episode fails when a cube falls off the table."""
        xp = namespace(view.tcp_pos)
        if view.cube_pos.shape[1] == 0:
            return xp.zeros(view.tcp_pos.shape[0], dtype=xp.bool, device=device(view.tcp_pos))
        return xp.any(view.cube_pos[..., 2] < -0.05, axis=1)
