"""MJCF of a 7-DoF arm with the Franka Panda's published kinematics, joint limits and a parallel-jaw gripper.

The kinematic chain follows Franka's published modified Denavit-Hartenberg table (Craig's convention):
frame i is reached from frame i-1 by Rx(alpha_{i-1}) Tx(a_{i-1}) Rz(q_i) Tz(d_i). In MJCF each link is a
body whose position is (a, -d sin(alpha), d cos(alpha)) and whose orientation is Rx(alpha) in its parent,
with a hinge about its local z axis. Link geometry is primitive capsules (visual only) and the hand and
fingers carry the collision boxes that touch objects.
"""

from __future__ import annotations

import math

# (a_{i-1}, d_i, alpha_{i-1}) for joints 1..7, then the flange (Franka's published DH parameters).
PANDA_DH = (
    (0.0, 0.333, 0.0),
    (0.0, 0.0, -math.pi / 2),
    (0.0, 0.316, math.pi / 2),
    (0.0825, 0.0, math.pi / 2),
    (-0.0825, 0.384, -math.pi / 2),
    (0.0, 0.0, math.pi / 2),
    (0.088, 0.0, math.pi / 2),
)
PANDA_FLANGE_D = 0.107
PANDA_JOINT_LIMITS = (
    (-2.8973, 2.8973),
    (-1.7628, 1.7628),
    (-2.8973, 2.8973),
    (-3.0718, -0.0698),
    (-2.8973, 2.8973),
    (-0.0175, 3.7525),
    (-2.8973, 2.8973),
)
PANDA_LINK_MASSES = (4.97, 0.65, 3.23, 3.59, 1.23, 1.67, 0.74)
# A comfortable "ready" pose with the gripper pointing down over the table.
PANDA_HOME_QPOS = (0.0, math.pi / 8, 0.0, -5 * math.pi / 8, 0.0, 3 * math.pi / 4, math.pi / 4)
FINGER_MAX_OPENING = 0.04  # metres per finger
HAND_TO_TCP = 0.1034  # flange to the centre of the finger pads
ARM_JOINT_NAMES = tuple(f"joint{i}" for i in range(1, 8))
FINGER_JOINT_NAMES = ("finger_left", "finger_right")


def _fmt(values) -> str:
    return " ".join(f"{v:.6g}" for v in values)


def _rx_quat(alpha: float) -> tuple[float, float, float, float]:
    return (math.cos(alpha / 2), math.sin(alpha / 2), 0.0, 0.0)


def _link_body(index: int, inner: str) -> str:
    a, d, alpha = PANDA_DH[index]
    pos = (a, -d * math.sin(alpha), d * math.cos(alpha))
    lo, hi = PANDA_JOINT_LIMITS[index]
    name = ARM_JOINT_NAMES[index]
    # A capsule from this joint towards the next joint's origin, for rendering only.
    if index + 1 < len(PANDA_DH):
        a_next, d_next, alpha_next = PANDA_DH[index + 1]
        tip = (a_next, -d_next * math.sin(alpha_next), d_next * math.cos(alpha_next))
    else:
        tip = (0.0, 0.0, PANDA_FLANGE_D)
    length = math.sqrt(sum(t * t for t in tip))
    if length > 1e-6:
        visual = (
            f'<geom class="link" type="capsule" size="0.05" fromto="0 0 0 {_fmt(tip)}" '
            f'mass="{PANDA_LINK_MASSES[index]}"/>'
        )
    else:
        visual = f'<geom class="link" type="sphere" size="0.06" mass="{PANDA_LINK_MASSES[index]}"/>'
    return (
        f'<body name="link{index + 1}" pos="{_fmt(pos)}" quat="{_fmt(_rx_quat(alpha))}" gravcomp="1">'
        f'<joint name="{name}" class="arm_joint" range="{lo} {hi}"/>'
        f"{visual}{inner}</body>"
    )


def _hand_body() -> str:
    # The hand is rotated -45 degrees about the flange axis, as on the real Panda.
    c, s = math.cos(-math.pi / 8), math.sin(-math.pi / 8)
    pad = (
        '<geom class="pad" type="box" size="0.009 0.004 0.012" pos="0 {y} 0.045"/>'
    )
    return (
        f'<body name="hand" pos="0 0 {PANDA_FLANGE_D}" quat="{c:.6g} 0 0 {s:.6g}" gravcomp="1">'
        '<geom class="hand" type="box" size="0.02 0.09 0.025" pos="0 0 0.03" mass="0.73"/>'
        '<camera name="wrist" pos="0.06 0 0.03" xyaxes="0 1 0 0.95 0 0.3" fovy="75"/>'
        f'<site name="tcp" pos="0 0 {HAND_TO_TCP}" size="0.005" rgba="1 0 0 0"/>'
        '<body name="finger_left" pos="0 0 0.0584" gravcomp="1">'
        '<joint name="finger_left" class="finger_joint" axis="0 1 0"/>'
        '<geom class="finger" type="box" size="0.009 0.006 0.02" pos="0 0.011 0.02" mass="0.015"/>'
        + pad.format(y=0.004)
        + "</body>"
        '<body name="finger_right" pos="0 0 0.0584" gravcomp="1">'
        '<joint name="finger_right" class="finger_joint" axis="0 -1 0"/>'
        '<geom class="finger" type="box" size="0.009 0.006 0.02" pos="0 -0.011 0.02" mass="0.015"/>'
        + pad.format(y=-0.004)
        + "</body></body>"
    )


def arm_defaults() -> str:
    """The MJCF <default> classes used by the arm's joints, geoms and actuators."""
    return (
        '<default class="arm_joint"><joint type="hinge" axis="0 0 1" damping="20" armature="0.3"/></default>'
        '<default class="finger_joint"><joint type="slide" range="0 0.04" damping="10" armature="0.3"/></default>'
        '<default class="link"><geom contype="0" conaffinity="0" group="1" rgba="0.92 0.92 0.95 1"/></default>'
        '<default class="hand"><geom contype="2" conaffinity="1" group="1" rgba="0.25 0.25 0.28 1"/></default>'
        '<default class="finger"><geom contype="2" conaffinity="1" group="1" rgba="0.3 0.3 0.32 1"/></default>'
        '<default class="pad"><geom contype="2" conaffinity="1" condim="4" friction="1.5 0.01 0.001" '
        'solref="0.01 1" solimp="0.95 0.995 0.001" group="1" rgba="0.15 0.15 0.15 1"/></default>'
    )


def arm_body(base_pos: tuple[float, float, float]) -> str:
    """The arm's kinematic tree as an MJCF <body>, mounted at base_pos."""
    inner = _hand_body()
    for index in reversed(range(len(PANDA_DH))):
        inner = _link_body(index, inner)
    return (
        f'<body name="base" pos="{_fmt(base_pos)}">'
        '<geom class="link" type="cylinder" size="0.07 0.03" pos="0 0 0.03"/>'
        f"{inner}</body>"
    )


def arm_actuators() -> str:
    """Joint position servos for the arm and one per finger."""
    gains = (4500, 4500, 3500, 3500, 1500, 1500, 1000)
    lines = []
    for name, (lo, hi), kp in zip(ARM_JOINT_NAMES, PANDA_JOINT_LIMITS, gains):
        lines.append(
            f'<position name="act_{name}" joint="{name}" kp="{kp}" kv="{kp // 20}" '
            f'ctrlrange="{lo} {hi}" forcerange="-87 87"/>'
        )
    for name in FINGER_JOINT_NAMES:
        lines.append(
            f'<position name="act_{name}" joint="{name}" kp="1000" kv="50" ctrlrange="0 0.04" forcerange="-30 30"/>'
        )
    return "<actuator>" + "".join(lines) + "</actuator>"
