"""Universal Robots UR5e (6 joints), from UR's published standard DH parameters and ur_description's limits."""

import math

from sims.arms.base import ArmModel, register_arm

UR5E = register_arm(ArmModel(
    name="ur5e",
    convention="standard",
    dh=((0.0, 0.1625, math.pi / 2, 0.0), (-0.425, 0.0, 0.0, 0.0), (-0.3922, 0.0, 0.0, 0.0),
        (0.0, 0.1333, math.pi / 2, 0.0), (0.0, 0.0997, -math.pi / 2, 0.0), (0.0, 0.0996, 0.0, 0.0)),
    # +-360 degrees on every joint; the elbow halved to +-180 as ur_description does (the arm cannot pass itself)
    joint_limits=((-2 * math.pi, 2 * math.pi), (-2 * math.pi, 2 * math.pi), (-math.pi, math.pi),
                  (-2 * math.pi, 2 * math.pi), (-2 * math.pi, 2 * math.pi), (-2 * math.pi, 2 * math.pi)),
    velocity_limits=(math.pi,) * 6,
    home_qpos=(2.9231, -1.1973, 1.6898, -2.0633, -1.5708, -1.7893),  # tool at the Panda's home, pointing down
    link_radius=0.045,
    link_masses=(3.761, 8.058, 2.846, 1.37, 1.3, 0.365),
    servo_gains=(4500, 4500, 3500, 1500, 1500, 1000),
    max_torque=150.0,
    source="universal-robots.com 'DH parameters for calculations of kinematics and dynamics' (UR5e); "
           "UniversalRobots/Universal_Robots_ROS2_Description config/ur5e/joint_limits.yaml",
))
