"""The MuJoCo tabletop backend: all worlds in one ``mujoco.batch.Batch`` stepped on a thread pool."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # noqa: E402
import mujoco.batch  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from sims.api import BACKENDS, BatchedEnv, ObservationSpec, StepResult  # noqa: E402
from sims.geometry import yaw_to_quat  # noqa: E402
from sims.mujoco import arm_model  # noqa: E402
from sims.arms import get_arm  # noqa: E402
from sims.mujoco.controllers import ArmState, make_controller  # noqa: E402
from sims.mujoco.domain import make_domain  # noqa: E402
from sims.mujoco.randomization import Randomization  # noqa: E402
from sims.mujoco.render import BatchRenderer, render_quality as check_quality  # noqa: E402
from sims.mujoco.scene import build_scene_xml  # noqa: E402
from sims.tasks import make_task  # noqa: E402
from sims.tasks.base import SceneView  # noqa: E402



def state_dim(dof: int) -> int:
    """Proprioception size for an arm of ``dof`` joints: joint positions and velocities, fingers, tool position."""
    return dof + dof + 2 + 3


@BACKENDS.register("mujoco")
class MujocoTabletopEnv(BatchedEnv):
    """A tabletop task on N worlds; see ``sims.api`` for the observation and step contract."""

    def __init__(
        self,
        task: str = "PickCube",
        num_envs: int = 16,
        controller: str = "ee_delta_pos",
        control_hz: float = 20.0,
        timestep: float = 0.005,
        cameras: tuple[str, ...] = (),
        image_size: tuple[int, int] = (64, 64),
        reward_mode: str = "dense",
        randomization: Randomization | None = None,
        max_episode_steps: int | None = None,
        terminate_on_success: bool | None = None,
        autoreset: bool = True,
        num_threads: int = 0,
        domain: str = "sim",
        arm: str = "panda",
        suite: str | None = None,
        split: str = "train",
        render_quality: str = "full",
    ):
        """``suite``, ``split``: with task TabletopSuite, which suite and split (sims/tasks/suite_catalog.py);
        ``terminate_on_success``: None takes the task's choice (``Task.ends_on_success``); ``render_quality``: a name
        in ``sims.mujoco.render.RENDER_QUALITIES``."""
        if reward_mode not in ("dense", "sparse"):
            raise ValueError(f"reward_mode must be 'dense' or 'sparse', got {reward_mode!r}")
        substeps = round(1.0 / (control_hz * timestep))
        if substeps < 1 or abs(substeps * timestep * control_hz - 1.0) > 1e-6:
            raise ValueError(
                f"control_hz={control_hz} needs a whole number of {timestep} s physics steps per control step; "
                f"pick control_hz such that 1/(control_hz*timestep) is an integer (e.g. 20 or 50)"
            )
        self.task = make_task(task, **({"suite": suite, "split": split} if suite else {}))
        self.arm = get_arm(arm)
        self.controller = make_controller(controller, self.arm)
        self.substeps = substeps
        self.control_hz = control_hz
        self.reward_mode = reward_mode
        self.randomization = randomization or Randomization()
        self.model = mujoco.MjModel.from_xml_string(
            build_scene_xml(self.task.cubes, self.task.markers, timestep, self.arm)
        )
        self._bind_fields()
        make_domain(domain).apply(self.model, self.object_geoms)  # before the batch copies the model
        self.domain = domain
        self.batch = self._make_batch(num_envs, num_threads)
        self._bind_batch_fields()
        height, width = image_size
        super().__init__(
            num_envs,
            self.controller.action_spec,
            ObservationSpec(state_dim(self.arm.dof), self.task.privileged_dim, tuple(cameras), height, width,
                            self.task.goal_state_dims),
            max_episode_steps or self.task.max_episode_steps,
            terminate_on_success=self.task.ends_on_success if terminate_on_success is None else terminate_on_success,
            autoreset=autoreset,
        )
        check_quality(render_quality)  # a bad name fails here, camera or not
        self.renderer = None
        self.image_size = (height, width)
        self.render_quality = render_quality
        self._viewer = None  # on-demand renderer of render_frames (videos of state-only envs)
        if cameras:
            self.renderer = self._make_renderer(tuple(cameras))
        self.instructions = [""] * num_envs
        self.params = np.zeros((num_envs, self.task.params_dim))
        self.visuals = None
        if self.randomization.visual:
            self.visuals = {
                "geom_rgba": np.repeat(self.model.geom_rgba[None], num_envs, 0),
                "cam_pos": np.repeat(self.model.cam_pos[None], num_envs, 0),
                "light_diffuse": np.repeat(self.model.light_diffuse[None], num_envs, 0),
            }
        if self.randomization.physical:
            self._friction = self.batch.expand("geom_friction")
            self._mass = self.batch.expand("body_mass")

    def _make_batch(self, num_envs: int, num_threads: int):
        """The physics of the N worlds: ``mujoco.batch`` on a thread pool of at most one thread per world (a single
        world on two threads pays for hand-offs and gains nothing)."""
        threads = min(num_threads or (os.cpu_count() or 1), num_envs)
        return mujoco.batch.Batch(self.model, nsim=num_envs, nthread=threads)

    # ----------------------------------------------------------------- model indices and bound fields
    def _bind_fields(self) -> None:
        m = self.model
        self.arm_qpos = np.array([m.jnt_qposadr[m.joint(n).id] for n in self.arm.joint_names])
        self.arm_dof = np.array([m.jnt_dofadr[m.joint(n).id] for n in self.arm.joint_names])
        self.finger_qpos = np.array([m.jnt_qposadr[m.joint(n).id] for n in arm_model.FINGER_JOINT_NAMES])
        self.cube_qpos = np.array([m.jnt_qposadr[m.joint(c.name).id] for c in self.task.cubes], dtype=np.int64)
        self.cube_dof = np.array([m.jnt_dofadr[m.joint(c.name).id] for c in self.task.cubes], dtype=np.int64)
        self.cube_bodies = np.array([m.body(c.name).id for c in self.task.cubes], dtype=np.int64)
        self.object_geoms = np.array([m.geom(c.name).id for c in self.task.cubes]
                                     + [m.geom(k.name).id for k in self.task.markers] + [m.geom("table").id])
        self.tcp_site = m.site("tcp").id
        self.hand_body = m.body("hand").id
        self.finger_actuators = np.array([m.actuator(f"act_{n}").id for n in arm_model.FINGER_JOINT_NAMES])

    def _bind_batch_fields(self) -> None:
        self.qpos = self.batch.bind("qpos")
        self.qvel = self.batch.bind("qvel")
        self.ctrl = self.batch.bind("ctrl")
        self.mocap_pos = self.batch.bind("mocap_pos")
        self.site_xpos = self.batch.bind("site_xpos")
        self.site_xmat = self.batch.bind("site_xmat")
        self.actuator_force = self.batch.bind("actuator_force")

    # ----------------------------------------------------------------- BatchedEnv hooks
    def _reset_worlds(self, env_ids, rngs) -> None:
        self.batch.reset(env_ids, stage=mujoco.mjtStage.mjSTAGE_NONE)
        for i, rng in zip(env_ids, rngs):
            episode = self.task.episode_for(rng, int(self.reset_ids[i]))
            self.qvel[i] = 0.0
            self.lay_out_episode(episode, self.qpos[i], self.ctrl[i], self.mocap_pos[i])
            self.instructions[i] = episode.instruction
            self.params[i] = episode.params
            self._randomize(i, rng)
        if self.randomization.physical:
            self.batch.set_const(env_ids)
        self.batch.forward(env_ids, stage=mujoco.mjtStage.mjSTAGE_POS)

    def lay_out_episode(self, episode, qpos: np.ndarray, ctrl: np.ndarray, mocap_pos: np.ndarray) -> None:
        """Write an episode's initial state into one world's rows qpos [nq], ctrl [nu], mocap_pos [nmocap, 3]:
        the arm at home with open fingers, the cubes, the markers and the matching servo targets."""
        qpos[self.arm_qpos] = self.arm.home
        qpos[self.finger_qpos] = arm_model.FINGER_MAX_OPENING
        for k, adr in enumerate(self.cube_qpos):
            qpos[adr:adr + 3] = episode.cube_pos[k]
            qpos[adr + 3:adr + 7] = yaw_to_quat(episode.cube_yaw[k:k + 1])[0]
        if len(self.task.markers):
            mocap_pos[:] = episode.marker_pos
        j = self.arm.dof
        ctrl[:j] = self.arm.home
        ctrl[j:] = arm_model.FINGER_MAX_OPENING

    def _randomize(self, i: int, rng: np.random.Generator) -> None:
        r = self.randomization
        if self.visuals is not None:
            rgba, cam, light = r.sample_visuals(rng, self.model.geom_rgba, self.object_geoms,
                                                self.model.cam_pos, self.model.light_diffuse)
            self.visuals["geom_rgba"][i], self.visuals["cam_pos"][i], self.visuals["light_diffuse"][i] = rgba, cam, light
        if r.physical:
            self._friction[i], self._mass[i] = r.sample_physics(rng, self.model.geom_friction, self.model.body_mass,
                                                                self.cube_bodies)

    def _advance(self, actions: np.ndarray, env_ids: np.ndarray) -> None:
        actions = actions.astype(np.float64)
        state = ArmState(
            q=self.qpos[env_ids][:, self.arm_qpos],
            tcp_pos=self.site_xpos[env_ids, self.tcp_site],
            tcp_mat=self.site_xmat[env_ids, self.tcp_site].reshape(-1, 3, 3),
            jacobian=None,
            finger_target=self.ctrl[env_ids, self.arm.dof],
        )
        if self.controller.needs_jacobian:
            all_envs = len(env_ids) == self.num_envs
            jacp, jacr = self.batch.jac(self.hand_body, state.tcp_pos, ids=None if all_envs else env_ids)
            state.jacobian = np.concatenate([jacp, jacr], axis=1)[:, :, self.arm_dof]
        arm_target, finger_target = self.controller.joint_targets(state, actions)
        self.ctrl[env_ids, :self.arm.dof] = arm_target
        self.ctrl[env_ids, self.arm.dof:] = finger_target[:, None]
        ids = None if len(env_ids) == self.num_envs else env_ids
        self.batch.step(ids, nstep=self.substeps, stage=mujoco.mjtStage.mjSTAGE_POS)

    def hold_position(self, env_ids=None) -> None:
        """Set the arm servos' targets to the current joint positions (no physics step, no rendering)."""
        ids = np.arange(self.num_envs) if env_ids is None else np.asarray(env_ids)
        self.ctrl[ids, :self.arm.dof] = self.qpos[ids][:, self.arm_qpos]

    def limit_gripper_force(self, newtons: float) -> float:
        """Cap every finger servo's force at ``newtons`` (never above the model's own range); returns the cap."""
        model_max = float(np.abs(self.model.actuator_forcerange[self.finger_actuators]).max())
        applied = min(float(newtons), model_max)
        forcerange = self.batch.expand("actuator_forcerange")
        forcerange[:, self.finger_actuators] = (-applied, applied)
        return applied

    def gripper_force(self) -> np.ndarray:
        """The largest finger servo force magnitude per world [N] (newtons)."""
        return np.abs(self.actuator_force[:, self.finger_actuators]).max(axis=1)

    def scene_view(self) -> SceneView:
        """The current world state of every env as arrays that tasks and experts read."""
        n = self.num_envs
        k = len(self.cube_qpos)
        pos_idx = self.cube_qpos[:, None] + np.arange(3)  # [K, 3]
        quat_idx = self.cube_qpos[:, None] + 3 + np.arange(4)  # [K, 4]
        vel_idx = self.cube_dof[:, None] + np.arange(3)
        return SceneView(
            tcp_pos=self.site_xpos[:, self.tcp_site],
            finger_gap=self.qpos[:, self.finger_qpos].sum(axis=1),
            cube_pos=self.qpos[:, pos_idx] if k else np.zeros((n, 0, 3)),
            cube_quat=self.qpos[:, quat_idx] if k else np.zeros((n, 0, 4)),
            cube_linvel=self.qvel[:, vel_idx] if k else np.zeros((n, 0, 3)),
            marker_pos=self.mocap_pos if len(self.task.markers) else np.zeros((n, 0, 3)),
            params=self.params,
        )

    def _observe(self) -> dict:
        view = self.scene_view()
        state = np.concatenate(
            [self.qpos[:, self.arm_qpos], self.qvel[:, self.arm_dof], self.qpos[:, self.finger_qpos], view.tcp_pos],
            axis=1,
        ).astype(np.float32)
        obs = {"state": state, "privileged": self.task.privileged(view), "instruction": list(self.instructions)}
        if self.renderer is not None:
            obs["rgb"] = self.renderer.render(*self._host_pose(), self.visuals)
        return obs

    def _evaluate(self) -> StepResult:
        reward, success, failed = self.task.evaluate(self.scene_view())
        if self.reward_mode == "sparse":
            reward = success.astype(np.float64)
        return StepResult(reward.astype(np.float32), success, failed)

    _WORLD_FIELDS = ("qpos", "qvel", "act", "ctrl", "mocap_pos", "mocap_quat", "qacc_warmstart", "time")

    def _get_world_state(self) -> dict:
        state = {name: torch.from_numpy(self.batch.bind(name).copy()) for name in self._WORLD_FIELDS}
        state["params"] = torch.from_numpy(self.params.copy())
        state["instructions"] = list(self.instructions)
        if self.visuals is not None:
            state.update({f"visual_{k}": torch.from_numpy(v.copy()) for k, v in self.visuals.items()})
        if self.randomization.physical:
            state["friction"], state["mass"] = torch.from_numpy(self._friction.copy()), torch.from_numpy(self._mass.copy())
        return state

    def _set_world_state(self, state: dict) -> None:
        for name in self._WORLD_FIELDS:
            self.batch.bind(name)[:] = state[name].numpy()
        self.params[:] = state["params"].numpy()
        self.instructions = list(state["instructions"])
        if self.visuals is not None:
            for k in self.visuals:
                self.visuals[k][:] = state[f"visual_{k}"].numpy()
        if self.randomization.physical:
            self._friction[:], self._mass[:] = state["friction"].numpy(), state["mass"].numpy()
            self.batch.set_const()
        self.batch.forward(stage=mujoco.mjtStage.mjSTAGE_POS)

    def render_frames(self, camera: str, env_ids=None) -> np.ndarray:
        """One camera of envs ``env_ids`` (default all) rendered now, uint8 [len(env_ids), H, W, 3], without adding
        images to observations."""
        if self._viewer is None or self._viewer.cameras != (camera,):
            if self._viewer is not None:
                self._viewer.close()
            self._viewer = self._make_renderer((camera,))
        return self._viewer.render(*self._host_pose(), self.visuals, env_ids)[camera]

    def _make_renderer(self, cameras: tuple[str, ...]):
        return BatchRenderer(self.model, cameras, *self.image_size, quality=self.render_quality,
                             num_envs=self.num_envs)

    def _host_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """qpos [N, nq] and mocap_pos [N, nmocap, 3] as host float64 arrays (what MuJoCo's renderer draws)."""
        return self.qpos, self.mocap_pos

    def close(self) -> None:
        for renderer in (self.renderer, self._viewer):
            if renderer is not None:
                renderer.close()
        self.renderer = self._viewer = None
