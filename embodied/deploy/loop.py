"""The fixed-rate deployment loop: observe, infer (chunk queue or temporal ensembling), guard, send, record."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from embodied.deploy.rate import FixedRate, period_stats
from real_robot.errors import SafetyStop


@dataclass
class EpisodeReport:
    """How an episode ended, its loop timing and the safety interventions."""

    steps: int = 0
    outcome: str = ""  # success | timeout | nan_action | safety_stop: <reason>
    periods_ms: list = field(default_factory=list)
    interventions: dict = field(default_factory=dict)
    frames_recorded: int = 0

    def timing(self) -> dict:
        """p50/p99 loop period and jitter (p99 - p50), milliseconds."""
        return period_stats(self.periods_ms)


class DeployLoop:
    """Runs one policy on one guarded robot at ``control_hz``."""

    def __init__(self, policy, robot, guard, mapper, observe, control_hz: float, max_steps: int,
                 ensembler=None, recorder=None, instruction: str = ""):
        self.policy, self.robot, self.guard, self.mapper = policy, robot, guard, mapper
        self.observe = observe  # robot observation -> the policy's observation dict (batch of one)
        self.control_hz = control_hz
        self.max_steps = max_steps
        self.ensembler = ensembler
        self.recorder = recorder  # an EpisodeRecorder, or None
        self.instruction = instruction  # the task string recorded with every frame

    @torch.no_grad()
    def _policy_action(self, obs: dict) -> np.ndarray:
        if self.ensembler is None:
            return self.policy.select_action(obs)[0].numpy()  # the chunk queue refills when empty
        return self.ensembler(self.policy.deterministic_action(obs)[0].numpy())

    def run_episode(self, success=lambda: False) -> EpisodeReport:
        """Run until success, ``max_steps`` or a safety stop; the robot is held or stopped at the end."""
        report = EpisodeReport()
        self.policy.reset()
        if hasattr(self.observe, "reset"):
            self.observe.reset()  # velocities and the episode step counter start again
        if self.ensembler is not None:
            self.ensembler.reset()
        counters_before = dict(self.guard.counters)
        rate = FixedRate(self.control_hz)
        report.periods_ms = rate.periods_ms
        try:
            self.guard.engage()  # gripper force cap + watchdog
            gripper = None  # the opening last sent; the first step starts from the measured one
            while report.steps < self.max_steps:
                robot_obs = self.guard.observe()
                gripper = float(robot_obs["gripper"][0]) if gripper is None else gripper
                obs = self.observe(robot_obs)
                try:
                    action = self._policy_action(obs)
                except Exception as error:  # a broken policy must not leave the arm moving
                    self.guard.safe_stop(f"policy error: {type(error).__name__}: {error}", cause=error)
                if not np.isfinite(action).all():
                    self.guard.step(np.full(self.robot.num_joints + 1, np.nan), robot_obs)  # counted, holds
                    report.outcome = "nan_action: the policy produced a non-finite action; the robot holds"
                    break
                q = robot_obs["joint_positions"]
                sent = self.guard.step(self.mapper(action, q, gripper), robot_obs)
                gripper = float(sent[-1])
                if self.recorder is not None:
                    self.recorder.add(obs["state"][0].numpy(), robot_obs, self.mapper.sent_to_action(sent, q), sent,
                                      action, self.instruction)
                    report.frames_recorded += 1
                report.steps += 1
                if success():
                    report.outcome = "success"
                    break
                rate.wait()
            else:
                report.outcome = "timeout"
        except SafetyStop as stop:
            report.outcome = f"safety_stop: {stop}"
        finally:
            self.guard.disengage()
            report.interventions = {k: v - counters_before.get(k, 0) for k, v in self.guard.counters.items()}
        return report
