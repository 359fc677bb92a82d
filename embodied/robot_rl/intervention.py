"""Human interventions during robot RL (HIL-SERL): a person at a teleop device takes over from the policy."""

from __future__ import annotations

from typing import Callable

import numpy as np

TakeoverRule = Callable[[int, dict], bool]  # (step of the episode, robot observation) -> the person has control


def after_step(first: int) -> TakeoverRule:
    """The stand-in person's rule: take over from step ``first`` of an episode until it ends (a policy that has
    not succeeded by then is shown the rest)."""
    if first < 0:
        raise ValueError(f"the takeover step must be >= 0, got {first}")
    return lambda step, robot_obs: step >= first


class Intervention:
    """A teleop ``device`` that replaces the policy's action while ``takes_over`` holds.

    Its command becomes an action in the end-effector controller's normalised space, so it passes the same mapper
    and safety guard as the policy's; the env flags those steps so the learner can treat them as demonstrations.
    """

    def __init__(self, device, controller: str, takes_over: TakeoverRule):
        if controller not in ("ee_delta_pos", "ee_delta_pose"):
            raise ValueError(f"interventions need an end-effector controller (ee_delta_pos or ee_delta_pose), got "
                             f"{controller!r}: a teleop device commands the tool, not the joints")
        self.device, self.takes_over = device, takes_over
        self.with_rotation = controller == "ee_delta_pose"
        self.in_control = False

    def start_episode(self) -> None:
        """A new episode starts with the policy in control."""
        self.in_control = False

    def action(self, robot, robot_obs: dict, step: int) -> np.ndarray | None:
        """The person's action [A] for this step, or None while the policy keeps control."""
        wants = bool(self.takes_over(step, robot_obs))
        if wants and not self.in_control:
            self.device.start_episode(robot)  # the person starts from the scene as it is now
        self.in_control = wants
        if not wants:
            return None
        command = self.device.read(robot_obs)
        parts = [command.translation] + ([command.rotation] if self.with_rotation else []) + [[command.gripper]]
        return np.concatenate(parts)
