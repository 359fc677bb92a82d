"""An arm as data: the manufacturer's Denavit-Hartenberg table, joint limits and servo settings, from which the
simulator builds its MJCF and deployment its kinematics. One file per arm in ``sims/arms/`` registers one
``ArmModel``; ``env.arm=<name>`` (and ``robot.arm=<name>``) picks it.

Two DH conventions are in use and both are supported, row by row ``(a, d, alpha, theta_offset)``:
- ``modified`` (Craig; Franka, UFACTORY): row i is (a_{i-1}, d_i, alpha_{i-1}, offset_i) and frame i is reached
  from frame i-1 by ``Rx(alpha_{i-1}) Tx(a_{i-1}) Rz(q_i + offset_i) Tz(d_i)``;
- ``standard`` (classic; Universal Robots): row i is (a_i, d_i, alpha_i, offset_i) and
  ``Rz(q_i + offset_i) Tz(d_i) Tx(a_i) Rx(alpha_i)``.
The flange is ``flange_d`` further along the last frame's z axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sims.registry import Registry

ARMS = Registry("arm", package="sims.arms", key="env.arm (or robot.arm)")


@dataclass(frozen=True)
class ArmModel:
    """One arm's published kinematics and limits, and the simulator's servo and geometry settings for it."""

    name: str
    convention: str  # "modified" | "standard"
    dh: tuple  # per joint (a, d, alpha, theta_offset): metres, radians
    joint_limits: tuple  # per joint (low, high), rad
    velocity_limits: tuple  # per joint, rad/s
    home_qpos: tuple  # the ready pose: tool over the table, pointing down (checked by tests/test_arms.py)
    flange_d: float = 0.0  # metres from the last DH frame to the flange, along its z axis
    hand_yaw: float = 0.0  # rotation of the gripper about the flange axis (rad)
    base_pos: tuple = (-0.6, 0.0, 0.0)  # where the arm is mounted on the table (world frame, m)
    link_radius: float = 0.05  # capsules along the links (collision and rendering)
    link_masses: tuple = ()  # kg per link; empty: 1 kg each
    servo_gains: tuple = ()  # position servo kp per joint; empty: 3000 each
    max_torque: float = 87.0  # servo force limit (N m)
    source: str = ""  # where the numbers come from

    def __post_init__(self):
        n = len(self.dh)
        if self.convention not in ("modified", "standard"):
            raise ValueError(f"arm {self.name}: convention must be 'modified' or 'standard', got {self.convention!r}")
        for field_name in ("joint_limits", "velocity_limits", "home_qpos"):
            if len(getattr(self, field_name)) != n:
                raise ValueError(f"arm {self.name}: {field_name} has {len(getattr(self, field_name))} entries for "
                                 f"{n} joints")
        for (lo, hi), home in zip(self.joint_limits, self.home_qpos):
            if not lo < home < hi:
                raise ValueError(f"arm {self.name}: home_qpos {self.home_qpos} leaves the joint limits")

    @property
    def dof(self) -> int:
        """Number of arm joints (the gripper not counted)."""
        return len(self.dh)

    @property
    def joint_names(self) -> tuple[str, ...]:
        return tuple(f"joint{i}" for i in range(1, self.dof + 1))

    @property
    def joint_low(self) -> np.ndarray:
        return np.array([lo for lo, _ in self.joint_limits])

    @property
    def joint_high(self) -> np.ndarray:
        return np.array([hi for _, hi in self.joint_limits])

    @property
    def home(self) -> np.ndarray:
        return np.array(self.home_qpos, dtype=np.float64)

    def masses(self) -> tuple:
        return self.link_masses or (1.0,) * self.dof

    def gains(self) -> tuple:
        return self.servo_gains or (3000,) * self.dof

    # ------------------------------------------------------------------------------ DH kinematics (numpy)
    def flange_pose(self, q) -> np.ndarray:
        """4x4 pose of the flange in the arm's base frame at joint positions q [dof], straight from the DH table."""
        pose = np.eye(4)
        for (a, d, alpha, offset), angle in zip(self.dh, q):
            theta = angle + offset
            if self.convention == "modified":
                pose = pose @ _rot_x(alpha) @ _trans(a, 0, 0) @ _rot_z(theta) @ _trans(0, 0, d)
            else:
                pose = pose @ _rot_z(theta) @ _trans(0, 0, d) @ _trans(a, 0, 0) @ _rot_x(alpha)
        return pose @ _trans(0, 0, self.flange_d)

    # ------------------------------------------------------------------------------ MJCF body frames
    def body_frames(self) -> list[tuple[tuple, tuple]]:
        """(pos, quat) of each link body in its parent (link 1 in the base), then of the flange in the last link:
        dof + 1 entries. Each link body's z axis is its joint axis, so the joint itself is a plain hinge."""
        frames = []
        if self.convention == "modified":
            for a, d, alpha, offset in self.dh:  # Rx(alpha) Tx(a) Tz(d) Rz(offset); Tz commutes with Rz(q)
                frames.append(((a, -d * math.sin(alpha), d * math.cos(alpha)),
                               _quat_mul(_quat_x(alpha), _quat_z(offset))))
            frames.append(((0.0, 0.0, self.flange_d), (1.0, 0.0, 0.0, 0.0)))
            return frames
        frames.append(((0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0)))  # joint 1 turns about the base z axis
        for i, (a, d, alpha, offset) in enumerate(self.dh):  # Rz(offset) Tz(d) Tx(a) Rx(alpha) after joint i
            pos = (a * math.cos(offset), a * math.sin(offset), d)
            if i == self.dof - 1:
                pos = tuple(p + f for p, f in zip(pos, _rotate(_quat_mul(_quat_z(offset), _quat_x(alpha)),
                                                                (0.0, 0.0, self.flange_d))))
            frames.append((pos, _quat_mul(_quat_z(offset), _quat_x(alpha))))
        return frames


def _rot_x(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[1, 0, 0, 0], [0, c, -s, 0], [0, s, c, 0], [0, 0, 0, 1.0]])


def _rot_z(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0, 0], [s, c, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])


def _trans(x: float, y: float, z: float) -> np.ndarray:
    pose = np.eye(4)
    pose[:3, 3] = (x, y, z)
    return pose


def _quat_x(angle: float) -> tuple:
    return (math.cos(angle / 2), math.sin(angle / 2), 0.0, 0.0)


def _quat_z(angle: float) -> tuple:
    return (math.cos(angle / 2), 0.0, 0.0, math.sin(angle / 2))


def _quat_mul(p: tuple, q: tuple) -> tuple:
    w1, x1, y1, z1 = p
    w2, x2, y2, z2 = q
    return (w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2)


def _rotate(q: tuple, v: tuple) -> tuple:
    w, x, y, z = q
    m = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                  [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                  [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])
    return tuple(m @ np.asarray(v))


def register_arm(arm: ArmModel) -> ArmModel:
    """Make ``arm`` selectable as ``env.arm=<arm.name>``."""
    ARMS.register(arm.name)(arm)
    return arm


def get_arm(name: str) -> ArmModel:
    """The registered arm ``name`` (KeyError naming the available ones)."""
    return ARMS.lookup(name)
