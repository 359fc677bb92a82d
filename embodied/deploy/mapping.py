"""Translate between the policy's world (the simulator's observations and controller actions) and a robot's."""

from __future__ import annotations

import mujoco
import numpy as np
import torch

from real_robot.robot import IMAGE_PREFIX
from sims.mujoco.arm_model import FINGER_MAX_OPENING
from sims.mujoco.controllers import ArmState, JointDeltaController, make_controller
from sims.mujoco.env import state_dim
from sims.mujoco.kinematics import ArmKinematics

def robot_kinematics(robot) -> ArmKinematics:
    """The kinematics of ``robot``'s arm model (``robot.arm``)."""
    return ArmKinematics(robot.arm)


class ActionMapper:
    """Normalised policy action [A] (in the controller space it was trained with, for the robot's arm model) ->
    robot action [J + 1]: joint targets and the gripper opening."""

    def __init__(self, controller: str, kinematics: ArmKinematics):
        self.controller = make_controller(controller, kinematics.arm)
        self.kinematics = kinematics

    def __call__(self, action: np.ndarray, q: np.ndarray, gripper: float | None = None) -> np.ndarray:
        """``gripper``: the opening last sent (at an episode's start: the measured one); the new opening moves at
        most the controller's ``max_gripper_step`` from it, as in simulation (None: no limit here)."""
        tcp_pos, tcp_mat = self.kinematics.tool_pose(q)
        state = ArmState(q=q[None], tcp_pos=tcp_pos[None], tcp_mat=tcp_mat[None],
                         jacobian=self.kinematics.jacobian(q)[None] if self.controller.needs_jacobian else None,
                         finger_target=None if gripper is None else np.array([gripper * FINGER_MAX_OPENING]))
        arm, finger = self.controller.joint_targets(state, np.clip(action, -1.0, 1.0)[None].astype(np.float64))
        return np.concatenate([arm[0], [finger[0] / FINGER_MAX_OPENING]])

    def sent_to_action(self, sent: np.ndarray, q: np.ndarray) -> np.ndarray:
        """The robot action actually sent [J + 1] expressed in the controller's normalised action space [A]:
        what a dataset records, so a policy trained on it reproduces the motion the arm made (after clamps)."""
        controller = self.controller
        if isinstance(controller, JointDeltaController):
            parts = [(sent[:-1] - q) / controller.max_delta]
        else:
            pos_now, mat_now = self.kinematics.tool_pose(q)
            pos_new, mat_new = self.kinematics.tool_pose(sent[:-1])
            parts = [(pos_new - pos_now) / controller.max_translation]
            if controller.with_rotation:
                parts.append(rotation_vector(mat_new @ mat_now.T) / controller.max_rotation)
        parts.append([2.0 * sent[-1] - 1.0])
        return np.clip(np.concatenate(parts), -1.0, 1.0)


def refuse_mismatch(policy, controller: str, mapper: ActionMapper, robot) -> None:
    """ValueError naming each way ``policy`` does not fit ``robot`` driven by ``controller`` (the arm, controller and
    camera image sizes it was trained with, as saved in its config; its action and proprioception sizes), and the
    fix; called before the robot connects."""
    arm, spec = mapper.kinematics.arm, mapper.controller.action_spec
    problems = []
    trained = policy.config.get("trained_with") or {}  # policies saved before it was recorded: sizes only
    if trained.get("arm", arm.name) != arm.name:
        problems.append(f"it was trained for the {trained['arm']} arm and this robot is modelled as {arm.name} "
                        f"(robot.arm={trained['arm']} if that is what it is)")
    if trained.get("controller", controller) != controller:
        problems.append(f"it was trained with env.controller={trained['controller']} and deployment drives "
                        f"controller={controller} (set controller={trained['controller']})")
    sizes = {key[len(IMAGE_PREFIX):]: shape[:2] for key, shape in robot.observation_features.items()
             if key.startswith(IMAGE_PREFIX)}
    for camera in trained.get("cameras", []):
        if camera in sizes and list(sizes[camera]) != list(trained["image_size"]):
            problems.append(f"it saw {camera} images of {trained['image_size'][0]}x{trained['image_size'][1]} and the "
                            f"robot's are {sizes[camera][0]}x{sizes[camera][1]} (set the camera's height and width)")
    action_dim = getattr(policy, "action_dim", spec.dim)
    if action_dim != spec.dim:
        problems.append(f"the policy commands {action_dim}-D actions but controller={controller}"
                        f" on the {arm.name} arm ({arm.dof} joints) takes {spec.dim}-D {list(spec.names)}")
    policy_state = getattr(policy, "state_dim", None)
    if policy_state is not None and policy_state != state_dim(arm.dof):
        problems.append(f"the policy reads {policy_state}-D proprioception; the {arm.name} arm gives "
                        f"{state_dim(arm.dof)}-D (2 x {arm.dof} joints + fingers + tool position)")
    if problems:
        raise ValueError(f"this policy does not fit the {robot.robot_type} robot: {'; '.join(problems)}. Deploy it with "
                         "the arm and controller it was trained with (robot.arm=..., controller=...), or train one "
                         f"for this arm (embodied-train env.arm={arm.name} env.controller=...)")


def rotation_vector(matrix: np.ndarray) -> np.ndarray:
    """Axis * angle [3] of a rotation matrix [3, 3]."""
    quat, vel = np.zeros(4), np.zeros(3)
    mujoco.mju_mat2Quat(quat, np.ascontiguousarray(matrix, dtype=np.float64).ravel())
    mujoco.mju_quat2Vel(vel, quat, 1.0)
    return vel


class ObservationBuilder:
    """Robot observation -> the simulator's observation dict (batch of one) that the policy was trained on.

    state = [q (J), joint velocity (J, finite differences), finger slides (2), tool position (3)].
    """

    def __init__(self, control_dt: float, cameras: list[str], instruction: str, kinematics: ArmKinematics):
        self.control_dt = control_dt
        self.cameras = cameras
        self.instruction = instruction
        self.kinematics = kinematics
        self.previous_q: np.ndarray | None = None
        self.elapsed = 0

    def reset(self) -> None:
        """Start a new episode (velocities and the step counter restart)."""
        self.previous_q = None
        self.elapsed = 0

    def __call__(self, robot_obs: dict) -> dict:
        q = robot_obs["joint_positions"]
        qd = np.zeros_like(q) if self.previous_q is None else (q - self.previous_q) / self.control_dt
        self.previous_q = q.copy()
        fingers = np.full(2, robot_obs["gripper"][0] * FINGER_MAX_OPENING)
        state = np.concatenate([q, qd, fingers, self.kinematics.tool_position(q)]).astype(np.float32)
        obs = {"state": torch.from_numpy(state)[None], "instruction": [self.instruction],
               "elapsed": torch.tensor([self.elapsed])}
        self.elapsed += 1
        if self.cameras:
            obs["rgb"] = {cam: torch.from_numpy(robot_obs[f"images.{cam}"])[None] for cam in self.cameras}
        return obs


class TemporalEnsembler:
    """ACT-style temporal ensembling: a new chunk every step; the executed action averages every prediction made
    for the current step, weight exp(-m * i) with i = 0 for the oldest."""

    def __init__(self, coefficient: float):
        self.coefficient = coefficient
        self.predictions: dict[int, list[np.ndarray]] = {}
        self.t = 0

    def reset(self) -> None:
        self.predictions.clear()
        self.t = 0

    def __call__(self, chunk: np.ndarray) -> np.ndarray:
        """chunk [T, A] predicted at the current step -> the action [A] to execute now."""
        for offset, action in enumerate(chunk):
            self.predictions.setdefault(self.t + offset, []).append(action)
        candidates = np.stack(self.predictions.pop(self.t))  # oldest first
        weights = np.exp(-self.coefficient * np.arange(len(candidates)))
        self.t += 1
        return (weights[:, None] * candidates).sum(0) / weights.sum()
