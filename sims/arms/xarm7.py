"""UFACTORY xArm 7 (7 joints), from UFACTORY's published modified DH table and the xarm_description limits."""

import math

from sims.arms.base import ArmModel, register_arm

XARM7 = register_arm(ArmModel(
    name="xarm7",
    convention="modified",
    dh=((0.0, 0.267, 0.0, 0.0), (0.0, 0.0, -math.pi / 2, 0.0), (0.0, 0.293, math.pi / 2, 0.0),
        (0.0525, 0.0, math.pi / 2, 0.0), (0.0775, 0.3425, math.pi / 2, 0.0), (0.0, 0.0, math.pi / 2, 0.0),
        (0.076, 0.097, -math.pi / 2, 0.0)),
    joint_limits=((-2 * math.pi, 2 * math.pi), (-2.059, 2.0944), (-2 * math.pi, 2 * math.pi), (-0.19198, 3.927),
                  (-2 * math.pi, 2 * math.pi), (-1.69297, math.pi), (-2 * math.pi, 2 * math.pi)),
    velocity_limits=(math.pi,) * 7,  # 180 degrees/s
    home_qpos=(0.0, 0.2697, 0.0, 1.1277, 0.0, 0.8578, 0.0),  # tool at the Panda's home, pointing down
    base_pos=(-0.5, 0.0, 0.0),  # 0.7 m reach: mounted closer than the Panda
    link_radius=0.045,
    link_masses=(2.38, 1.38, 1.26, 1.2, 1.17, 1.44, 0.18),
    servo_gains=(3500, 3500, 3000, 3000, 1500, 1500, 1000),
    max_torque=50.0,
    source="UFACTORY docs 'Kinematic and dynamic parameters' (xArm 7, modified D-H); xArm-Developer/xarm_ros2 "
           "xarm_description/urdf/xarm7 (limits); 180 deg/s from the UFACTORY specification",
))
