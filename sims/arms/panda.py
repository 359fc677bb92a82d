"""Franka Emika Panda (7 joints), from Franka's published modified DH table and joint limits."""

import math

from sims.arms.base import ArmModel, register_arm

PANDA = register_arm(ArmModel(
    name="panda",
    convention="modified",
    dh=((0.0, 0.333, 0.0, 0.0), (0.0, 0.0, -math.pi / 2, 0.0), (0.0, 0.316, math.pi / 2, 0.0),
        (0.0825, 0.0, math.pi / 2, 0.0), (-0.0825, 0.384, -math.pi / 2, 0.0), (0.0, 0.0, math.pi / 2, 0.0),
        (0.088, 0.0, math.pi / 2, 0.0)),
    flange_d=0.107,
    joint_limits=((-2.8973, 2.8973), (-1.7628, 1.7628), (-2.8973, 2.8973), (-3.0718, -0.0698), (-2.8973, 2.8973),
                  (-0.0175, 3.7525), (-2.8973, 2.8973)),
    velocity_limits=(2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61),
    home_qpos=(0.0, math.pi / 8, 0.0, -5 * math.pi / 8, 0.0, 3 * math.pi / 4, math.pi / 4),
    hand_yaw=-math.pi / 4,  # the Panda hand sits at -45 degrees about the flange
    link_masses=(4.97, 0.65, 3.23, 3.59, 1.23, 1.67, 0.74),
    servo_gains=(4500, 4500, 3500, 3500, 1500, 1500, 1000),
    source="Franka Control Interface documentation: robot and interface specifications (DH, limits)",
))
