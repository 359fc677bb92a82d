"""Initial states of episodes for device envs: sampled on the host by the task, kept on the device.

``EpisodeSampler`` draws the episodes of given reset ids from their ``episode_rng`` exactly as the CPU backend does
(same objects, instruction and colours per ``(seed, reset_id)``) and lays them out as state rows. ``EpisodeTable``
keeps the rows of a window of consecutive ids on the device, so automatic resets are gathers, not uploads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sims.api import episode_rng


@dataclass
class Episodes:
    """Initial rows of a set of episodes: device tensors, plus host-only text and colours."""

    device_rows: dict[str, torch.Tensor]  # qpos [E, nq], ctrl [E, nu], mocap_pos [E, nmocap, 3], params [E, P]
    instructions: list[str]
    visuals: dict[str, np.ndarray]  # per-episode geom_rgba, cam_pos, light_diffuse (visual randomisation only)


class EpisodeSampler:
    """Lays out the task's episodes of ``(seed, reset_id)`` as initial qpos, ctrl, mocap and parameter rows."""

    def __init__(self, model, task, randomization, object_geoms, lay_out_episode, device):
        """``lay_out_episode(episode, qpos, ctrl, mocap_pos)``: the CPU backend's writer of one world's rows."""
        self.model, self.task, self.randomization = model, task, randomization
        self.object_geoms = object_geoms
        self.lay_out_episode = lay_out_episode
        self.device = device
        mocap_bodies = np.nonzero(model.body_mocapid >= 0)[0]
        order = np.argsort(model.body_mocapid[mocap_bodies])
        self._mocap_pos0 = model.body_pos[mocap_bodies[order]]  # [nmocap, 3], what mj_resetData puts there
        self.mocap_quat = torch.as_tensor(model.body_quat[mocap_bodies[order]], dtype=torch.float32, device=device)

    def sample(self, seed: int, reset_ids: np.ndarray) -> Episodes:
        """The episodes of ``reset_ids`` (any ids, in order)."""
        m, count = self.model, len(reset_ids)
        qpos = np.repeat(m.qpos0[None], count, 0)
        ctrl = np.zeros((count, m.nu))
        mocap = np.repeat(self._mocap_pos0[None], count, 0)
        params = np.zeros((count, self.task.params_dim))
        instructions, visuals = [], {"geom_rgba": [], "cam_pos": [], "light_diffuse": []}
        for row, reset_id in enumerate(reset_ids):
            rng = episode_rng(seed, int(reset_id))
            episode = self.task.episode_for(rng, int(reset_id))
            self.lay_out_episode(episode, qpos[row], ctrl[row], mocap[row])
            params[row] = episode.params
            instructions.append(episode.instruction)
            if self.randomization.visual:  # drawn after the episode, from its generator, as the CPU backend does
                rgba, cam, light = self.randomization.sample_visuals(
                    rng, m.geom_rgba, self.object_geoms, m.cam_pos, m.light_diffuse)
                for key, value in zip(visuals, (rgba, cam, light)):
                    visuals[key].append(value)

        def put(array, dtype=torch.float32):
            return torch.as_tensor(array, dtype=dtype, device=self.device)

        rows = {"qpos": put(qpos), "ctrl": put(ctrl), "mocap_pos": put(mocap), "params": put(params, torch.float64)}
        return Episodes(rows, instructions, {k: np.stack(v) for k, v in visuals.items() if v})


class EpisodeTable:
    """The episodes of a window of consecutive reset ids ``[base, base + block)`` on the device."""

    def __init__(self, sampler: EpisodeSampler, block: int):
        self.sampler = sampler
        self.block = block
        self.base = 0
        self.seed: int | None = None
        self.episodes: Episodes | None = None

    def cover(self, seed: int, low: int, high: int) -> Episodes:
        """The table, re-sampled from ``low`` when it does not hold every id in ``[low, high)`` of ``seed``."""
        fresh = self.episodes is None or seed != self.seed
        if fresh or low < self.base or high > self.base + self.block:
            if high - low > self.block:
                raise ValueError(f"episode table block {self.block} is smaller than one reset round ({high - low})")
            self.base, self.seed = max(low, 0), seed
            self.episodes = self.sampler.sample(seed, np.arange(self.base, self.base + self.block))
        return self.episodes
