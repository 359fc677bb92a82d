"""Single-env gymnasium view of a tabletop task, for Stable-Baselines3 and other gymnasium tools."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from sims.mujoco.env import MujocoTabletopEnv


class TabletopGymEnv(gym.Env):
    """One tabletop world as a ``gymnasium.Env``.

    obs_mode="state": a flat float32 vector (proprioception then task state).
    obs_mode="rgb": a Dict with ``state`` (proprioception) and one uint8 image per camera.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, task: str = "PickCube", obs_mode: str = "state", render_mode: str | None = None, **env_kwargs):
        if obs_mode not in ("state", "rgb"):
            raise ValueError(f"obs_mode must be 'state' or 'rgb', got {obs_mode!r}")
        cameras = env_kwargs.pop("cameras", ("front",) if obs_mode == "rgb" else ())  # render() draws on demand
        env_kwargs.setdefault("num_threads", 1)  # one world: a thread pool would only add contention
        self.env = MujocoTabletopEnv(task=task, num_envs=1, cameras=cameras, autoreset=False, **env_kwargs)
        self.obs_mode = obs_mode
        self.render_mode = render_mode
        spec = self.env.action_spec
        self.action_space = gym.spaces.Box(spec.low, spec.high, shape=(spec.dim,), dtype=np.float32)
        o = self.env.observation_spec
        if obs_mode == "state":
            dim = o.state_dim + o.privileged_dim
            self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(dim,), dtype=np.float32)
        else:
            spaces = {"state": gym.spaces.Box(-np.inf, np.inf, shape=(o.state_dim,), dtype=np.float32)}
            for cam in o.cameras:
                spaces[cam] = gym.spaces.Box(0, 255, shape=(o.image_height, o.image_width, 3), dtype=np.uint8)
            self.observation_space = gym.spaces.Dict(spaces)
        self._last_obs = None

    def _convert(self, obs: dict):
        self._last_obs = obs
        if self.obs_mode == "state":
            return torch.cat([obs["state"][0], obs["privileged"][0]]).numpy()
        out = {"state": obs["state"][0].numpy()}
        for cam, images in obs.get("rgb", {}).items():
            out[cam] = images[0].numpy()
        return out

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is None:
            seed = int(self.np_random.integers(2**31))
        reset_id = None if options is None or "reset_id" not in options else [options["reset_id"]]
        obs, _ = self.env.reset(seed=seed, reset_ids=reset_id)
        return self._convert(obs), {"instruction": obs["instruction"][0]}

    def step(self, action):
        action = torch.as_tensor(np.asarray(action, dtype=np.float32)).reshape(1, -1)
        obs, reward, terminated, truncated, info = self.env.step(action)
        out_info = {"success": bool(info["success"][0]), "num_clipped": int(info["num_clipped"][0])}
        return self._convert(obs), float(reward[0]), bool(terminated[0]), bool(truncated[0]), out_info

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        cameras = self.env.observation_spec.cameras
        if cameras:
            return self._last_obs["rgb"][cameras[0]][0].numpy()
        return self.env.render_frames("front")[0]

    def close(self):
        self.env.close()
