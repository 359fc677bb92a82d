"""Hardware adapter layer: robots and cameras behind one interface, and the always-on safety guard."""

from real_robot.robot import ROBOTS, Robot, make_robot, register_robot

__all__ = ["ROBOTS", "Robot", "make_robot", "register_robot"]
