"""Structured config of ``embodied-deploy`` (zero overrides: the sim twin runs the policy ``make train`` wrote)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from real_robot.safety import SafetyLimits


@dataclass
class DeployConfig:
    """Which policy, which robot, how fast, how long, and whether to record."""

    policy_path: str = "runs/Reach_ppo/final_policy"
    controller: str = ""  # the action space the policy was trained in (env.controller); "": the one it saved
    robot: dict = field(default_factory=lambda: {"type": "sim_twin"})  # the configs/robot/ group fills it in
    control_hz: float = 20.0
    max_steps: int = 100  # per episode (timeout)
    episodes: int = 1
    reset_time_s: float = 10.0  # real robots: time for a person to reset the scene between episodes
    temporal_ensemble: Optional[float] = None  # ACT weight coefficient m; None = execute chunks from the queue
    instruction: str = ""  # empty: the sim twin's task instruction
    record: str = ""  # LeRobot dataset directory to append every episode to; empty: no recording
    safety: SafetyLimits = field(default_factory=SafetyLimits)  # the guard's limits, e.g. safety.watchdog_s=1.0
    stop_on_success: bool = True
    estop_keys: str = " q\x1b"  # keys that e-stop like Ctrl-C (space, q, Esc) when stdin is a terminal; "" = off


def validate_deploy(cfg: DeployConfig) -> None:
    """Raise ValueError naming the bad value and the fix."""
    if cfg.control_hz <= 0 or cfg.control_hz > 1000:
        raise ValueError(f"control_hz must be in (0, 1000], got {cfg.control_hz}")
    if cfg.max_steps < 1 or cfg.episodes < 1:
        raise ValueError(f"max_steps and episodes must be >= 1, got {cfg.max_steps} and {cfg.episodes}")
    if cfg.reset_time_s < 0:
        raise ValueError(f"reset_time_s must be >= 0, got {cfg.reset_time_s}")
    if cfg.temporal_ensemble is not None and cfg.temporal_ensemble < 0:
        raise ValueError(f"temporal_ensemble must be >= 0 (or null), got {cfg.temporal_ensemble}")
