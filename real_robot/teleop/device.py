"""Teleoperation input devices behind one interface: each reading is an end-effector motion command plus
operator events; a registry picks the device from config (``device.type``)."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

import numpy as np

from sims.registry import Registry

EVENTS = ("finish", "rerecord", "stop")  # end the episode early and keep it / discard and redo it / end the session


@dataclass
class TeleopCommand:
    """One device reading: tool motion as fractions of the top speed, gripper command, operator events."""

    translation: np.ndarray = field(default_factory=lambda: np.zeros(3))  # [3] world frame, each in [-1, 1]
    rotation: np.ndarray = field(default_factory=lambda: np.zeros(3))  # [3] world-frame rotation rate, in [-1, 1]
    gripper: float = 1.0  # -1 closed .. 1 open (the simulator's gripper command)
    events: frozenset = frozenset()

    def __post_init__(self):
        self.translation = np.clip(np.asarray(self.translation, dtype=np.float64).reshape(3), -1.0, 1.0)
        self.rotation = np.clip(np.asarray(self.rotation, dtype=np.float64).reshape(3), -1.0, 1.0)
        self.gripper = float(np.clip(self.gripper, -1.0, 1.0))
        unknown = set(self.events) - set(EVENTS)
        if unknown:
            raise ValueError(f"unknown teleop events {sorted(unknown)}; known: {EVENTS}")
        if not (np.isfinite(self.translation).all() and np.isfinite(self.rotation).all()):
            raise ValueError("teleop command has NaN or inf; the device is sending garbage")


# device type <name>: a module in real_robot/teleop/ (found there by itself)
DEVICES = Registry("teleop device type", package="real_robot.teleop", key="device=<name> (teleop)")


def register_device(name: str):
    """Class decorator: make a device selectable by ``device.type: <name>``."""
    return DEVICES.register(name, attribute="device_type")


def make_device(config: dict) -> "TeleopDevice":
    """Build the device named by ``config['type']`` (default keyboard) with the other keys as arguments."""
    return DEVICES.build(config, default="keyboard")


class TeleopDevice(abc.ABC):
    """An input device: ``connect``, ``read(robot_obs) -> TeleopCommand``, ``disconnect``, usable with ``with``."""

    device_type = ""

    def __init__(self, speed: float = 1.0):
        if not 0.0 < speed <= 1.0:
            raise ValueError(f"speed must be in (0, 1] (a fraction of the controller's top speed), got {speed}")
        self.speed = speed
        self.gripper = 1.0  # devices with a toggle button keep the gripper state here
        self._connected = False

    def connect(self) -> None:
        """Open the device."""
        self._connect()
        self._connected = True

    def disconnect(self) -> None:
        """Close the device (safe to call twice)."""
        if self._connected:
            self._disconnect()
            self._connected = False

    def __enter__(self) -> "TeleopDevice":
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.disconnect()

    def read(self, robot_obs: dict | None = None) -> TeleopCommand:
        """The current command, translation and rotation scaled by ``speed``."""
        if not self._connected:
            raise RuntimeError(f"{self.device_type} device is not connected: call connect() first")
        command = self._read(robot_obs)
        command.translation = command.translation * self.speed
        command.rotation = command.rotation * self.speed
        return command

    def start_episode(self, robot=None) -> None:
        """Called when a recording phase starts (scripted devices re-plan here)."""

    def _connect(self) -> None:
        pass

    def _disconnect(self) -> None:
        pass

    @abc.abstractmethod
    def _read(self, robot_obs: dict | None) -> TeleopCommand: ...
