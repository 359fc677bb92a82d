"""The teleoperation episode loop: reset phase, record phase at a fixed rate through the safety guard, save.

Every frame records the action actually sent (after the guard's clamps), expressed in the controller's action
space. Episodes are durable once saved (the dataset writer commits atomically), so a crash or ``kill -9``
loses only the episode being recorded. Videos are encoded when an episode is saved, between episodes, never
inside the control loop.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from embodied.deploy.mapping import ActionMapper, robot_kinematics
from embodied.deploy.rate import FixedRate, period_stats
from embodied.deploy.recorder import EpisodeRecorder, robot_features
from embodied.deploy.session import make_observer
from embodied.teleop.config import TeleopConfig, validate_teleop
from embodied.teleop.view import LiveView
from real_robot import make_robot
from real_robot.errors import SafetyStop
from real_robot.robot import camera_images
from real_robot.safety import SafetyGuard, as_limits
from real_robot.teleop import TeleopCommand, make_device

log = logging.getLogger("embodied.teleop")


@dataclass
class EpisodeSummary:
    """One recording phase: how it ended, what was kept, and its loop timing."""

    index: int | None  # dataset episode index, None when discarded
    outcome: str  # finish | timeout | rerecord | stop | safety_stop: <reason>
    frames: int
    instruction: str
    periods_ms: list = field(default_factory=list)
    save_seconds: float = 0.0  # encoding and committing, done after the loop

    def timing(self) -> dict:
        """p50/p99 loop period and jitter (ms)."""
        return period_stats(self.periods_ms)


def resolve_device(config: dict) -> dict:
    """``type: auto`` -> the keyboard when stdin is a terminal, else the scripted expert (unattended sim data)."""
    config = dict(config)
    if config.get("type", "auto") == "auto":
        interactive = sys.stdin is not None and sys.stdin.isatty()
        config["type"] = "keyboard" if interactive else "scripted"
        log.warning("device=auto: using the %s device%s", config["type"],
                    "" if interactive else " (stdin is not a terminal; pass device=keyboard to insist)")
    return config


class TeleopSession:
    """Owns the robot, guard, device, recorder and view of one ``embodied-teleop`` run."""

    def __init__(self, cfg: TeleopConfig, stream=None):
        validate_teleop(cfg)
        self.cfg = cfg
        robot_config = dict(cfg.robot)
        if robot_config.get("type", "sim_twin") == "sim_twin":
            robot_config.setdefault("control_hz", cfg.fps)  # each command advances the twin by one frame period
        self.robot = make_robot(robot_config)
        kinematics = robot_kinematics(self.robot)
        self.mapper = ActionMapper(cfg.controller, kinematics)
        self.guard = SafetyGuard(self.robot, as_limits(cfg.safety), control_dt=1.0 / cfg.fps,
                                 forward_kinematics=kinematics.tool_position)
        self.device = make_device(resolve_device(cfg.device))
        self.recorder = EpisodeRecorder(cfg.dataset, cfg.fps, f"embodied_teleop_{self.robot.robot_type}_{self.robot.arm.name}",
                                        append=cfg.resume)
        if cfg.resume and not self.recorder.exists:
            raise FileNotFoundError(f"resume=true but {cfg.dataset} holds no dataset: drop --resume to create it")
        self.view = LiveView(cfg.view, cfg.preview_path, cfg.preview_every_s, stream)
        self.kinematics = kinematics
        self.observe = None

    # ------------------------------------------------------------------------------------------- run
    def run(self) -> list[EpisodeSummary]:
        """Record until ``cfg.episodes`` are saved, the operator stops, or the guard stops the robot."""
        summaries: list[EpisodeSummary] = []
        self.robot.connect()
        self.guard.install_sigint()  # Ctrl-C: e-stop, the episode so far is saved
        try:
            self.device.connect()
            first = self.robot.get_observation()
            self.observe = make_observer(self.robot, self.cfg.fps, [], "", self.kinematics)
            state = self._state(first)
            images = {key: image.shape for key, image in camera_images(first).items()}
            action_dim = self.mapper.controller.action_spec.dim
            self.recorder.open(robot_features(len(state), images, action_dim, self.robot.num_joints))
            saved = 0
            while saved < self.cfg.episodes:
                if not self._reset_phase(self.recorder.writer.num_episodes):
                    break
                instruction = self._instruction(saved)
                summary = self._record_phase(instruction)
                if summary.outcome == "rerecord":
                    self.recorder.discard_episode()
                    self.view.end_line(f"episode discarded ({summary.frames} frames): re-recording")
                else:
                    start = time.perf_counter()
                    summary.index = self.recorder.end_episode()
                    summary.save_seconds = time.perf_counter() - start
                    saved += summary.index is not None
                    self.view.end_line(f"episode {summary.index} saved: {summary.frames} frames, {summary.outcome}")
                summaries.append(summary)
                if summary.outcome == "stop" or summary.outcome.startswith("safety_stop"):
                    break
        finally:
            self.guard.restore_sigint()
            self.device.disconnect()
            self.view.close()
            self.robot.disconnect()
        return summaries

    # ----------------------------------------------------------------------------------------- phases
    def _instruction(self, episode: int) -> str:
        cfg = self.cfg
        default = (cfg.instructions[episode % len(cfg.instructions)] if cfg.instructions else
                   self.robot.policy_observation()["instruction"][0] if self.robot.robot_type == "sim_twin" else "")
        if cfg.prompt and sys.stdin is not None and sys.stdin.isatty():
            self.device.disconnect()  # give the terminal back for a line of input
            answer = input(f"\ninstruction for episode {episode} [{default}]: ").strip()
            self.device.connect()
            return answer or default
        if not default:
            raise ValueError("no instruction: pass instructions='[\"pick up the red cube\"]' or prompt=true")
        return default

    def _reset_phase(self, episode: int) -> bool:
        """Reset the scene (the sim twin does it; a person resets a real one within ``reset_time_s``).
        False when the operator stopped the session."""
        if self.robot.reset_scene(self.cfg.seed + episode):
            return True
        deadline = time.monotonic() + self.cfg.reset_time_s
        while time.monotonic() < deadline:
            events = self.device.read(self.robot.get_observation()).events
            if "stop" in events:
                return False
            if "finish" in events:  # the operator is ready early
                return True
            self.view.status(f"reset the scene: recording episode {episode} in {deadline - time.monotonic():.1f} s "
                             "(finish key: start now)")
            time.sleep(0.05)
        return True

    def _record_phase(self, instruction: str) -> EpisodeSummary:
        cfg = self.cfg
        summary = EpisodeSummary(index=None, outcome="timeout", frames=0, instruction=instruction)
        if hasattr(self.observe, "reset"):
            self.observe.reset()
        self.device.start_episode(self.robot)
        rate = FixedRate(cfg.fps)
        summary.periods_ms = rate.periods_ms
        start = time.perf_counter()
        try:
            self.guard.engage()
            while time.perf_counter() - start < cfg.episode_time_s:
                robot_obs = self.guard.observe()
                command = self.device.read(robot_obs)
                if command.events & {"rerecord", "stop"}:
                    summary.outcome = "rerecord" if "rerecord" in command.events else "stop"
                    break
                self._step(robot_obs, command, instruction)
                summary.frames += 1
                elapsed = time.perf_counter() - start
                self.view.status(f"episode {self.recorder.writer.num_episodes} | {elapsed:5.1f}/{cfg.episode_time_s:.0f}"
                                 f" s | {summary.frames} frames | {summary.frames / max(elapsed, 1e-9):5.1f} fps | "
                                 f"{instruction}")
                self.view.show(camera_images(robot_obs))
                if "finish" in command.events:
                    summary.outcome = "finish"
                    break
                rate.wait()
        except SafetyStop as stop:
            summary.outcome = f"safety_stop: {stop}"
        finally:
            self.guard.disengage()
        return summary

    def _state(self, robot_obs: dict) -> np.ndarray:
        return self.observe(robot_obs)["state"][0].numpy()

    def _step(self, robot_obs: dict, command: TeleopCommand, instruction: str) -> None:
        """Device command -> joint targets -> guard -> robot; record what was actually sent."""
        parts = [command.translation] + ([command.rotation] if self.cfg.controller == "ee_delta_pose" else [])
        asked = np.concatenate(parts + [[command.gripper]])
        q = robot_obs["joint_positions"]
        state = self._state(robot_obs)  # before the command moves the arm
        sent = self.guard.step(self.mapper(asked, q), robot_obs)
        self.recorder.add(state, robot_obs, self.mapper.sent_to_action(sent, q), sent, asked, instruction)
