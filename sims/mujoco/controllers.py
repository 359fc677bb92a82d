"""Arm controllers: map normalised actions in [-1, 1] to joint position targets for the servos.

Array-generic: numpy on the CPU backend, torch on the env's device for ``mujoco_warp`` (no host round trip).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np

from sims.api import ActionSpec
from sims.arrays import clip, const, namespace
from sims.geometry import matrix_to_rotvec, rotvec_to_matrix
from sims.arms import ArmModel, get_arm
from sims.mujoco.arm_model import FINGER_MAX_OPENING
from sims.registry import Registry

# Tool-centre box: the lowest height keeps the finger pads (12 mm half height) 3 mm above the table top.
WORKSPACE_LOW = (-0.45, -0.35, 0.015)
WORKSPACE_HIGH = (0.3, 0.35, 0.45)
MAX_JOINT_VELOCITY = 1.5  # rad/s: the safety guard's default (real_robot/safety.py takes its defaults from here)
MAX_JOINT_STEP = MAX_JOINT_VELOCITY / 20.0  # rad per command at the envs' default 20 Hz: 0.075
# gripper opening (0 closed .. 1 open) per command: also the safety guard's default max_gripper_step, which it counts
# from the last command, as the controller counts from the fingers' current target
MAX_GRIPPER_STEP = 0.5
TOP_DOWN = np.diag([1.0, -1.0, -1.0])  # tool frame of the home pose: z axis pointing at the table


@dataclass
class ArmState:
    """Current arm state of the envs being controlled (leading dim n; numpy or torch, all alike)."""

    q: np.ndarray  # [n, J] (J arm joints)
    tcp_pos: np.ndarray  # [n, 3]
    tcp_mat: np.ndarray  # [n, 3, 3]
    jacobian: np.ndarray | None  # [n, 6, J] (translational rows, then rotational) or None
    finger_target: np.ndarray | None = None  # [n] the finger servos' current target (m); None: no gripper rate limit


def gripper_target(command):
    """Finger opening per finger from a command in [-1 (closed), 1 (open)]."""
    return (command + 1.0) * 0.5 * FINGER_MAX_OPENING


class Controller(abc.ABC):
    """Turns a batch of actions into joint targets of one arm (``arm``: its joint limits and home posture)."""

    action_spec: ActionSpec
    needs_jacobian = False
    max_gripper_step: float | None = MAX_GRIPPER_STEP  # None: the fingers jump to any commanded opening

    def __init__(self, arm: ArmModel | None = None):
        self.arm = arm or get_arm("panda")
        self.joint_low, self.joint_high, self.home = self.arm.joint_low, self.arm.joint_high, self.arm.home

    def finger_targets(self, state: ArmState, command):
        """Finger targets [n] (m) for gripper commands [n] in [-1, 1], at most ``max_gripper_step`` of the full
        opening away from the current targets (``state.finger_target``; where it is None, no limit)."""
        target = gripper_target(command)
        if state.finger_target is None or self.max_gripper_step is None:
            return target
        step = self.max_gripper_step * FINGER_MAX_OPENING
        return clip(target, state.finger_target - step, state.finger_target + step)

    @abc.abstractmethod
    def joint_targets(self, state: ArmState, actions):
        """Arm joint targets [n, J] and finger targets [n] for actions [n, A]."""


class JointDeltaController(Controller):
    """Action: one position delta per arm joint (scaled by ``max_delta`` rad) and a gripper command."""

    def __init__(self, arm: ArmModel | None = None, max_delta: float = 0.1):
        super().__init__(arm)
        self.max_delta = max_delta
        names = tuple(f"{name}_delta" for name in self.arm.joint_names) + ("gripper",)
        self.action_spec = ActionSpec(dim=len(names), low=-1.0, high=1.0, names=names)

    def joint_targets(self, state, actions):
        q = state.q
        j = self.arm.dof
        target = clip(q + actions[:, :j] * self.max_delta, const(q, self.joint_low), const(q, self.joint_high))
        return target, self.finger_targets(state, actions[:, j])


class EndEffectorController(Controller):
    """Action: tool position delta (scaled by ``max_translation`` m), optionally a rotation-vector delta
    (``max_rotation`` rad, world frame), and a gripper command. Solved by damped least-squares IK with a
    null-space pull towards the home posture. Without rotation the tool keeps pointing straight down.
    The commanded tool position is clipped to the box ``workspace_low``..``workspace_high`` (metres, world
    frame), so a policy cannot drive the fingers into the table or out of the arm's useful reach. The IK step is
    scaled down as a whole (the tool's direction kept) until no joint moves more than ``max_joint_step`` rad per
    command: the same cap a real arm's safety guard applies, so that a policy trained here is not slowed down only
    once deployed (None: no cap).
    """

    needs_jacobian = True

    def __init__(self, with_rotation: bool, arm: ArmModel | None = None, max_translation: float = 0.05,
                 max_rotation: float = 0.25, damping: float = 0.05, nullspace_gain: float = 0.2,
                 workspace_low=WORKSPACE_LOW, workspace_high=WORKSPACE_HIGH,
                 max_joint_step: float | None = MAX_JOINT_STEP):
        super().__init__(arm)
        self.max_joint_step = max_joint_step
        self.with_rotation = with_rotation
        self.max_translation = max_translation
        self.max_rotation = max_rotation
        self.damping = damping
        self.nullspace_gain = nullspace_gain
        self.workspace_low = np.asarray(workspace_low, dtype=np.float64)
        self.workspace_high = np.asarray(workspace_high, dtype=np.float64)
        names = ("dx", "dy", "dz") + (("droll", "dpitch", "dyaw") if with_rotation else ()) + ("gripper",)
        self.action_spec = ActionSpec(dim=len(names), low=-1.0, high=1.0, names=names)

    def joint_targets(self, state, actions):
        assert state.jacobian is not None, "EndEffectorController needs the tool Jacobian"
        q = state.q
        xp = namespace(q)
        n = actions.shape[0]
        target_pos = clip(state.tcp_pos + actions[:, :3] * self.max_translation,
                             const(q, self.workspace_low), const(q, self.workspace_high))  # [n, 3]
        position_error = target_pos - state.tcp_pos  # [n, 3]
        if self.with_rotation:
            delta = rotvec_to_matrix(actions[:, 3:6] * self.max_rotation)  # [n, 3, 3]
            target_mat = delta @ state.tcp_mat
        else:
            target_mat = xp.broadcast_to(const(q, TOP_DOWN), (n, 3, 3))
        rotation_error = matrix_to_rotvec(target_mat @ xp.permute_dims(state.tcp_mat, (0, 2, 1)))  # [n, 3]
        error = xp.concat([position_error, rotation_error], axis=1)[:, :, None]  # [n, 6, 1]
        jac = state.jacobian  # [n, 6, J]
        jac_t = xp.permute_dims(jac, (0, 2, 1))  # [n, J, 6]
        gram = jac @ jac_t + (self.damping**2) * const(q, np.eye(6))[None]  # [n, 6, 6]
        pinv = jac_t @ xp.linalg.inv(gram)  # [n, J, 6] damped pseudo-inverse
        dq = (pinv @ error)[:, :, 0]  # [n, J]
        if self.arm.dof > 6:  # a redundant arm: use the spare joints to stay near the home posture
            nullspace = const(q, np.eye(self.arm.dof))[None] - pinv @ jac  # [n, J, J]
            dq = dq + (nullspace @ ((const(q, self.home) - q) * self.nullspace_gain)[:, :, None])[:, :, 0]
        if self.max_joint_step is not None:  # one scale per env: the joints keep their proportions
            largest = xp.max(xp.abs(dq), axis=1, keepdims=True)  # [n, 1]
            dq = dq * xp.minimum(const(q, 1.0), self.max_joint_step / xp.maximum(largest, const(q, 1e-12)))
        target = clip(q + dq, const(q, self.joint_low), const(q, self.joint_high))
        return target, self.finger_targets(state, actions[:, -1])


# name -> a function arm -> controller (arm None: the Panda)
CONTROLLERS = Registry("arm controller", key="env.controller")
CONTROLLERS.register("joint_delta")(JointDeltaController)


@CONTROLLERS.register("ee_delta_pos")
def ee_delta_pos(arm: ArmModel | None = None) -> Controller:
    """End-effector position deltas (m) and the gripper; joints by damped least-squares IK."""
    return EndEffectorController(with_rotation=False, arm=arm)


@CONTROLLERS.register("ee_delta_pose")
def ee_delta_pose(arm: ArmModel | None = None) -> Controller:
    """End-effector position and rotation-vector deltas and the gripper; joints by damped least-squares IK."""
    return EndEffectorController(with_rotation=True, arm=arm)


def make_controller(name: str, arm: ArmModel | str | None = None) -> Controller:
    """Build a controller by name (joint_delta, ee_delta_pos or ee_delta_pose) for ``arm`` (a model or its
    registered name; default the Panda)."""
    return CONTROLLERS.lookup(name)(get_arm(arm) if isinstance(arm, str) else arm)
