"""The tabletop tasks with MuJoCo Warp: the same MJCF, tasks, controllers and episodes as ``mujoco``, on a device.

Physics, kinematics, the tool Jacobian, the controller's inverse kinematics, observations, rewards, success,
episode counters and automatic resets all run as Warp kernels or torch ops on the Warp device. Initial states
come from the task's own per-episode sampler (the same ``(seed, reset_id)`` gives the CPU backend's episode); for
automatic resets they are prepared on the host a block of ids ahead (``EpisodeTable``) and gathered on the device.
Cameras render on the host (MuJoCo's renderer), so image observations do cross to the host.
"""

from __future__ import annotations

import numpy as np
import torch

from sims.api import BACKENDS, StepResult
from sims.device_api import DeviceBatchedEnv
from sims.mujoco.controllers import ArmState
from sims.mujoco.env import MujocoTabletopEnv
from sims.mujoco_warp.batch import STATE, WarpBatch
from sims.mujoco_warp.episodes import EpisodeSampler, EpisodeTable
from sims.tasks.base import SceneView


@BACKENDS.register("mujoco_warp")
class MujocoWarpTabletopEnv(DeviceBatchedEnv, MujocoTabletopEnv):
    """``MujocoTabletopEnv`` on MuJoCo Warp worlds with every per-step tensor on ``device`` (GPU if present).

    Physics is float32 (MuJoCo Warp); the controller and task math run in float64 on the device, like the CPU
    backend. States agree with the ``mujoco`` backend to about 1e-4 over short free-space horizons; see
    tests/test_mujoco_warp.py for the measured tolerances.
    """

    def __init__(self, *, device: str | None = None, randomization=None, table_block: int = 0, **kwargs):
        if randomization is not None and randomization.physical:
            raise ValueError("backend=mujoco_warp does not randomise friction or mass per world yet; "
                             "use backend=mujoco for physical domain randomisation")
        self._warp_device = device
        super().__init__(randomization=randomization, **kwargs)
        dev = self.batch.torch_device
        self._init_device_bookkeeping(dev)
        self.params = torch.zeros(self.num_envs, self.task.params_dim, dtype=torch.float64, device=dev)
        index = {name: torch.as_tensor(getattr(self, name), device=dev)
                 for name in ("arm_qpos", "arm_dof", "finger_qpos", "cube_qpos", "cube_dof", "finger_actuators")}
        self._index = index
        self._cube_pos_idx = index["cube_qpos"][:, None] + torch.arange(3, device=dev)  # [K, 3]
        self._cube_quat_idx = index["cube_qpos"][:, None] + 3 + torch.arange(4, device=dev)  # [K, 4]
        self._cube_vel_idx = index["cube_dof"][:, None] + torch.arange(3, device=dev)  # [K, 3]
        self._sampler = EpisodeSampler(self.model, self.task, self.randomization, self.object_geoms,
                                       self.lay_out_episode, dev)
        self._table = EpisodeTable(self._sampler, block=table_block or max(4 * self.num_envs, 256))
        # Host extras (instruction text, per-episode colours) must follow resets only when they differ by episode.
        self._host_extras_vary = self.task.instructions_vary or self.visuals is not None

    def _make_batch(self, num_envs: int, num_threads: int):
        return WarpBatch(self.model, num_envs, self._warp_device)

    def _bind_batch_fields(self) -> None:
        for name in ("qpos", "qvel", "ctrl", "mocap_pos", "site_xpos", "site_xmat", "actuator_force"):
            setattr(self, name, self.batch.fields[name])

    # ----------------------------------------------------------------- device hooks
    def _start_episodes(self, mask: torch.Tensor, reset_ids: torch.Tensor, explicit: bool) -> None:
        if explicit:
            episodes = self._sampler.sample(self._seed, reset_ids.cpu().numpy())
            rows = episodes.device_rows
        else:
            episodes = self._table.cover(self._seed, self._next_reset_id - self.num_envs, self._next_reset_id)
            row = (reset_ids - self._table.base).clamp(0, self._table.block - 1)  # rows of envs not reset: unused
            rows = {key: value[row] for key, value in episodes.device_rows.items()}
        fields = self.batch.fields
        for name, value in (("qpos", rows["qpos"]), ("ctrl", rows["ctrl"]), ("mocap_pos", rows["mocap_pos"]),
                            ("mocap_quat", self._sampler.mocap_quat), ("qvel", 0.0), ("act", 0.0),
                            ("qacc_warmstart", 0.0), ("time", 0.0)):
            field = fields[name]
            field.copy_(torch.where(mask.view((-1,) + (1,) * (field.ndim - 1)), value, field))
        self.params.copy_(torch.where(mask[:, None], rows["params"], self.params))
        if explicit or self._host_extras_vary:  # host read of the reset mask, only when text or colours vary
            ids = reset_ids.cpu().numpy()
            for i in np.nonzero(mask.cpu().numpy())[0]:
                k = i if explicit else ids[i] - self._table.base
                self.instructions[i] = episodes.instructions[k]
                if self.visuals is not None:
                    for key, value in episodes.visuals.items():
                        self.visuals[key][i] = value[k]
        self.batch.forward()

    def _advance_on_device(self, actions: torch.Tensor, active: torch.Tensor | None) -> None:
        idx = self._index
        state = ArmState(
            q=self.qpos[:, idx["arm_qpos"]].double(),
            tcp_pos=self.site_xpos[:, self.tcp_site].double(),
            tcp_mat=self.site_xmat[:, self.tcp_site].double(),
            jacobian=None,
            finger_target=self.ctrl[:, self.arm.dof].double(),
        )
        if self.controller.needs_jacobian:
            jacp, jacr = self.batch.jac(self.hand_body, state.tcp_pos)
            state.jacobian = torch.cat([jacp, jacr], dim=1)[:, :, idx["arm_dof"]].double()
        arm_target, finger_target = self.controller.joint_targets(state, actions.double())
        saved = self.batch.snapshot() if active is not None else None
        self.ctrl[:, :self.arm.dof] = arm_target
        self.ctrl[:, self.arm.dof:] = finger_target[:, None]
        self.batch.step(self.substeps)
        if saved is not None:
            self.batch.restore(saved, ~active)

    # ----------------------------------------------------------------- observations, rewards
    def scene_view(self) -> SceneView:
        """The world state of every env as float64 tensors on the device (``.numpy()`` for host code)."""
        qpos, qvel = self.qpos.double(), self.qvel.double()
        return SceneView(  # tasks without cubes or markers get [N, 0, 3] from the empty index tables
            tcp_pos=self.site_xpos[:, self.tcp_site].double(),
            finger_gap=qpos[:, self._index["finger_qpos"]].sum(1),
            cube_pos=qpos[:, self._cube_pos_idx],
            cube_quat=qpos[:, self._cube_quat_idx],
            cube_linvel=qvel[:, self._cube_vel_idx],
            marker_pos=self.mocap_pos.double(),
            params=self.params,
        )

    def _observe(self) -> dict:
        view, idx = self.scene_view(), self._index
        state = torch.cat([self.qpos[:, idx["arm_qpos"]], self.qvel[:, idx["arm_dof"]],
                           self.qpos[:, idx["finger_qpos"]], self.site_xpos[:, self.tcp_site]], dim=1)
        obs = {"state": state.float(), "privileged": self.task.privileged(view), "instruction": list(self.instructions)}
        if self.renderer is not None:  # MuJoCo's renderer draws on the host
            images = self.renderer.render(*self._host_pose(), self.visuals)
            obs["rgb"] = {camera: torch.from_numpy(image).to(self.device) for camera, image in images.items()}
        return obs

    def _host_pose(self) -> tuple[np.ndarray, np.ndarray]:
        return self.qpos.cpu().numpy().astype(np.float64), self.mocap_pos.cpu().numpy().astype(np.float64)

    def _evaluate(self) -> StepResult:
        reward, success, failed = self.task.evaluate(self.scene_view())
        if self.reward_mode == "sparse":
            reward = success.double()
        return StepResult(reward.float(), success, failed)

    # ----------------------------------------------------------------- arm helpers
    def hold_position(self, env_ids=None) -> None:
        """Set the arm servos' targets to the current joint positions (no physics step)."""
        ids = torch.arange(self.num_envs, device=self.device) if env_ids is None else torch.as_tensor(
            env_ids, device=self.device)
        self.ctrl[ids, :self.arm.dof] = self.qpos[ids][:, self._index["arm_qpos"]]

    def gripper_force(self) -> torch.Tensor:
        """The largest finger servo force magnitude per world [N] (newtons), on the device."""
        return self.actuator_force[:, self._index["finger_actuators"]].abs().amax(dim=1)

    def limit_gripper_force(self, newtons: float) -> float:
        """Per-world force limits are not wired for MuJoCo Warp."""
        raise NotImplementedError("backend=mujoco_warp cannot vary gripper force limits per world yet: "
                                  "use backend=mujoco")

    # ----------------------------------------------------------------- snapshots
    def _get_world_state(self) -> dict:
        state = {name: self.batch.fields[name].cpu().clone() for name in STATE}
        state["params"] = self.params.cpu().clone()
        state["instructions"] = list(self.instructions)
        if self.visuals is not None:
            state.update({f"visual_{k}": torch.from_numpy(v.copy()) for k, v in self.visuals.items()})
        return state

    def _set_world_state(self, state: dict) -> None:
        for name in STATE:
            self.batch.fields[name].copy_(state[name])
        self.params.copy_(state["params"])
        self.instructions = list(state["instructions"])
        if self.visuals is not None:
            for k in self.visuals:
                self.visuals[k][:] = state[f"visual_{k}"].numpy()
        self.batch.forward()
