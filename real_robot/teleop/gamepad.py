"""Gamepad teleoperation through pygame's joystick module (``pip install 'embodied-vla[teleop]'``).

Xbox layout by default: left stick moves the tool in the table plane, right stick up/down lifts it; A toggles
the gripper, B discards and re-records, Start finishes the episode, Back stops the session.
"""

from __future__ import annotations

import os

import numpy as np

from real_robot.robot import require_sdk
from real_robot.teleop.device import TeleopCommand, TeleopDevice, register_device


@register_device("gamepad")
class GamepadTeleop(TeleopDevice):
    """Axis and button indices are configurable for other layouts."""

    def __init__(self, speed: float = 1.0, deadzone: float = 0.1, joystick_index: int = 0,
                 axes=(1, 0, 4), axis_signs=(-1.0, -1.0, -1.0), buttons=None):
        super().__init__(speed)
        self.deadzone, self.joystick_index = deadzone, joystick_index
        self.axes, self.axis_signs = tuple(axes), np.asarray(axis_signs, dtype=np.float64)
        self.buttons = {"gripper": 0, "rerecord": 1, "stop": 6, "finish": 7} | dict(buttons or {})
        self.pygame = self.joystick = None
        self._was_down: dict[str, bool] = {}

    def _connect(self) -> None:
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # joystick events need SDL's event loop, not a window
        self.pygame = require_sdk("pygame", extra="teleop")
        self.pygame.display.init()
        self.pygame.joystick.init()
        count = self.pygame.joystick.get_count()
        if count <= self.joystick_index:
            raise ConnectionError(f"gamepad {self.joystick_index} not found ({count} connected); plug it in or set "
                                  "device.joystick_index")
        self.joystick = self.pygame.joystick.Joystick(self.joystick_index)
        self.joystick.init()

    def _disconnect(self) -> None:
        self.joystick.quit()
        self.pygame.joystick.quit()

    def _pressed(self, name: str) -> bool:
        down = bool(self.joystick.get_button(self.buttons[name]))
        pressed = down and not self._was_down.get(name, False)
        self._was_down[name] = down
        return pressed

    def _read(self, robot_obs) -> TeleopCommand:
        self.pygame.event.pump()
        values = np.array([self.joystick.get_axis(i) for i in self.axes], dtype=np.float64) * self.axis_signs
        values = np.where(np.abs(values) < self.deadzone, 0.0, values)
        if self._pressed("gripper"):
            self.gripper = -self.gripper
        events = frozenset(e for e in ("finish", "rerecord", "stop") if self._pressed(e))
        return TeleopCommand(translation=values, gripper=self.gripper, events=events)
