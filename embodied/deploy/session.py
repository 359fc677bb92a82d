"""Assemble a deployment session from its config: policy, robot, safety guard, mappings, recorder."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time

from embodied.deploy.config import DeployConfig, validate_deploy
from embodied.deploy.loop import DeployLoop, EpisodeReport
from embodied.deploy.mapping import (ActionMapper, ObservationBuilder, TemporalEnsembler, refuse_mismatch,
                                     robot_kinematics)
from embodied.deploy.recorder import EpisodeRecorder
from policies import from_pretrained
from real_robot import make_robot
from real_robot.robot import IMAGE_PREFIX
from real_robot.estop import KeyEStop
from real_robot.safety import SafetyGuard, as_limits
from sims.mujoco.kinematics import ArmKinematics

log = logging.getLogger("embodied.deploy")


def make_observer(robot, control_hz: float, cameras: list[str], instruction: str, kinematics: ArmKinematics):
    """Robot observation -> the policy's observation: the sim twin's own (exactly what training saw), otherwise
    built from joint readings and cameras."""
    if robot.robot_type == "sim_twin":
        return lambda robot_obs: robot.policy_observation()
    return ObservationBuilder(1.0 / control_hz, cameras, instruction, kinematics)


def robot_cameras(robot) -> list[str]:
    """The cameras ``robot`` declares (its ``images.<name>`` observation features)."""
    return [key[len(IMAGE_PREFIX):] for key in robot.observation_features if key.startswith(IMAGE_PREFIX)]


def refuse_unfed_policy(policy, robot) -> None:
    """ValueError when ``policy`` reads cameras ``robot`` lacks; called before connecting, so the arm never moves on
    a policy it cannot feed."""
    has = robot_cameras(robot)
    missing = [camera for camera in getattr(policy, "cameras", []) if camera not in has]
    if missing:
        raise ValueError(f"the policy reads cameras {missing} that this {robot.robot_type} robot does not have (it has "
                         f"{has}): add them, e.g. robot.cameras=[{','.join(missing)}] on the sim twin")


def build_session(cfg: DeployConfig):
    """(robot, guard, loop, recorder, success callable) for ``cfg``; the robot is connected."""
    validate_deploy(cfg)
    if not os.path.isdir(cfg.policy_path):
        raise FileNotFoundError(f"policy_path {cfg.policy_path!r} does not exist: train one first (make train writes "
                                "runs/Reach_ppo/final_policy) or pass policy_path=<save_pretrained dir>")
    policy = from_pretrained(cfg.policy_path).eval()
    robot = make_robot(dict(cfg.robot))
    limits = as_limits(cfg.safety)
    trained = policy.config.get("trained_with") or {}
    controller = cfg.controller or trained.get("controller", "ee_delta_pos")  # default: the policy's own
    kinematics = robot_kinematics(robot)
    guard = SafetyGuard(robot, limits, control_dt=1.0 / cfg.control_hz, forward_kinematics=kinematics.tool_position)
    mapper = ActionMapper(controller, kinematics)
    refuse_mismatch(policy, controller, mapper, robot)  # before connecting: nothing moves on a policy that does not fit
    if trained.get("control_hz", cfg.control_hz) != cfg.control_hz:
        log.warning("the policy was trained at %.0f Hz and runs at control_hz=%.0f: each action lasts %.2fx as long "
                    "as in training", trained["control_hz"], cfg.control_hz, trained["control_hz"] / cfg.control_hz)
    refuse_unfed_policy(policy, robot)
    robot.connect()
    is_twin = robot.robot_type == "sim_twin"
    instruction = cfg.instruction or (robot.policy_observation()["instruction"][0] if is_twin else "")
    observe = make_observer(robot, cfg.control_hz, list(getattr(policy, "cameras", [])), instruction, kinematics)
    recorder = EpisodeRecorder(cfg.record, cfg.control_hz, f"embodied_deploy_{robot.arm.name}") if cfg.record else None
    ensembler = TemporalEnsembler(cfg.temporal_ensemble) if cfg.temporal_ensemble is not None else None
    loop = DeployLoop(policy, robot, guard, mapper, observe, cfg.control_hz, cfg.max_steps, ensembler, recorder,
                      instruction)
    success = (lambda: robot.task_success) if is_twin and cfg.stop_on_success else (lambda: False)
    return robot, guard, loop, recorder, success


def key_estop(cfg: DeployConfig, guard: SafetyGuard, key_fd: int | None):
    """A key e-stop on ``key_fd`` (default: stdin when it is a terminal), or a no-op context."""
    if key_fd is None and sys.stdin is not None and sys.stdin.isatty():
        key_fd = sys.stdin.fileno()
    if not cfg.estop_keys or key_fd is None:
        return contextlib.nullcontext()
    return KeyEStop(guard.request_stop, cfg.estop_keys, fd=key_fd)


def reset_scene(cfg: DeployConfig, robot, episode: int) -> None:
    """Between episodes: the sim twin draws a new scene; on a real arm the robot holds while a person resets
    the scene for ``cfg.reset_time_s`` seconds."""
    if robot.reset_scene(cfg.robot.get("seed", 0) + episode):
        return
    print(f"episode {episode}: reset the scene; the robot holds for {cfg.reset_time_s:g} s", flush=True)
    robot.hold()
    time.sleep(cfg.reset_time_s)


def run_deployment(cfg: DeployConfig, key_fd: int | None = None) -> list[EpisodeReport]:
    """Run ``cfg.episodes`` episodes; stops early on a safety stop. Recorded frames are saved after each episode.

    Ctrl-C and the ``cfg.estop_keys`` (read from ``key_fd``, default the terminal) are e-stops.
    """
    robot, guard, loop, recorder, success = build_session(cfg)
    guard.install_sigint()
    reports = []
    try:
        with key_estop(cfg, guard, key_fd):
            _run_episodes(cfg, robot, loop, recorder, success, reports)
    finally:
        guard.restore_sigint()
        robot.disconnect()
    return reports


def _run_episodes(cfg, robot, loop, recorder, success, reports) -> None:
    for episode in range(cfg.episodes):
        if episode > 0:
            reset_scene(cfg, robot, episode)
        report = loop.run_episode(success)
        if recorder is not None:
            recorder.end_episode()
        reports.append(report)
        if report.outcome.startswith(("safety_stop", "nan_action")):
            break
