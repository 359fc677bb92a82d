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
from sims.mujoco.arm_model import FINGER_MAX_OPENING, PANDA_HOME_QPOS, PANDA_JOINT_LIMITS
from sims.registry import Registry

JOINT_LOW = np.array([lo for lo, _ in PANDA_JOINT_LIMITS])
JOINT_HIGH = np.array([hi for _, hi in PANDA_JOINT_LIMITS])
HOME = np.array(PANDA_HOME_QPOS)
# Tool-centre box: the lowest height keeps the finger pads (12 mm half height) 3 mm above the table top.
WORKSPACE_LOW = (-0.45, -0.35, 0.015)
WORKSPACE_HIGH = (0.3, 0.35, 0.45)
TOP_DOWN = np.diag([1.0, -1.0, -1.0])  # tool frame of the home pose: z axis pointing at the table


@dataclass
class ArmState:
    """Current arm state of the envs being controlled (leading dim n; numpy or torch, all alike)."""

    q: np.ndarray  # [n, 7]
    tcp_pos: np.ndarray  # [n, 3]
    tcp_mat: np.ndarray  # [n, 3, 3]
    jacobian: np.ndarray | None  # [n, 6, 7] (translational rows, then rotational) or None


def gripper_target(command):
    """Finger opening per finger from a command in [-1 (closed), 1 (open)]."""
    return (command + 1.0) * 0.5 * FINGER_MAX_OPENING


class Controller(abc.ABC):
    """Turns a batch of actions into joint targets."""

    action_spec: ActionSpec
    needs_jacobian = False

    @abc.abstractmethod
    def joint_targets(self, state: ArmState, actions):
        """Arm joint targets [n, 7] and finger targets [n] for actions [n, A]."""


class JointDeltaController(Controller):
    """Action: 7 joint position deltas (scaled by ``max_delta`` rad) and a gripper command."""

    def __init__(self, max_delta: float = 0.1):
        self.max_delta = max_delta
        names = tuple(f"joint{i}_delta" for i in range(1, 8)) + ("gripper",)
        self.action_spec = ActionSpec(dim=8, low=-1.0, high=1.0, names=names)

    def joint_targets(self, state, actions):
        q = state.q
        target = clip(q + actions[:, :7] * self.max_delta, const(q, JOINT_LOW), const(q, JOINT_HIGH))
        return target, gripper_target(actions[:, 7])


class EndEffectorController(Controller):
    """Action: tool position delta (scaled by ``max_translation`` m), optionally a rotation-vector delta
    (``max_rotation`` rad, world frame), and a gripper command. Solved by damped least-squares IK with a
    null-space pull towards the home posture. Without rotation the tool keeps pointing straight down.
    The commanded tool position is clipped to the box ``workspace_low``..``workspace_high`` (metres, world
    frame), so a policy cannot drive the fingers into the table or out of the arm's useful reach.
    """

    needs_jacobian = True

    def __init__(self, with_rotation: bool, max_translation: float = 0.05, max_rotation: float = 0.25,
                 damping: float = 0.05, nullspace_gain: float = 0.2,
                 workspace_low=WORKSPACE_LOW, workspace_high=WORKSPACE_HIGH):
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
        jac = state.jacobian  # [n, 6, 7]
        jac_t = xp.permute_dims(jac, (0, 2, 1))  # [n, 7, 6]
        gram = jac @ jac_t + (self.damping**2) * const(q, np.eye(6))[None]  # [n, 6, 6]
        pinv = jac_t @ xp.linalg.inv(gram)  # [n, 7, 6] damped pseudo-inverse
        dq = (pinv @ error)[:, :, 0]  # [n, 7]
        nullspace = const(q, np.eye(7))[None] - pinv @ jac  # [n, 7, 7]
        dq = dq + (nullspace @ ((const(q, HOME) - q) * self.nullspace_gain)[:, :, None])[:, :, 0]
        target = clip(q + dq, const(q, JOINT_LOW), const(q, JOINT_HIGH))
        return target, gripper_target(actions[:, -1])


CONTROLLERS = Registry("arm controller", key="env.controller")  # name -> a function building the controller
CONTROLLERS.register("joint_delta")(JointDeltaController)


@CONTROLLERS.register("ee_delta_pos")
def ee_delta_pos() -> Controller:
    """End-effector position deltas (m) and the gripper; joints by damped least-squares IK."""
    return EndEffectorController(with_rotation=False)


@CONTROLLERS.register("ee_delta_pose")
def ee_delta_pose() -> Controller:
    """End-effector position and rotation-vector deltas and the gripper; joints by damped least-squares IK."""
    return EndEffectorController(with_rotation=True)


def make_controller(name: str) -> Controller:
    """Build a controller by name: joint_delta, ee_delta_pos or ee_delta_pose."""
    return CONTROLLERS.lookup(name)()
