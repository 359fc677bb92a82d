"""UFACTORY xArm 7 through xarm-python-sdk (XArmAPI) in servo mode (mode 1), with its gripper."""

from __future__ import annotations

import numpy as np

from real_robot.robot import Robot, register_robot, require_sdk

XARM7_LIMITS_DEG = ((-360, 360), (-118, 120), (-360, 360), (-11, 225), (-360, 360), (-97, 180), (-360, 360))
GRIPPER_OPEN_UNITS = 850.0  # xArm gripper position range 0 (closed) .. 850 (open)


@register_robot("xarm")
class XArmRobot(Robot):
    """An xArm 7 at ``host``; joint targets go through ``set_servo_angle_j`` (radians)."""

    def __init__(self, host: str, gripper_speed: float = 2000.0, cameras: dict | None = None):
        low, high = np.deg2rad(np.array(XARM7_LIMITS_DEG, dtype=np.float64)).T
        super().__init__(low, high, cameras)
        self.host = host
        self.gripper_speed = gripper_speed
        self.arm = None

    @staticmethod
    def _ok(code, what: str) -> None:
        if code != 0:
            raise RuntimeError(f"xArm {what} returned error code {code}")

    def _connect(self) -> None:
        wrapper = require_sdk("xarm.wrapper")
        self.arm = wrapper.XArmAPI(self.host, is_radian=True, do_not_open=True)
        self.arm.connect()
        self.arm.clean_error()
        self._ok(self.arm.motion_enable(enable=True), "motion_enable")
        self._ok(self.arm.set_mode(1), "set_mode(servo)")
        self._ok(self.arm.set_state(0), "set_state(ready)")
        self._ok(self.arm.set_gripper_enable(True), "set_gripper_enable")
        self._ok(self.arm.set_gripper_speed(self.gripper_speed), "set_gripper_speed")

    def _disconnect(self) -> None:
        try:
            self.arm.set_state(4)  # stop
        finally:
            self.arm.disconnect()

    def _read_state(self):
        code, angles = self.arm.get_servo_angle(is_radian=True)
        self._ok(code, "get_servo_angle")
        code, position = self.arm.get_gripper_position()
        self._ok(code, "get_gripper_position")
        return np.asarray(angles[:7], dtype=np.float64), float(position) / GRIPPER_OPEN_UNITS

    def _write_targets(self, joints, gripper):
        self._ok(self.arm.set_servo_angle_j(list(map(float, joints)), is_radian=True), "set_servo_angle_j")
        self._ok(self.arm.set_gripper_position(gripper * GRIPPER_OPEN_UNITS, wait=False), "set_gripper_position")

    def _hold(self) -> None:
        joints, _ = self._read_state()
        self._ok(self.arm.set_servo_angle_j(list(map(float, joints)), is_radian=True), "set_servo_angle_j (hold)")
