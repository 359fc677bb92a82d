"""Structured config of ``embodied-teleop`` (zero overrides: record on the sim twin, keyboard if there is one)."""

from __future__ import annotations

from dataclasses import dataclass, field

from real_robot.safety import SafetyLimits


@dataclass
class TeleopConfig:
    """Which device drives which robot, how fast, how many episodes, and where they are written."""

    dataset: str = "datasets/teleop"  # LeRobot v3.0 dataset directory
    resume: bool = False  # append to an existing dataset (checks fps and features first); also --resume
    robot: dict = field(default_factory=lambda: {"type": "sim_twin"})  # configs/robot/ fills it in
    device: dict = field(default_factory=lambda: {"type": "auto"})  # auto: keyboard on a terminal, else scripted
    controller: str = "ee_delta_pos"  # the action space recorded as `action` (ee_delta_pos | ee_delta_pose)
    fps: float = 20.0  # control and recording rate (20: the sim tasks' control rate, so SFT can train on it)
    episodes: int = 5  # episodes to save in this session
    episode_time_s: float = 20.0  # longest recording phase; finish earlier with the device's finish key
    reset_time_s: float = 5.0  # real robots: time for a person to reset the scene (the sim twin resets itself)
    instructions: list = field(default_factory=list)  # cycled per episode; empty: the sim twin task's own
    prompt: bool = False  # ask for each episode's instruction in the terminal
    seed: int = 0  # sim twin scenes: episode i uses seed + i
    view: str = "auto"  # live view: window (OpenCV) | preview (PNG every preview_every_s) | none | auto
    preview_path: str = "runs/teleop/preview.png"
    preview_every_s: float = 1.0
    safety: SafetyLimits = field(default_factory=SafetyLimits)  # the guard's limits, e.g. safety.watchdog_s=1.0


def validate_teleop(cfg: TeleopConfig) -> None:
    """Raise ValueError naming the bad value and the fix."""
    if not 0 < cfg.fps <= 500:
        raise ValueError(f"fps must be in (0, 500], got {cfg.fps}")
    if cfg.episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {cfg.episodes}")
    if cfg.episode_time_s <= 0 or cfg.reset_time_s < 0:
        raise ValueError(f"episode_time_s must be > 0 and reset_time_s >= 0, got {cfg.episode_time_s} and "
                         f"{cfg.reset_time_s}")
    if cfg.controller not in ("ee_delta_pos", "ee_delta_pose"):
        raise ValueError(f"teleop devices command the end effector: controller must be ee_delta_pos or "
                         f"ee_delta_pose, got {cfg.controller!r}")
    if cfg.view not in ("auto", "window", "preview", "none"):
        raise ValueError(f"view must be auto, window, preview or none, got {cfg.view!r}")
    if not cfg.dataset:
        raise ValueError("dataset must name a directory, e.g. dataset=datasets/my_task")
