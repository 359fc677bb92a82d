"""TwinRL's failure mining: evaluate the policy in the twin over many initial configurations, map where it fails,
and propose failure-prone configurations for the next resets of the arm (shown to the person as object poses; the
sim twin applies them itself: ``RobotEnv.queue_resets``).

A configuration is a reset id of one seed: the same (seed, reset id) gives the same scene in every env of the task,
the twin's included, so a proposal is an id, and its object poses are what the person is shown.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embodied.rollout.evaluate import run_episodes


def initial_configurations(env, seed: int, reset_ids: np.ndarray) -> np.ndarray:
    """[K, F] object poses at the start of each episode (seed, reset id): every cube's x, y (m) and yaw (rad), then
    every marker's x, y, z (m). ``env``: a MuJoCo env of the task (``scene_view``), built with autoreset=False."""
    reset_ids = np.asarray(reset_ids, np.int64)
    rows, n = [], env.num_envs
    for start in range(0, len(reset_ids), n):
        ids = reset_ids[start:start + n]
        env.reset(seed=seed, reset_ids=np.concatenate([ids, np.repeat(ids[-1:], n - len(ids))]))  # pad the wave
        view = env.scene_view().numpy()
        quat = view.cube_quat  # [N, K, 4] (w, x, y, z): cubes turn about z only at reset
        yaw = 2 * np.arctan2(quat[..., 3], quat[..., 0])
        poses = np.concatenate([view.cube_pos[..., :2], yaw[..., None]], -1).reshape(n, -1)
        rows.append(np.concatenate([poses, view.marker_pos.reshape(n, -1)], -1)[:len(ids)])
    return np.concatenate(rows)


def describe_configuration(features: np.ndarray, cubes: int) -> str:
    """The object poses of one configuration as a person sets them up (centimetres and degrees)."""
    parts = [f"cube {i + 1} at x {100 * x:.1f} cm, y {100 * y:.1f} cm, turned {np.degrees(yaw):.0f} deg"
             for i, (x, y, yaw) in enumerate(features[:3 * cubes].reshape(cubes, 3))]
    markers = features[3 * cubes:].reshape(-1, 3)
    parts += [f"target {i + 1} at x {100 * x:.1f} cm, y {100 * y:.1f} cm, z {100 * z:.1f} cm"
              for i, (x, y, z) in enumerate(markers)]
    return "; ".join(parts)


class FailureMap:
    """P(fail) at a configuration: the failure rate of its ``k`` nearest evaluated configurations (features
    z-scored with the evaluated ones' statistics)."""

    def __init__(self, features: np.ndarray, failed: np.ndarray, k: int = 5):
        if len(features) != len(failed) or len(features) < k:
            raise ValueError(f"need at least k={k} evaluated configurations with one outcome each, got "
                             f"{len(features)} and {len(failed)}")
        self.mean, self.std = features.mean(0), features.std(0) + 1e-6
        self.points, self.failed, self.k = (features - self.mean) / self.std, failed.astype(np.float64), k

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """P(fail) [C] of configurations [C, F]."""
        z = (features - self.mean) / self.std
        distances = ((z[:, None, :] - self.points[None]) ** 2).sum(-1)  # [C, K]
        nearest = np.argpartition(distances, self.k - 1, axis=1)[:, :self.k]
        return self.failed[nearest].mean(1)


def propose(failure_probability: np.ndarray, count: int, informative: tuple[float, float] = (0.5, 1.0),
            generator: np.random.Generator | None = None) -> np.ndarray:
    """Indices of ``count`` candidates to reset to: drawn among those whose P(fail) lies in ``informative``
    (failure-prone; lower the top below 1 to skip configurations the policy never solves), weighted by P(fail);
    the most failure-prone of the rest when too few qualify."""
    generator = generator or np.random.default_rng(0)
    low, high = informative
    inside = np.nonzero((failure_probability >= low) & (failure_probability <= high))[0]
    weights = failure_probability[inside] + 1e-9
    chosen = generator.choice(inside, size=min(count, len(inside)), replace=False, p=weights / weights.sum()) \
        if len(inside) else np.zeros(0, np.int64)
    if len(chosen) < count:
        taken = set(chosen.tolist())
        rest = [i for i in np.argsort(-failure_probability, kind="stable") if i not in taken]
        chosen = np.concatenate([chosen, np.asarray(rest[:count - len(chosen)], np.int64)])
    return chosen.astype(np.int64)


@dataclass
class MiningResult:
    """What one round of failure mining found: the evaluated success rate and the proposed reset ids."""

    success_rate: float  # of the policy over the evaluated configurations
    reset_ids: np.ndarray  # [count] proposed reset ids of the mining seed
    failure_probability: np.ndarray  # [count] the map's P(fail) of each proposal
    features: np.ndarray  # [count, F] their object poses
    cubes: int  # how many of each row's poses are cubes (the rest are markers)

    def descriptions(self) -> dict[int, str]:
        """Reset id -> its object poses as a person sets them up (``describe_configuration``)."""
        return {int(reset_id): describe_configuration(row, self.cubes)
                for reset_id, row in zip(self.reset_ids, self.features)}


def mine_failures(policy, env, seed: int, evaluated: int, candidates: int, count: int, k: int = 5,
                  informative: tuple[float, float] = (0.5, 1.0)) -> MiningResult:
    """Evaluate ``policy`` on reset ids 0..evaluated-1 of ``seed`` in ``env`` (the twin's task, autoreset=False),
    map its failures, and propose ``count`` of the next ``candidates`` ids."""
    episodes, _ = run_episodes(policy, env, evaluated, seed)
    failed = ~np.array([episode["success_once"] for episode in episodes])
    failure_map = FailureMap(initial_configurations(env, seed, np.arange(evaluated)), failed, k)
    candidate_ids = np.arange(evaluated, evaluated + candidates)
    candidate_features = initial_configurations(env, seed, candidate_ids)
    probability = failure_map(candidate_features)
    chosen = propose(probability, count, informative, np.random.default_rng(seed))
    cubes = env.scene_view().numpy().cube_pos.shape[1]
    return MiningResult(float(1 - failed.mean()), candidate_ids[chosen], probability[chosen],
                        candidate_features[chosen], cubes)
