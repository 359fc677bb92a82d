"""MJCF of an arm (any ``sims.arms`` model) with a parallel-jaw gripper.

Each link is a body placed by the arm's DH table (``ArmModel.body_frames``) with a hinge about its local z axis.
Links are capsules along the DH segments that collide with the table and objects (not with each other); the hand
and fingers carry the collision boxes that grasp.
"""

from __future__ import annotations

import math

from sims.arms import ArmModel

FINGER_MAX_OPENING = 0.04  # metres per finger
FINGER_MAX_FORCE = 20.0  # newtons per finger servo: also the safety guard's default max_gripper_force
HAND_TO_TCP = 0.1034  # flange to the centre of the finger pads
FINGER_JOINT_NAMES = ("finger_left", "finger_right")


def _fmt(values) -> str:
    return " ".join(f"{v:.6g}" for v in values)


def _link_body(arm: ArmModel, index: int, inner: str) -> str:
    frames = arm.body_frames()
    pos, quat = frames[index]
    tip = frames[index + 1][0]  # the next joint's (or the flange's) origin in this link's frame
    lo, hi = arm.joint_limits[index]
    mass = arm.masses()[index]
    length = sum(t * t for t in tip) ** 0.5
    if length > 1e-6:
        shape = f'type="capsule" size="{arm.link_radius:.6g}" fromto="0 0 0 {_fmt(tip)}"'
    else:
        shape = f'type="sphere" size="{arm.link_radius * 1.2:.6g}"'
    # the first link turns about the mount's vertical axis: it can reach nothing the base cannot, and its capsule
    # down to the mount would rub on the table top
    contact = ' contype="0" conaffinity="0"' if index == 0 else ""
    return (
        f'<body name="link{index + 1}" pos="{_fmt(pos)}" quat="{_fmt(quat)}" gravcomp="1">'
        f'<joint name="{arm.joint_names[index]}" class="arm_joint" range="{lo} {hi}"/>'
        f'<geom class="link" {shape} mass="{mass}"{contact}/>{inner}</body>'
    )


def _hand_body(arm: ArmModel) -> str:
    pos, quat = arm.body_frames()[-1]
    c, s = math.cos(arm.hand_yaw / 2), math.sin(arm.hand_yaw / 2)
    w, x, y, z = quat  # flange frame, then the hand's yaw about the flange axis
    hand_quat = (w * c - z * s, x * c + y * s, y * c - x * s, w * s + z * c)
    pad = (
        '<geom class="pad" type="box" size="0.009 0.004 0.012" pos="0 {y} 0.045"/>'
    )
    return (
        f'<body name="hand" pos="{_fmt(pos)}" quat="{_fmt(hand_quat)}" gravcomp="1">'
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
        # links touch the table and objects (contype 1 geoms), not each other nor the hand
        '<default class="link"><geom contype="4" conaffinity="1" group="1" rgba="0.92 0.92 0.95 1"/></default>'
        '<default class="hand"><geom contype="2" conaffinity="1" group="1" rgba="0.25 0.25 0.28 1"/></default>'
        '<default class="finger"><geom contype="2" conaffinity="1" group="1" rgba="0.3 0.3 0.32 1"/></default>'
        '<default class="pad"><geom contype="2" conaffinity="1" condim="4" friction="1.5 0.01 0.001" '
        'solref="0.01 1" solimp="0.95 0.995 0.001" group="1" rgba="0.15 0.15 0.15 1"/></default>'
    )


def arm_body(arm: ArmModel) -> str:
    """The arm's kinematic tree as an MJCF <body>, mounted at ``arm.base_pos``."""
    inner = _hand_body(arm)
    for index in reversed(range(arm.dof)):
        inner = _link_body(arm, index, inner)
    return (
        f'<body name="base" pos="{_fmt(arm.base_pos)}">'
        '<geom class="link" type="cylinder" size="0.07 0.03" pos="0 0 0.03"/>'
        f"{inner}</body>"
    )


def arm_actuators(arm: ArmModel) -> str:
    """Joint position servos for the arm and one per finger."""
    lines = []
    for name, (lo, hi), kp in zip(arm.joint_names, arm.joint_limits, arm.gains()):
        lines.append(
            f'<position name="act_{name}" joint="{name}" kp="{kp}" kv="{kp // 20}" '
            f'ctrlrange="{lo} {hi}" forcerange="-{arm.max_torque:g} {arm.max_torque:g}"/>'
        )
    for name in FINGER_JOINT_NAMES:
        lines.append(
            f'<position name="act_{name}" joint="{name}" kp="1000" kv="50" ctrlrange="0 0.04" '
            f'forcerange="-{FINGER_MAX_FORCE:g} {FINGER_MAX_FORCE:g}"/>'
        )
    return "<actuator>" + "".join(lines) + "</actuator>"
