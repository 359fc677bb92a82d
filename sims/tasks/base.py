"""Task definition shared by the tabletop backends: scene objects, episode sampling, reward, success, expert."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

import numpy as np

from sims.mujoco.scene import Cube, Marker

CUBE_HALF = 0.02


@dataclass
class SceneView:
    """Numpy arrays describing the batched world state that tasks read (leading dim N)."""

    tcp_pos: np.ndarray  # [N, 3]
    finger_gap: np.ndarray  # [N] distance between the finger pads
    cube_pos: np.ndarray  # [N, K, 3]
    cube_quat: np.ndarray  # [N, K, 4] (w, x, y, z)
    cube_linvel: np.ndarray  # [N, K, 3]
    marker_pos: np.ndarray  # [N, M, 3]
    params: np.ndarray  # [N, E] per-episode task parameters (e.g. which cube and target)


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
    """A phase of a scripted expert: move the tool to ``target`` with the gripper command ``grip``."""

    target: np.ndarray  # [N, 3]
    grip: float  # -1 closed, +1 open
    tolerance: float  # metres: phase ends when the tool is this close (and min_steps elapsed)
    min_steps: int = 0
    speed: float = 1.0  # cap on the normalised translation command
    carry: int = -1  # index of a held cube whose centre (not the tool) must reach the target, or -1


def reach_reward(distance: np.ndarray) -> np.ndarray:
    """Dense shaping in (0, 1]: 1 at distance 0, about 0.24 at 0.2 m."""
    return 1.0 - np.tanh(5.0 * distance)


def is_grasping(view: SceneView, cube: np.ndarray) -> np.ndarray:
    """Whether the fingers are closed on cube index ``cube`` [N] (pads near it, gap about the cube's width)."""
    rows = np.arange(view.tcp_pos.shape[0])
    pos = view.cube_pos[rows, cube]
    near = np.linalg.norm(view.tcp_pos - pos, axis=-1) < 0.02
    gap = view.finger_gap
    return near & (gap > 2 * CUBE_HALF - 0.005) & (gap < 2 * CUBE_HALF + 0.004)


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


class Task(abc.ABC):
    """A tabletop task: what is in the scene, how episodes start, how they are scored, how an expert solves them."""

    name: str = ""
    cubes: tuple[Cube, ...] = ()
    markers: tuple[Marker, ...] = ()
    max_episode_steps: int = 50
    privileged_dim: int = 0
    params_dim: int = 0

    @abc.abstractmethod
    def sample_episode(self, rng: np.random.Generator) -> EpisodeInit:
        """Draw an episode's initial object poses, markers, instruction and parameters."""

    @abc.abstractmethod
    def privileged(self, view: SceneView) -> np.ndarray:
        """Task state for state-based policies, float32 [N, privileged_dim]."""

    @abc.abstractmethod
    def evaluate(self, view: SceneView) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Dense reward in [0, 1] [N], success [N], failure [N] of the current state."""

    @abc.abstractmethod
    def expert_plan(self, view: SceneView) -> list[Waypoint]:
        """Waypoints of the scripted expert for the current episodes (computed at episode start)."""

    def failed(self, view: SceneView) -> np.ndarray:
        """An episode fails when a cube falls off the table."""
        if view.cube_pos.shape[1] == 0:
            return np.zeros(view.tcp_pos.shape[0], dtype=bool)
        return (view.cube_pos[..., 2] < -0.05).any(axis=1)
