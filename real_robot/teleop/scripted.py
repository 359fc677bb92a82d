"""A scripted teleop device for tests and automated sim data: replays a command file, or runs the task's
scripted expert on the sim twin (so "teleoperated" demos can be recorded unattended)."""

from __future__ import annotations

import os

import numpy as np

from real_robot.teleop.device import TeleopCommand, TeleopDevice, register_device


def load_commands(path: str) -> np.ndarray:
    """Commands [T, 4] (dx, dy, dz, gripper) or [T, 7] (dx, dy, dz, droll, dpitch, dyaw, gripper) from .npy/.csv."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"scripted device: command file {path!r} does not exist")
    if path.endswith(".npy"):
        commands = np.load(path, allow_pickle=False)
    elif path.endswith(".csv"):
        commands = np.loadtxt(path, delimiter=",", ndmin=2)
    else:
        raise ValueError(f"scripted device: {path!r} must be a .npy or .csv file of commands")
    commands = np.asarray(commands, dtype=np.float64)
    if commands.ndim != 2 or commands.shape[1] not in (4, 7) or len(commands) == 0:
        raise ValueError(f"scripted device: {path!r} holds shape {commands.shape}; expected [T, 4] or [T, 7]")
    if not np.isfinite(commands).all():
        raise ValueError(f"scripted device: {path!r} contains NaN or inf")
    return commands


@register_device("scripted")
class ScriptedDevice(TeleopDevice):
    """``path``: replay a command file (finishes the episode when it ends); empty: the sim twin's expert,
    which finishes the episode ``settle_steps`` after the task succeeds."""

    def __init__(self, speed: float = 1.0, path: str = "", settle_steps: int = 5):
        super().__init__(speed)
        self.commands = load_commands(path) if path else None
        self.settle_steps = settle_steps
        self.expert = self.robot = None
        self.step = 0
        self._successes = 0

    def start_episode(self, robot=None) -> None:
        """Rewind the file, or plan the expert on the twin's freshly reset scene."""
        self.step, self._successes = 0, 0
        if self.commands is None:
            if robot is None or not hasattr(robot, "env"):
                raise ValueError("the scripted expert device needs the sim twin robot (robot.type=sim_twin); "
                                 "for a real robot pass device.path=<commands.npy> to replay a file")
            from sims.experts import WaypointExpert
            from sims.mujoco.controllers import make_controller

            self.robot = robot
            self.expert = WaypointExpert(robot.env, controller=make_controller("ee_delta_pos"))

    def _read(self, robot_obs) -> TeleopCommand:
        self.step += 1
        if self.commands is not None:
            row = self.commands[min(self.step - 1, len(self.commands) - 1)]
            done = self.step >= len(self.commands)
            rotation = row[3:6] if len(row) == 7 else np.zeros(3)
            return TeleopCommand(translation=row[:3], rotation=rotation, gripper=row[-1],
                                 events=frozenset({"finish"}) if done else frozenset())
        if self.expert is None:
            raise RuntimeError("call start_episode(robot) before reading the scripted expert")
        action = self.expert.act()[0].numpy().astype(np.float64)
        self._successes = self._successes + 1 if self.robot.task_success else 0
        done = self._successes > self.settle_steps
        return TeleopCommand(translation=action[:3], gripper=action[-1],
                             events=frozenset({"finish"}) if done else frozenset())
