"""3Dconnexion SpaceMouse teleoperation through pyspacemouse (>= 2.0, ``pip install 'embodied-vla[teleop]'``).

Push/pull/lift the cap to move the tool; twist/tilt it to rotate (for ee_delta_pose). Left button toggles the
gripper, right button finishes the episode.
"""

from __future__ import annotations

import numpy as np

from real_robot.robot import require_sdk
from real_robot.teleop.device import TeleopCommand, TeleopDevice, register_device


@register_device("spacemouse")
class SpaceMouseTeleop(TeleopDevice):
    """Reads the cap's 6 axes (right-handed, z up) and two buttons; ``deadzone`` ignores a resting hand."""

    def __init__(self, speed: float = 1.0, deadzone: float = 0.05, axis_signs=(1.0, 1.0, 1.0), device_index: int = 0):
        super().__init__(speed)
        self.deadzone, self.axis_signs, self.device_index = deadzone, np.asarray(axis_signs, float), device_index
        self.mouse = None
        self._buttons = (0, 0)

    def _connect(self) -> None:
        pyspacemouse = require_sdk("pyspacemouse", extra="teleop")
        self.mouse = pyspacemouse.open(device_index=self.device_index,
                                       axis_convention=pyspacemouse.AxisConvention.HID_Z_UP)

    def _disconnect(self) -> None:
        self.mouse.close()

    def _axes(self, values) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        return np.where(np.abs(values) < self.deadzone, 0.0, values)

    def _read(self, robot_obs) -> TeleopCommand:
        state = self.mouse.read()
        buttons = tuple(list(state.buttons)[:2]) + (0,) * max(0, 2 - len(state.buttons))
        pressed = [now and not before for now, before in zip(buttons, self._buttons)]
        self._buttons = buttons
        if pressed[0]:
            self.gripper = -self.gripper
        return TeleopCommand(translation=self._axes([state.x, state.y, state.z]) * self.axis_signs,
                             rotation=self._axes([state.roll, state.pitch, state.yaw]), gripper=self.gripper,
                             events=frozenset({"finish"}) if pressed[1] else frozenset())
