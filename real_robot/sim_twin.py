"""``sim_twin``: a MuJoCo tabletop task acting as the robot, so deployment dry-runs need no hardware."""

from __future__ import annotations

import numpy as np

from real_robot.camera import SimCamera
from real_robot.robot import Robot, register_robot
from sims.mujoco.arm_model import FINGER_MAX_OPENING

BASE_TIMESTEP = 0.005  # physics step (s) the tasks are tuned for; adjusted slightly so any control rate fits


@register_robot("sim_twin")
class SimTwinRobot(Robot):
    """One world of a task env with the arm ``arm`` (a ``sims.arms`` model) driven by absolute joint targets; each
    command advances the physics by one control period, ``1 / control_hz`` (20 Hz default); ``domain`` ``shifted``
    makes it the held-out "real" domain, ``shifted_twin`` that cell's digital twin (``sims.mujoco.domain``)."""

    measures_gripper_force = True  # the finger servos' force, like a gripper reporting its motor current

    def __init__(self, task: str = "PickCube", cameras: tuple = ("front",), image_size: tuple = (64, 64),
                 seed: int = 0, camera_fail_after: int | None = None, control_hz: float = 20.0,
                 arm: str = "panda", domain: str = "sim"):
        if control_hz <= 0:
            raise ValueError(f"control_hz must be > 0, got {control_hz}")
        self.task_name, self.seed, self.control_hz, self.domain = task, seed, control_hz, domain
        self.camera_names, self.image_size = tuple(cameras), tuple(image_size)
        sim_cameras = {name: SimCamera(self._frame_source(name), image_size[1], image_size[0],
                                       fail_after=camera_fail_after) for name in cameras}
        super().__init__(arm, sim_cameras)
        self.env = None
        self.last_obs = None
        self.last_info: dict = {}

    def _frame_source(self, name: str):
        return lambda: self.last_obs["rgb"][name][0].numpy()

    def _connect(self) -> None:
        from sims import make_env

        substeps = max(1, round(1.0 / (self.control_hz * BASE_TIMESTEP)))
        self.env = make_env(task=self.task_name, num_envs=1, controller="joint_delta", arm=self.arm.name,
                            cameras=self.camera_names, domain=self.domain,
                            image_size=self.image_size, autoreset=False, max_episode_steps=10**9,
                            control_hz=self.control_hz, timestep=1.0 / (self.control_hz * substeps), num_threads=1)
        # the fingers follow every command, as hardware does: the guard and the deploy mapping limit the rate
        self.env.controller.max_gripper_step = None
        self.last_obs, self.last_info = self.env.reset(seed=self.seed)

    def reset_scene(self, seed: int | None = None, reset_id: int = 0) -> bool:
        """Start a new episode of the task: the scene of (``seed``, ``reset_id``), the same as in any env of the
        task (``BatchedEnv.reset``)."""
        self._require_connected()
        self.last_obs, self.last_info = self.env.reset(seed=self.seed if seed is None else seed,
                                                       reset_ids=[int(reset_id)])
        return True

    def _disconnect(self) -> None:
        self.env.close()
        self.env = None

    def _read_state(self):
        state = self.last_obs["state"][0].numpy().astype(np.float64)
        j = self.num_joints  # state: joint positions [J], velocities [J], finger slides [2], tool position [3]
        gripper = state[2 * j:2 * j + 2].sum() / (2 * FINGER_MAX_OPENING)  # finger slides -> opening in [0, 1]
        return state[:j], float(np.clip(gripper, 0.0, 1.0))

    def _write_targets(self, joints, gripper):
        import torch

        q = self.last_obs["state"][0, :self.num_joints].numpy().astype(np.float64)
        delta = np.clip((joints - q) / self.env.controller.max_delta, -1.0, 1.0)  # joint_delta's scale (rad)
        action = torch.tensor(np.concatenate([delta, [2.0 * gripper - 1.0]]), dtype=torch.float32)[None]
        self.last_obs, _, _, _, self.last_info = self.env.step(action)

    def _hold(self) -> None:
        """Servo targets := current joints. Twin time only advances with commands, so the arm stays put; no
        physics step or rendering here, which keeps it safe to call from the watchdog thread."""
        self.env.hold_position()

    def _limit_gripper_force(self, newtons: float) -> float:
        return self.env.limit_gripper_force(newtons)

    def _read_gripper_force(self) -> float:
        return float(self.env.gripper_force()[0])

    @property
    def task_success(self) -> bool:
        """Whether the twin's task is solved in the current state."""
        return bool(self.last_info.get("success", [False])[0]) if self.last_info else False

    def policy_observation(self) -> dict:
        """The simulator's own batched observation (for policies trained in this task)."""
        return self.last_obs
