"""UFACTORY xArm 6 / xArm 7 through xarm-python-sdk (XArmAPI) in servo mode (mode 1), with its gripper."""

from __future__ import annotations

import numpy as np

from real_robot.robot import Robot, register_robot, require_sdk
from sims.arms import get_arm

GRIPPER_OPEN_UNITS = 850.0  # xArm gripper position range 0 (closed) .. 850 (open)


@register_robot("xarm")
class XArmRobot(Robot):
    """An xArm at ``host`` (``arm``: xarm7, the default, or xarm6); joint targets go through ``set_servo_angle_j``
    (radians), inside the model's joint limits."""

    def __init__(self, host: str, gripper_speed: float = 2000.0, cameras: dict | None = None, arm: str = "xarm7"):
        model = get_arm(arm)
        if not model.name.startswith("xarm"):
            raise ValueError(f"robot=xarm drives UFACTORY xArms; robot.arm={arm!r} is not one (use xarm7 or xarm6)")
        super().__init__(model, cameras)
        self.host = host
        self.gripper_speed = gripper_speed
        self.api = None

    @staticmethod
    def _ok(code, what: str) -> None:
        if code != 0:
            raise RuntimeError(f"xArm {what} returned error code {code}")

    def _connect(self) -> None:
        wrapper = require_sdk("xarm.wrapper")
        self.api = wrapper.XArmAPI(self.host, is_radian=True, do_not_open=True)
        self.api.connect()
        if self.api.axis != self.num_joints:  # the SDK pads angles to 7 on a 6-axis arm: check the real count
            raise ValueError(f"the xArm at {self.host} has {self.api.axis} axes; robot.arm={self.arm.name} has "
                             f"{self.num_joints}: set robot.arm=xarm{self.api.axis}")
        self.api.clean_error()
        self._ok(self.api.motion_enable(enable=True), "motion_enable")
        self._ok(self.api.set_mode(1), "set_mode(servo)")
        self._ok(self.api.set_state(0), "set_state(ready)")
        self._ok(self.api.set_gripper_enable(True), "set_gripper_enable")
        self._ok(self.api.set_gripper_speed(self.gripper_speed), "set_gripper_speed")

    def _disconnect(self) -> None:
        try:
            self.api.set_state(4)  # stop
        finally:
            self.api.disconnect()

    def _read_state(self):
        code, angles = self.api.get_servo_angle(is_radian=True)
        self._ok(code, "get_servo_angle")
        code, position = self.api.get_gripper_position()
        self._ok(code, "get_gripper_position")
        return np.asarray(angles[:self.num_joints], dtype=np.float64), float(position) / GRIPPER_OPEN_UNITS

    def _write_targets(self, joints, gripper):
        self._ok(self.api.set_servo_angle_j(list(map(float, joints)), is_radian=True), "set_servo_angle_j")
        self._ok(self.api.set_gripper_position(gripper * GRIPPER_OPEN_UNITS, wait=False), "set_gripper_position")

    def _hold(self) -> None:
        joints, _ = self._read_state()
        self._ok(self.api.set_servo_angle_j(list(map(float, joints)), is_radian=True), "set_servo_angle_j (hold)")
