"""Universal Robots arms through ur_rtde (RTDEControlInterface / RTDEReceiveInterface), servoJ streaming."""

from __future__ import annotations

import numpy as np

from real_robot.robot import Robot, register_robot, require_sdk
from sims.arms import get_arm


@register_robot("ur")
class URRobot(Robot):
    """A UR arm at ``host`` (``arm``: its model in ``sims.arms``, the UR5e by default); joint targets are streamed
    with servoJ at the deployment rate, inside the model's joint limits.

    ur_rtde drives no gripper: the gripper value is kept as commanded (attach a gripper device separately).
    """

    def __init__(self, host: str, control_hz: float = 125.0, speed: float = 0.5, acceleration: float = 0.5,
                 lookahead_time: float = 0.1, gain: float = 300.0, cameras: dict | None = None, arm: str = "ur5e"):
        model = get_arm(arm)
        if not model.name.startswith("ur"):
            raise ValueError(f"robot=ur drives Universal Robots arms; robot.arm={arm!r} is not one (use ur5e)")
        super().__init__(model, cameras)
        self.host = host
        self.servo_time = 1.0 / control_hz
        self.speed, self.acceleration, self.lookahead_time, self.gain = speed, acceleration, lookahead_time, gain
        self.control = self.receive = None
        self._gripper = 1.0

    def _connect(self) -> None:
        rtde_control = require_sdk("rtde_control")
        rtde_receive = require_sdk("rtde_receive")
        self.control = rtde_control.RTDEControlInterface(self.host)
        self.receive = rtde_receive.RTDEReceiveInterface(self.host)
        joints = len(self.receive.getActualQ())
        if joints != self.num_joints:
            raise ValueError(f"the UR at {self.host} reports {joints} joints; robot.arm={self.arm.name} has "
                             f"{self.num_joints}: set robot.arm to this robot's model")

    def _disconnect(self) -> None:
        try:
            self.control.servoStop()
            self.control.stopScript()
        finally:
            self.control.disconnect()
            self.receive.disconnect()

    def _read_state(self):
        if not self.receive.isConnected():
            raise ConnectionError(f"lost the RTDE connection to {self.host}")
        return np.asarray(self.receive.getActualQ(), dtype=np.float64), self._gripper

    def _write_targets(self, joints, gripper):
        ok = self.control.servoJ(list(map(float, joints)), self.speed, self.acceleration, self.servo_time,
                                 self.lookahead_time, self.gain)
        if ok is False:
            raise RuntimeError("servoJ was refused by the controller (protective stop or script not running?)")
        self._gripper = gripper

    def _hold(self) -> None:
        self.control.servoStop()
