"""Backend-neutral batched environment: the contract every simulator backend of embodied-vla implements.

Tensors cross this boundary with a leading env dimension N. Observations are a dict:
  ``state``       float32 [N, D]  proprioception (joint positions, velocities, gripper, tool position)
  ``privileged``  float32 [N, P]  task state a state-based policy needs (object poses, goals)
  ``rgb``         {camera: uint8 [N, H, W, 3]} when cameras are enabled
  ``instruction`` list[str] of length N
  ``elapsed``     int64 [N]  control steps since the episode started (0 on the first observation)
Backends implement four hooks (``_reset_worlds``, ``_advance``, ``_observe``, ``_evaluate``); this class owns
validation, clipping, episode bookkeeping, automatic resets, reset ids and action chunks.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np
import torch

from sims.registry import Registry

# env.backend <name>: its env class registers itself when its module is imported, which happens only when that
# backend is asked for (each pulls in its own simulator: MuJoCo, MuJoCo Warp, ManiSkill/SAPIEN)
BACKENDS = Registry("simulator backend", key="env.backend", lazy={
    "mujoco": "sims.mujoco.env", "mujoco_warp": "sims.mujoco_warp.env", "maniskill": "sims.maniskill.env",
    "libero": "sims.libero.env"})


@dataclass(frozen=True)
class ActionSpec:
    """Shape and bounds of one env's action; actions outside [low, high] are clipped and counted."""

    dim: int
    low: float
    high: float
    names: tuple[str, ...]


@dataclass(frozen=True)
class ObservationSpec:
    """Sizes of the observation entries of one env."""

    state_dim: int
    privileged_dim: int
    cameras: tuple[str, ...]
    image_height: int
    image_width: int
    # [first, stop) of the task state that says what goes where (Task.goal_state_dims); None: all of it
    goal_state_dims: tuple[int, int] | None = None


@dataclass
class StepResult:
    """What a backend reports after advancing some envs by one control step (numpy, batch-major)."""

    reward: np.ndarray  # float32 [N]
    success: np.ndarray  # bool [N]
    failed: np.ndarray  # bool [N], a terminal failure (e.g. object fell off the table)


def episode_rng(seed: int, reset_id: int) -> np.random.Generator:
    """The random generator of one episode: identical for identical (seed, reset_id) on any env and backend."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(reset_id) & 0xFFFFFFFF, 0x5EED])


class BatchedEnv(abc.ABC):
    """N worlds stepped together; ``reset``, ``step`` and ``chunk_step`` on torch tensors."""

    def __init__(
        self,
        num_envs: int,
        action_spec: ActionSpec,
        observation_spec: ObservationSpec,
        max_episode_steps: int,
        terminate_on_success: bool = False,
        autoreset: bool = True,
    ):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1, got {max_episode_steps}")
        self.num_envs = num_envs
        self.action_spec = action_spec
        self.observation_spec = observation_spec
        self.max_episode_steps = max_episode_steps
        self.terminate_on_success = terminate_on_success
        self.autoreset = autoreset
        self._seed = 0
        self._next_reset_id = 0
        self._elapsed = np.zeros(num_envs, dtype=np.int64)
        self._finished = np.zeros(num_envs, dtype=bool)  # episodes ended and not reset (autoreset=False)
        self.reset_ids = np.zeros(num_envs, dtype=np.int64)
        self._needs_reset = True

    # ----------------------------------------------------------------- backend hooks
    @abc.abstractmethod
    def _reset_worlds(self, env_ids: np.ndarray, rngs: list[np.random.Generator]) -> None:
        """Put envs ``env_ids`` in the initial configuration drawn from their episode generators."""

    @abc.abstractmethod
    def _advance(self, actions: np.ndarray, env_ids: np.ndarray) -> None:
        """Apply clipped actions [len(env_ids), A] to envs ``env_ids`` for one control step."""

    @abc.abstractmethod
    def _observe(self) -> dict:
        """Observation of every env (numpy arrays, instruction list)."""

    @abc.abstractmethod
    def _evaluate(self) -> StepResult:
        """Reward and success of every env in its current state."""

    # ----------------------------------------------------------------- public API
    def reset(self, seed: int | None = None, reset_ids=None) -> tuple[dict, dict]:
        """Reset every env. Env i gets the initial configuration of (seed, reset_ids[i]).

        Without ``reset_ids`` each env takes the next unused id, so all envs differ. The same (seed, id)
        always gives the same initial state, whatever the env index or the number of envs.
        """
        ids = self._claim_reset_ids(seed, reset_ids)
        self._reset_subset(np.arange(self.num_envs), ids)
        self._needs_reset = False
        return self._to_torch(self._observation()), {"reset_ids": torch.from_numpy(self.reset_ids.copy())}

    def step(self, action) -> tuple[dict, torch.Tensor, torch.Tensor, torch.Tensor, dict]:
        """Advance every env one control step with ``action`` [N, A].

        Returns obs, reward [N], terminated [N], truncated [N], info. ``info["success"]`` is the success of
        the state the step reached (before any automatic reset); for envs that finished,
        ``info["final_obs"]`` holds their last observation and the returned obs is the new episode's first.
        """
        actions = self._validate(action, expect_chunk=False)[:, None, :]
        obs, rewards, terminated, truncated, info = self._run_chunk(actions)
        info.pop("step_mask")
        return obs, rewards[:, 0], terminated, truncated, info

    def chunk_step(self, actions) -> tuple[dict, torch.Tensor, torch.Tensor, torch.Tensor, dict]:
        """Execute an action chunk [N, T, A]; returns obs, per-step rewards [N, T], terminated, truncated, info.

        An env whose episode ends inside the chunk executes no further actions of that chunk: its remaining
        rewards are 0 and ``info["step_mask"]`` [N, T] marks the steps that ran. It is reset at the chunk's end.
        """
        return self._run_chunk(self._validate(actions, expect_chunk=True))

    # ----------------------------------------------------------------- internals
    def _claim_reset_ids(self, seed: int | None, reset_ids) -> np.ndarray:
        """The reset id of every env for ``reset(seed, reset_ids)``, validated; fresh ids when none are given."""
        if seed is not None:
            self._seed = int(seed)
            self._next_reset_id = 0
        if reset_ids is None:
            return self.next_reset_ids(self.num_envs)
        ids = np.asarray(torch.as_tensor(reset_ids).cpu().numpy(), dtype=np.int64).reshape(-1)
        if ids.shape != (self.num_envs,):
            raise ValueError(f"reset_ids must have one id per env ({self.num_envs}), got shape {ids.shape}")
        if (ids < 0).any():
            raise ValueError(f"reset_ids must be non-negative, got {ids[ids < 0][:5].tolist()}")
        self._next_reset_id = max(self._next_reset_id, int(ids.max()) + 1)
        return ids

    def _action_tensor(self, action, expect_chunk: bool) -> torch.Tensor:
        """``action`` as a tensor of the expected shape, or a clear error (no finiteness check yet)."""
        if self._needs_reset:
            raise RuntimeError("call reset() before step(): the env has no episode yet")
        if isinstance(action, np.ndarray):
            action = torch.from_numpy(action)
        if not isinstance(action, torch.Tensor):
            raise TypeError(f"actions must be a torch.Tensor or numpy array, got {type(action).__name__}")
        expected = "[num_envs, T, action_dim]" if expect_chunk else "[num_envs, action_dim]"
        ndim = 3 if expect_chunk else 2
        a = self.action_spec.dim
        if action.ndim != ndim or action.shape[0] != self.num_envs or action.shape[-1] != a:
            raise ValueError(
                f"action has shape {tuple(action.shape)}, expected {expected} = "
                f"[{self.num_envs}, {'T, ' if expect_chunk else ''}{a}]"
            )
        if expect_chunk and action.shape[1] < 1:
            raise ValueError("an action chunk needs at least one step (T >= 1)")
        return action

    def _observation(self) -> dict:
        """The backend's observation plus the episode step counter (policies with action chunks use it)."""
        obs = self._observe()
        obs["elapsed"] = self._elapsed.copy()
        return obs

    def _reset_subset(self, env_ids: np.ndarray, ids: np.ndarray) -> None:
        self.reset_ids[env_ids] = ids
        self._elapsed[env_ids] = 0
        self._finished[env_ids] = False
        self._reset_worlds(env_ids, [episode_rng(self._seed, k) for k in ids])

    def _validate(self, action, expect_chunk: bool) -> np.ndarray:
        array = self._action_tensor(action, expect_chunk).detach().to("cpu", torch.float32).numpy()
        finite = np.isfinite(array)
        if not finite.all():
            bad_envs = np.unique(np.nonzero(~finite)[0])
            raise ValueError(
                f"action contains NaN or inf for env(s) {bad_envs[:10].tolist()}; "
                "check the policy output (e.g. a diverged log-std) before stepping"
            )
        return array

    def _run_chunk(self, actions: np.ndarray):
        n, horizon, _ = actions.shape
        low, high = self.action_spec.low, self.action_spec.high
        clipped = np.clip(actions, low, high)
        num_clipped = (clipped != actions).sum(axis=(1, 2))
        rewards = np.zeros((n, horizon), dtype=np.float32)
        step_mask = np.zeros((n, horizon), dtype=bool)
        terminated = np.zeros(n, dtype=bool)
        truncated = np.zeros(n, dtype=bool)
        success = np.zeros(n, dtype=bool)
        active = ~self._finished
        for t in range(horizon):
            ids = np.nonzero(active)[0]
            if ids.size == 0:
                break
            self._advance(clipped[ids, t], ids)
            self._elapsed[ids] += 1
            result = self._evaluate()
            rewards[ids, t] = result.reward[ids]
            step_mask[ids, t] = True
            success[ids] = result.success[ids]
            ended_ok = result.success[ids] & self.terminate_on_success
            terminated[ids] = ended_ok | result.failed[ids]
            truncated[ids] = (self._elapsed[ids] >= self.max_episode_steps) & ~terminated[ids]
            active[ids] = ~(terminated[ids] | truncated[ids])
        obs = self._observation()
        done = terminated | truncated
        info = {
            "success": torch.from_numpy(success),
            "num_clipped": torch.from_numpy(num_clipped.astype(np.int64)),
            "step_mask": torch.from_numpy(step_mask),
            "elapsed_steps": torch.from_numpy(self._elapsed.copy()),
            "reset_ids": torch.from_numpy(self.reset_ids.copy()),
        }
        if done.any():
            final_obs = self._to_torch(obs, copy=True)
            info["final_obs"] = final_obs
            info["done_mask"] = torch.from_numpy(done.copy())
            if self.autoreset:
                done_ids = np.nonzero(done)[0]
                self._reset_subset(done_ids, self.next_reset_ids(done_ids.size))
                obs = self._observation()
            else:
                self._finished |= done
                self._needs_reset = bool(self._finished.all())
        return (
            self._to_torch(obs),
            torch.from_numpy(rewards),
            torch.from_numpy(terminated),
            torch.from_numpy(truncated),
            info,
        )

    @staticmethod
    def _to_torch(obs: dict, copy: bool = False) -> dict:
        out = {}
        for key, value in obs.items():
            if isinstance(value, dict):
                out[key] = BatchedEnv._to_torch(value, copy)
            elif isinstance(value, np.ndarray):
                out[key] = torch.from_numpy(value.copy() if copy else value)
            else:
                out[key] = list(value)
        return out

    def next_reset_ids(self, count: int) -> np.ndarray:
        """Reserve ``count`` fresh reset ids (e.g. one per GRPO group, repeated over the group's envs)."""
        ids = np.arange(self._next_reset_id, self._next_reset_id + count, dtype=np.int64)
        self._next_reset_id += count
        return ids

    def get_state(self) -> dict:
        """Everything needed to continue exactly from here (bookkeeping plus the backend's world state)."""
        return {
            "seed": self._seed,
            "next_reset_id": self._next_reset_id,
            "elapsed": torch.from_numpy(self._elapsed.copy()),
            "finished": torch.from_numpy(self._finished.copy()),
            "reset_ids": torch.from_numpy(self.reset_ids.copy()),
            "needs_reset": self._needs_reset,
            "world": self._get_world_state(),
        }

    def set_state(self, state: dict) -> dict:
        """Restore a ``get_state()`` snapshot; returns the current observation."""
        self._seed = int(state["seed"])
        self._next_reset_id = int(state["next_reset_id"])
        self._elapsed[:] = state["elapsed"].numpy()
        self._finished[:] = state["finished"].numpy()
        self.reset_ids[:] = state["reset_ids"].numpy()
        self._needs_reset = bool(state["needs_reset"])
        self._set_world_state(state["world"])
        return self._to_torch(self._observation())

    def _get_world_state(self) -> dict:
        raise NotImplementedError(f"{type(self).__name__} cannot snapshot its worlds (needed for exact resume)")

    def _set_world_state(self, state: dict) -> None:
        raise NotImplementedError(f"{type(self).__name__} cannot restore its worlds (needed for exact resume)")

    def close(self) -> None:
        """Release renderers and worker threads."""
