"""ManiSkill3 tasks as a ``BatchedEnv``: all envs in one GPU scene (physx_cuda), or one process per env (physx_cpu).

ManiSkill's own episode ends are ignored: like every backend here, the batched env owns time limits, success
termination and automatic resets, so ``reset(seed, reset_ids)``, chunks and metrics behave as with MuJoCo.
Observations: ``state`` is ManiSkill's flat state vector; ``privileged`` is empty; ``instruction`` names the task.
"""

from __future__ import annotations

import functools

import gymnasium as gym
import numpy as np
import torch

from sims.api import BACKENDS, ActionSpec, BatchedEnv, ObservationSpec, StepResult
from sims.maniskill.tasks import resolve

REWARD_MODES = {"dense": "normalized_dense", "sparse": "sparse"}


def _import_maniskill():
    try:
        import mani_skill.envs  # noqa: F401  (registers the ManiSkill ids)
    except ImportError as err:
        raise ImportError("backend=maniskill needs ManiSkill3: pip install 'embodied-vla[maniskill]'; on a machine "
                          "without a GPU it also needs Vulkan (bash scripts/setup_lavapipe.sh)") from err


def _make_cpu_env(env_id: str, control_mode: str, reward_mode: str, cameras: tuple, image_size: tuple):
    """One physx_cpu ManiSkill env in a worker process (module level so that spawn can pickle it)."""
    _import_maniskill()
    env = gym.make(env_id, num_envs=1, control_mode=control_mode, reward_mode=reward_mode, sim_backend="physx_cpu",
                   render_mode=None, **observation_kwargs(cameras, image_size))
    return _OwnEpisodeEnds(env, cameras)


def observation_kwargs(cameras: tuple, image_size: tuple) -> dict:
    """gym.make arguments: flat state, or robot state plus RGB of the sensors at ``image_size`` (H, W)."""
    if not cameras:
        return {"obs_mode": "state"}
    height, width = image_size
    return {"obs_mode": "rgb", "sensor_configs": {"width": width, "height": height}}


def flatten_observation(obs, cameras: tuple) -> tuple[torch.Tensor, dict]:
    """A batched ManiSkill observation as (state [B, D] float32, {camera: rgb [B, H, W, 3] uint8}).

    With cameras the state is the robot's own (``agent`` and ``extra`` entries, in key order), as on a robot.
    """
    if not cameras:
        return obs.float(), {}
    leaves = [obs[group][key] for group in ("agent", "extra") for key in sorted(obs.get(group, {}))]
    state = torch.cat([leaf.reshape(leaf.shape[0], -1).float() for leaf in leaves], dim=1)
    return state, {camera: obs["sensor_data"][camera]["rgb"] for camera in cameras}


def check_cameras(base, cameras: tuple) -> None:
    """ValueError naming the env's sensors when a requested camera is not one of them."""
    available = sorted(base.single_observation_space.spaces.get("sensor_data", {}).keys()) if cameras else []
    missing = [c for c in cameras if c not in available]
    if missing:
        raise ValueError(f"ManiSkill env has no camera {missing}; its sensors: {available}")


class _OwnEpisodeEnds(gym.Wrapper):
    """Wraps one CPU ManiSkill env for gymnasium's AsyncVectorEnv: numpy out, never ends an episode itself."""

    def __init__(self, env, cameras: tuple):
        super().__init__(env)
        base = env.unwrapped
        check_cameras(base, cameras)
        self.cameras = cameras
        state, rgb = flatten_observation(base.get_obs(), cameras)
        spaces = {"state": gym.spaces.Box(-np.inf, np.inf, state.shape[1:], np.float32)}
        spaces |= {f"rgb_{c}": gym.spaces.Box(0, 255, image.shape[1:], np.uint8) for c, image in rgb.items()}
        self.observation_space = gym.spaces.Dict(spaces)
        self.action_space = base.single_action_space
        self.pending_state = None

    def _numpy(self, obs) -> dict:
        state, rgb = flatten_observation(obs, self.cameras)
        return {"state": _row(state)} | {f"rgb_{c}": _row(image) for c, image in rgb.items()}

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        return self._numpy(obs), {}

    def step(self, action):
        obs, reward, _, _, info = self.env.step(action)
        flags = {k: bool(_row(info[k])) for k in ("success", "fail") if k in info}
        return self._numpy(obs), float(_row(reward)), False, False, flags

    def world_state(self) -> np.ndarray:
        """The full simulator state (actors, articulations) as a flat vector."""
        return _row(self.env.unwrapped.get_state())

    def apply_pending_state(self) -> None:
        """Restore ``pending_state`` (set per env with ``set_attr``)."""
        self.env.unwrapped.set_state(torch.as_tensor(self.pending_state)[None])


def _row(value) -> np.ndarray:
    """First row of a batched ManiSkill tensor as numpy (CPU envs have a batch of one)."""
    array = value.cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    return array[0] if array.ndim else array


@BACKENDS.register("maniskill")
class ManiSkillEnv(BatchedEnv):
    """A ManiSkill3 task on N envs through the batched env contract; see ``sims.api``.

    ``cameras`` name ManiSkill sensors (e.g. ``base_camera``); with cameras, ``state`` is the robot's own state
    and ``rgb`` holds uint8 images of ``image_size`` (H, W).
    """

    def __init__(self, task: str = "PickCube", num_envs: int = 4, controller: str = "ee_delta_pos",
                 reward_mode: str = "dense", max_episode_steps: int | None = None, cameras=(), image_size=(64, 64),
                 autoreset: bool = True, terminate_on_success: bool = False, num_threads: int = 0,
                 sim_backend: str = "auto", domain: str = "sim", arm: str = "panda"):
        _import_maniskill()
        if arm != "panda":
            raise ValueError(f"backend=maniskill runs ManiSkill's own Panda, not env.arm={arm!r}; "
                             "other arms are a mujoco feature (env.backend=mujoco)")
        if domain != "sim":
            raise ValueError(f"backend=maniskill has no domain {domain!r}; domain shifts are a mujoco feature")
        if reward_mode not in REWARD_MODES:
            raise ValueError(f"reward_mode must be one of {sorted(REWARD_MODES)}, got {reward_mode!r}")
        spec, control_mode = resolve(task, controller)
        if sim_backend == "auto":
            sim_backend = "physx_cuda" if torch.cuda.is_available() else "physx_cpu"
        if sim_backend not in ("physx_cuda", "physx_cpu"):
            raise ValueError(f"sim_backend must be auto, physx_cuda or physx_cpu, got {sim_backend!r}")
        self.sim_backend = sim_backend
        self.instruction = spec.instruction
        self.cameras = tuple(cameras)
        try:
            self._make_sim(spec.env_id, control_mode, REWARD_MODES[reward_mode], num_envs, tuple(image_size))
        except RuntimeError as err:
            if "vk::" not in str(err):
                raise
            raise RuntimeError(f"ManiSkill found no Vulkan device ({err}); on a machine without a GPU run "
                               "`bash scripts/setup_lavapipe.sh DIR` and `. DIR/env.sh` first") from err
        space = self.sim.single_action_space
        names = tuple(f"{control_mode}_{i}" for i in range(space.shape[0]))
        action_spec = ActionSpec(dim=space.shape[0], low=float(space.low.min()), high=float(space.high.max()),
                                 names=names)
        super().__init__(num_envs, action_spec, ObservationSpec(self._state_dim, 0, self.cameras, *image_size),
                         max_episode_steps or gym.spec(spec.env_id).max_episode_steps,
                         terminate_on_success=terminate_on_success, autoreset=autoreset)
        self._obs = np.zeros((num_envs, self._state_dim), dtype=np.float32)
        self._rgb = {c: np.zeros((num_envs, *image_size, 3), dtype=np.uint8) for c in self.cameras}
        self._reward = np.zeros(num_envs, dtype=np.float32)
        self._success = np.zeros(num_envs, dtype=bool)
        self._failed = np.zeros(num_envs, dtype=bool)

    def _make_sim(self, env_id: str, control_mode: str, reward_mode: str, num_envs: int, image_size: tuple) -> None:
        """One batched GPU scene, or one spawned process per env on the CPU."""
        if self.sim_backend == "physx_cuda":
            self.sim = gym.make(env_id, num_envs=num_envs, control_mode=control_mode, reward_mode=reward_mode,
                                sim_backend="physx_cuda", **observation_kwargs(self.cameras, image_size)).unwrapped
            check_cameras(self.sim, self.cameras)
            self._state_dim = flatten_observation(self.sim.get_obs(), self.cameras)[0].shape[1]
        else:
            make = functools.partial(_make_cpu_env, env_id, control_mode, reward_mode, self.cameras, image_size)
            self.sim = gym.vector.AsyncVectorEnv([make] * num_envs, context="spawn", copy=True)
            self._state_dim = self.sim.single_observation_space["state"].shape[0]

    def _store(self, obs, env_ids) -> None:
        """Keep rows ``env_ids`` of a batched observation (GPU: ManiSkill's; CPU: the workers' numpy dict)."""
        if self.sim_backend == "physx_cuda":
            state, rgb = flatten_observation(obs, self.cameras)
            state, rgb = state.cpu().numpy(), {c: image.cpu().numpy() for c, image in rgb.items()}
        else:
            state, rgb = obs["state"], {c: obs[f"rgb_{c}"] for c in self.cameras}
        self._obs[env_ids] = state[env_ids]
        for camera, image in rgb.items():
            self._rgb[camera][env_ids] = image[env_ids]

    # ----------------------------------------------------------------- BatchedEnv hooks
    def _reset_worlds(self, env_ids, rngs) -> None:
        seeds = [int(rng.integers(2**31 - 1)) for rng in rngs]  # ManiSkill seeds from our (seed, reset id)
        if self.sim_backend == "physx_cuda":
            obs, _ = self.sim.reset(seed=seeds, options={"env_idx": torch.as_tensor(env_ids, device=self.sim.device)})
        else:
            mask = np.zeros(self.num_envs, dtype=bool)
            mask[env_ids] = True
            all_seeds: list[int | None] = [None] * self.num_envs
            for i, s in zip(env_ids, seeds):
                all_seeds[i] = s
            obs, _ = self.sim.reset(seed=all_seeds, options={"reset_mask": mask})
        self._store(obs, env_ids)
        self._reward[env_ids], self._success[env_ids], self._failed[env_ids] = 0.0, False, False

    def _advance(self, actions: np.ndarray, env_ids: np.ndarray) -> None:
        full = np.zeros((self.num_envs, self.action_spec.dim), dtype=np.float32)  # others hold still (delta 0)
        full[env_ids] = actions
        if self.sim_backend == "physx_cuda":
            obs, reward, _, _, info = self.sim.step(torch.as_tensor(full, device=self.sim.device))
            reward = reward.float().cpu().numpy()
            success = info["success"].cpu().numpy() if "success" in info else np.zeros(self.num_envs, bool)
            failed = info["fail"].cpu().numpy() if "fail" in info else np.zeros(self.num_envs, bool)
        else:
            obs, reward, _, _, info = self.sim.step(full)
            success = np.asarray(info.get("success", np.zeros(self.num_envs)), dtype=bool)
            failed = np.asarray(info.get("fail", np.zeros(self.num_envs)), dtype=bool)
        self._store(obs, env_ids)
        self._reward[env_ids] = reward[env_ids]
        self._success[env_ids], self._failed[env_ids] = success[env_ids], failed[env_ids]

    def _observe(self) -> dict:
        obs = {"state": self._obs.copy(), "privileged": np.zeros((self.num_envs, 0), dtype=np.float32),
               "instruction": [self.instruction] * self.num_envs}
        if self.cameras:
            obs["rgb"] = {camera: image.copy() for camera, image in self._rgb.items()}
        return obs

    def _evaluate(self) -> StepResult:
        return StepResult(self._reward.copy(), self._success.copy(), self._failed.copy())

    def _get_world_state(self) -> dict:
        if self.sim_backend == "physx_cuda":
            world = self.sim.get_state().cpu()
        else:
            world = torch.from_numpy(np.stack(self.sim.call("world_state")))
        cache = {"obs": self._obs, "reward": self._reward, "success": self._success, "failed": self._failed}
        cache |= {f"rgb_{c}": image for c, image in self._rgb.items()}
        return {"world": world} | {key: torch.from_numpy(value.copy()) for key, value in cache.items()}

    def _set_world_state(self, state: dict) -> None:
        if self.sim_backend == "physx_cuda":
            self.sim.set_state(state["world"].to(self.sim.device))
        else:
            self.sim.set_attr("pending_state", list(state["world"].numpy()))
            self.sim.call("apply_pending_state")
        for key, target in [("obs", self._obs), ("reward", self._reward), ("success", self._success),
                            ("failed", self._failed)] + [(f"rgb_{c}", image) for c, image in self._rgb.items()]:
            target[:] = state[key].numpy()

    def close(self) -> None:
        """Stop the worker processes (physx_cpu) or release the GPU scene."""
        self.sim.close()
