"""Episode bookkeeping on the simulator's device: ``BatchedEnv``'s contract with torch tensors end to end.

A backend whose world state lives on a device (``mujoco_warp``) keeps actions, rewards, success, step counters,
reset ids and automatic resets there too. Per control step the host reads two scalars (whether the action was
finite, how many episodes ended) and nothing else; observations come back as tensors on ``self.device``.
"""

from __future__ import annotations

import abc

import torch

from sims.api import BatchedEnv


class DeviceBatchedEnv(BatchedEnv):
    """``BatchedEnv`` whose bookkeeping runs on ``self.device``; backends implement the device hooks below."""

    device: torch.device

    def _init_device_bookkeeping(self, device: torch.device) -> None:
        """Replace the host counters of ``BatchedEnv`` by tensors on ``device`` (call after its ``__init__``)."""
        self.device = device
        n = self.num_envs
        self._elapsed = torch.zeros(n, dtype=torch.int64, device=device)
        self._finished = torch.zeros(n, dtype=torch.bool, device=device)
        self.reset_ids = torch.zeros(n, dtype=torch.int64, device=device)
        self._any_finished = False  # host flag: some env waits for reset() (autoreset=False)

    # ----------------------------------------------------------------- device hooks
    @abc.abstractmethod
    def _start_episodes(self, mask: torch.Tensor, reset_ids: torch.Tensor, explicit: bool) -> None:
        """Initial state of (seed, reset_ids[i]) for envs where ``mask`` [N] is true.

        ``explicit``: ids come from ``reset()`` (any ids, all envs); otherwise they are the consecutive ids of an
        automatic reset and the backend may serve them from a table prepared ahead.
        """

    @abc.abstractmethod
    def _advance_on_device(self, actions: torch.Tensor, active: torch.Tensor | None) -> None:
        """Apply clipped actions [N, A]; envs where ``active`` [N] is false keep their state (None: all step)."""

    # ----------------------------------------------------------------- public API on the device
    def reset(self, seed: int | None = None, reset_ids=None) -> tuple[dict, dict]:
        """Reset every env to (seed, reset_ids[i]); see ``BatchedEnv.reset``."""
        ids = self._claim_reset_ids(seed, reset_ids)
        everyone = torch.ones(self.num_envs, dtype=torch.bool, device=self.device)
        ids_t = torch.as_tensor(ids, device=self.device)
        self.reset_ids.copy_(ids_t)
        self._elapsed.zero_()
        self._finished.zero_()
        self._any_finished = False
        self._start_episodes(everyone, ids_t, explicit=True)
        self._needs_reset = False
        return self._observation(), {"reset_ids": self.reset_ids.clone()}

    def _validate(self, action, expect_chunk: bool) -> torch.Tensor:
        action = self._action_tensor(action, expect_chunk).detach().to(self.device, torch.float32)
        finite = torch.isfinite(action).flatten(1).all(1)  # [N]
        if not bool(finite.all()):  # host read 1 of 2 per step
            bad_envs = torch.nonzero(~finite).flatten()[:10].tolist()
            raise ValueError(f"action contains NaN or inf for env(s) {bad_envs}; "
                             "check the policy output (e.g. a diverged log-std) before stepping")
        return action

    def _run_chunk(self, actions: torch.Tensor):
        n, horizon, _ = actions.shape
        clipped = actions.clamp(self.action_spec.low, self.action_spec.high)
        num_clipped = (clipped != actions).flatten(1).sum(1)
        zeros = torch.zeros(n, dtype=torch.bool, device=self.device)
        rewards = torch.zeros(n, horizon, device=self.device)
        step_mask = torch.zeros(n, horizon, dtype=torch.bool, device=self.device)
        terminated, truncated, success = zeros.clone(), zeros.clone(), zeros.clone()
        active = ~self._finished
        for t in range(horizon):
            everyone_steps = t == 0 and not self._any_finished  # no mask needed (the usual single step)
            self._advance_on_device(clipped[:, t], None if everyone_steps else active)
            self._elapsed += active
            result = self._evaluate()
            rewards[:, t] = torch.where(active, result.reward.to(torch.float32), 0.0)
            step_mask[:, t] = active
            success = torch.where(active, result.success, success)
            ended = (result.success & self.terminate_on_success) | result.failed
            terminated = torch.where(active, ended, terminated)
            truncated = torch.where(active, (self._elapsed >= self.max_episode_steps) & ~terminated, truncated)
            active = active & ~(terminated | truncated)
        obs = self._observation()
        done = terminated | truncated
        info = {"success": success, "num_clipped": num_clipped, "step_mask": step_mask,
                "elapsed_steps": self._elapsed.clone(), "reset_ids": self.reset_ids.clone()}
        num_done = int(done.sum())  # host read 2 of 2 per step
        if num_done:
            info["final_obs"] = {k: (v.clone() if isinstance(v, torch.Tensor) else _copy(v)) for k, v in obs.items()}
            info["done_mask"] = done
            if self.autoreset:
                ids = self._next_reset_id + torch.cumsum(done.long(), 0) - 1  # consecutive fresh ids, env order
                self._next_reset_id += num_done
                self.reset_ids = torch.where(done, ids, self.reset_ids)
                self._elapsed = torch.where(done, 0, self._elapsed)
                self._start_episodes(done, self.reset_ids, explicit=False)
                obs = self._observation()
            else:
                self._finished |= done
                self._any_finished = True
                self._needs_reset = bool(self._finished.all())
        return obs, rewards, terminated, truncated, info

    def _observation(self) -> dict:
        obs = self._observe()
        obs["elapsed"] = self._elapsed.clone()
        return obs

    # ----------------------------------------------------------------- snapshots (host copies, for checkpoints)
    def get_state(self) -> dict:
        """Everything needed to continue exactly from here, as CPU tensors."""
        return {
            "seed": self._seed,
            "next_reset_id": self._next_reset_id,
            "elapsed": self._elapsed.cpu(),
            "finished": self._finished.cpu(),
            "reset_ids": self.reset_ids.cpu(),
            "needs_reset": self._needs_reset,
            "world": self._get_world_state(),
        }

    def set_state(self, state: dict) -> dict:
        """Restore a ``get_state()`` snapshot; returns the current observation."""
        self._seed = int(state["seed"])
        self._next_reset_id = int(state["next_reset_id"])
        self._elapsed.copy_(state["elapsed"])
        self._finished.copy_(state["finished"])
        self._any_finished = bool(self._finished.any())
        self.reset_ids.copy_(state["reset_ids"])
        self._needs_reset = bool(state["needs_reset"])
        self._set_world_state(state["world"])
        return self._observation()

    def _reset_worlds(self, env_ids, rngs) -> None:
        raise NotImplementedError("device envs start episodes with _start_episodes")

    def _advance(self, actions, env_ids) -> None:
        raise NotImplementedError("device envs step with _advance_on_device")


def _copy(value):
    if isinstance(value, dict):
        return {k: v.clone() for k, v in value.items()}
    return list(value)
