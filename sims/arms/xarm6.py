"""UFACTORY xArm 6 (6 joints), from UFACTORY's published modified DH table (with its joint 2 and 3 offsets) and the
xarm_description limits."""

import math

from sims.arms.base import ArmModel, register_arm

T2_OFFSET = -math.atan2(284.5, 53.5)  # -79.35 degrees: the mathematical zero to the mechanical zero

XARM6 = register_arm(ArmModel(
    name="xarm6",
    convention="modified",
    dh=((0.0, 0.267, 0.0, 0.0), (0.0, 0.0, -math.pi / 2, T2_OFFSET), (math.hypot(284.5, 53.5) / 1000, 0.0, 0.0, -T2_OFFSET),
        (0.0775, 0.3425, -math.pi / 2, 0.0), (0.0, 0.0, math.pi / 2, 0.0), (0.076, 0.097, -math.pi / 2, 0.0)),
    joint_limits=((-2 * math.pi, 2 * math.pi), (-2.059, 2.0944), (-3.927, 0.19198), (-2 * math.pi, 2 * math.pi),
                  (-1.69297, math.pi), (-2 * math.pi, 2 * math.pi)),
    velocity_limits=(math.pi,) * 6,  # 180 degrees/s
    home_qpos=(0.0, 0.1084, -0.9386, 0.0, 0.8302, 0.0),  # tool at the Panda's home, pointing down
    base_pos=(-0.45, 0.0, 0.0),  # 0.7 m reach: mounted closer than the Panda
    link_radius=0.045,
    link_masses=(2.38, 1.38, 1.26, 1.7, 1.17, 0.18),
    servo_gains=(3500, 3500, 3000, 1500, 1500, 1000),
    max_torque=50.0,
    source="UFACTORY docs 'Kinematic and dynamic parameters' (xArm 6, modified D-H, T2/T3 offsets); "
           "xArm-Developer/xarm_ros2 xarm_description/urdf/xarm6 (limits); 180 deg/s from the UFACTORY specification",
))
