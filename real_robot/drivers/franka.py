"""Franka Panda / FR3 through franky (``franky-panda``): asynchronous JointMotion targets and the Franka Hand.

Opening moves the hand (``move_async``); closing grasps (``grasp_async``) with a force cap, so the hand never
squeezes harder than ``gripper_force`` (further lowered by the safety guard's ``max_gripper_force``).
"""

from __future__ import annotations

import numpy as np

from real_robot.robot import Robot, register_robot, require_sdk

HAND_MAX_WIDTH = 0.08  # metres between the fingers when open
HAND_MAX_FORCE = 70.0  # newtons, the Franka Hand's continuous grasp force
GRASP_EPSILON = HAND_MAX_WIDTH  # a grasp counts at any final width: the object size is not known


@register_robot("franka")
class FrankaRobot(Robot):
    """A Franka arm at ``host``; each target replaces the running motion (franky's asynchronous move)."""

    def __init__(self, host: str, relative_dynamics_factor: float = 0.1, gripper_speed: float = 0.05,
                 gripper_force: float = 20.0, cameras: dict | None = None, arm: str = "panda"):
        if arm != "panda":
            raise ValueError(f"robot=franka drives the Panda (arm model panda), not robot.arm={arm!r}")
        super().__init__(arm, cameras)
        self.host = host
        self.relative_dynamics_factor = relative_dynamics_factor
        self.gripper_speed = gripper_speed
        self.gripper_force = min(gripper_force, HAND_MAX_FORCE)  # grasp force cap (N)
        self.robot = self.gripper = None
        self._franky = None
        self._last_gripper = None

    def _connect(self) -> None:
        self._franky = require_sdk("franky")
        self.robot = self._franky.Robot(self.host)
        self.robot.recover_from_errors()
        self.robot.relative_dynamics_factor = self.relative_dynamics_factor
        self.gripper = self._franky.Gripper(self.host)

    def _disconnect(self) -> None:
        self.robot.stop()

    def _read_state(self):
        joints = np.asarray(self.robot.current_joint_state.position, dtype=np.float64)
        return joints, float(self.gripper.width) / HAND_MAX_WIDTH

    def _write_targets(self, joints, gripper):
        self.robot.move(self._franky.JointMotion(list(map(float, joints))), asynchronous=True)
        if self._last_gripper is None or abs(gripper - self._last_gripper) > 0.05:  # avoid flooding the hand
            width = gripper * HAND_MAX_WIDTH
            if self._last_gripper is not None and gripper < self._last_gripper:
                self.gripper.grasp_async(width, self.gripper_speed, self.gripper_force,
                                         epsilon_inner=GRASP_EPSILON, epsilon_outer=GRASP_EPSILON)
            else:
                self.gripper.move_async(width, self.gripper_speed)
            self._last_gripper = gripper

    def _limit_gripper_force(self, newtons: float) -> float:
        self.gripper_force = min(self.gripper_force, newtons)
        return self.gripper_force

    def _hold(self) -> None:
        self.robot.stop()
