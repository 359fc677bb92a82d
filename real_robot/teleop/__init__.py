"""Teleoperation input devices (keyboard, SpaceMouse, gamepad, scripted) behind one interface."""

from real_robot.teleop.device import EVENTS, TeleopCommand, TeleopDevice, make_device, register_device

__all__ = ["EVENTS", "TeleopCommand", "TeleopDevice", "make_device", "register_device"]
