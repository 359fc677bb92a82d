"""Informed RRT* (Gammell et al. 2014) in a box-bounded configuration space, with path shortcutting.

Until a first solution exists, samples are uniform in the box (with a small goal bias); afterwards they are
drawn directly from the prolate hyperspheroid of configurations that could improve the best path
(foci start and goal, transverse diameter the best cost), so the search focuses as the solution improves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass
class PlanResult:
    """A collision-free path [K, D] (start ... goal) and its length, or ``path is None`` when none was found."""

    path: np.ndarray | None
    cost: float
    best_cost_history: list[float] = field(default_factory=list)  # best cost after each iteration (inf before)
    iterations: int = 0


def sample_unit_ball(rng: np.random.Generator, dim: int) -> np.ndarray:
    """A uniform sample of the unit ball in R^dim."""
    direction = rng.normal(size=dim)
    direction /= np.linalg.norm(direction)
    return direction * rng.random() ** (1.0 / dim)


def ellipsoid_frame(start: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """Rotation C [D, D] taking the first axis to the start->goal direction (SVD construction of the paper)."""
    a1 = (goal - start) / np.linalg.norm(goal - start)
    u, _, vt = np.linalg.svd(np.outer(a1, np.eye(len(start))[0]))
    middle = np.ones(len(start))
    middle[-1] = np.linalg.det(u) * np.linalg.det(vt.T)
    return u @ np.diag(middle) @ vt


def sample_informed(rng: np.random.Generator, start: np.ndarray, goal: np.ndarray, best_cost: float,
                    frame: np.ndarray) -> np.ndarray:
    """A uniform sample of {x : |x - start| + |x - goal| <= best_cost}."""
    c_min = np.linalg.norm(goal - start)
    radii = np.full(len(start), math.sqrt(max(best_cost**2 - c_min**2, 0.0)) / 2.0)
    radii[0] = best_cost / 2.0
    return frame @ (radii * sample_unit_ball(rng, len(start))) + (start + goal) / 2.0


class InformedRRTStar:
    """Asymptotically optimal planner; ``is_free(q) -> bool`` checks one configuration [D]."""

    def __init__(self, is_free: Callable[[np.ndarray], bool], low, high, step: float = 0.3,
                 edge_resolution: float = 0.05, goal_bias: float = 0.05, seed: int = 0):
        self.is_free = is_free
        self.low, self.high = np.asarray(low, float), np.asarray(high, float)
        self.step = step
        self.edge_resolution = edge_resolution
        self.goal_bias = goal_bias
        self.rng = np.random.default_rng(seed)

    def edge_free(self, a: np.ndarray, b: np.ndarray) -> bool:
        """Whether the straight segment a -> b is collision-free (checked every ``edge_resolution``)."""
        count = max(1, int(math.ceil(np.linalg.norm(b - a) / self.edge_resolution)))
        return all(self.is_free(a + (b - a) * t) for t in np.linspace(0.0, 1.0, count + 1)[1:])

    def plan(self, start, goal, iterations: int = 2000, shortcut_rounds: int = 100) -> PlanResult:
        """Grow the tree for ``iterations`` samples; returns the best path found, shortcut."""
        start, goal = np.asarray(start, float), np.asarray(goal, float)
        for name, q in (("start", start), ("goal", goal)):
            if not self.is_free(q):
                raise ValueError(f"the {name} configuration {np.round(q, 3).tolist()} is in collision")
        dim = len(start)
        nodes, parents, costs = [start], [-1], [0.0]
        goal_links: dict[int, float] = {}  # node -> length of its free straight edge to the goal
        goal_parent, best = -1, math.inf
        frame = ellipsoid_frame(start, goal) if np.linalg.norm(goal - start) > 0 else np.eye(dim)
        history = []
        gamma = 2.0 * (1.0 + 1.0 / dim) ** (1.0 / dim) * float(np.prod(self.high - self.low)) ** (1.0 / dim)
        for _ in range(iterations):
            if best < math.inf:
                x = sample_informed(self.rng, start, goal, best, frame)
                if (x < self.low).any() or (x > self.high).any():
                    history.append(best)
                    continue
            elif self.rng.random() < self.goal_bias:
                x = goal
            else:
                x = self.rng.uniform(self.low, self.high)
            tree = np.asarray(nodes)
            distances = np.linalg.norm(tree - x, axis=1)
            nearest = int(distances.argmin())
            direction = x - tree[nearest]
            length = np.linalg.norm(direction)
            new = x if length <= self.step else tree[nearest] + direction * (self.step / length)
            if not self.is_free(new) or not self.edge_free(tree[nearest], new):
                history.append(best)
                continue
            radius = min(self.step * 1.5, gamma * (math.log(len(nodes) + 1) / (len(nodes) + 1)) ** (1.0 / dim))
            near = np.flatnonzero(np.linalg.norm(tree - new, axis=1) <= max(radius, 1e-9))
            parent, parent_cost = nearest, costs[nearest] + np.linalg.norm(new - tree[nearest])
            for j in near:  # choose the cheapest collision-free parent
                c = costs[j] + np.linalg.norm(new - tree[j])
                if c < parent_cost and self.edge_free(tree[j], new):
                    parent, parent_cost = int(j), c
            nodes.append(new)
            parents.append(parent)
            costs.append(parent_cost)
            index = len(nodes) - 1
            for j in near:  # rewire neighbours through the new node when that is cheaper
                c = parent_cost + np.linalg.norm(tree[j] - new)
                if c < costs[j] and self.edge_free(new, tree[j]):
                    parents[j] = index
                    self._lower_subtree_cost(parents, costs, int(j), costs[j] - c)
            if np.linalg.norm(goal - new) <= self.step and self.edge_free(new, goal):
                goal_links[index] = float(np.linalg.norm(goal - new))
            if goal_links:
                goal_parent = min(goal_links, key=lambda k: costs[k] + goal_links[k])
                best = costs[goal_parent] + goal_links[goal_parent]
            history.append(best)
        if goal_parent < 0:
            return PlanResult(None, math.inf, history, iterations)
        path = self._extract(nodes, parents, goal_parent, goal)
        path = self.shortcut(path, shortcut_rounds)
        return PlanResult(path, path_length(path), history, iterations)

    @staticmethod
    def _lower_subtree_cost(parents: list[int], costs: list[float], root: int, delta: float) -> None:
        """Subtract ``delta`` from the cost of ``root`` and of every node below it."""
        children: dict[int, list[int]] = {}
        for node, parent in enumerate(parents):
            children.setdefault(parent, []).append(node)
        stack = [root]
        while stack:
            node = stack.pop()
            costs[node] -= delta
            stack.extend(children.get(node, []))

    @staticmethod
    def _extract(nodes, parents, goal_parent, goal) -> np.ndarray:
        path = [goal]
        i = goal_parent
        while i >= 0:
            path.append(nodes[i])
            i = parents[i]
        return np.asarray(path[::-1])

    def shortcut(self, path: np.ndarray, rounds: int) -> np.ndarray:
        """Randomly replace sub-paths by straight collision-free segments (never lengthens the path)."""
        path = list(path)
        for _ in range(rounds):
            if len(path) < 3:
                break
            i, j = sorted(self.rng.choice(len(path), size=2, replace=False))
            if j - i >= 2 and self.edge_free(path[i], path[j]):
                path = path[: i + 1] + path[j:]
        return np.asarray(path)


def path_length(path: np.ndarray) -> float:
    """Sum of segment lengths of a path [K, D]."""
    return float(np.linalg.norm(np.diff(path, axis=0), axis=1).sum())
