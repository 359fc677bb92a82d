"""The safety guard between a policy and a robot: always on, counts and logs every intervention.

Per command: reject NaN/inf (hold instead), clamp joint targets to the configured limits, limit the change per
step to the smaller of ``max_relative_target`` and ``max_joint_velocity * dt`` (and per joint to the arm model's
own velocity limit x dt), reject targets whose tool
position leaves the workspace box (hold instead), limit the gripper's change per step, and never close the
gripper further while its measured force is at ``max_gripper_force``. ``engage()`` caps the gripper's force in
the driver (where the SDK takes a limit) and starts the watchdog, which holds position when no command arrives
within ``watchdog_s``. An e-stop (SIGINT, a key via ``real_robot.estop``, or ``request_stop``) or an SDK error
ends in ``safe_stop``: hold, disconnect, raise ``SafetyStop`` with the reason.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
from dataclasses import dataclass, fields
from typing import Callable

import numpy as np

from real_robot.errors import SafetyStop
from sims.mujoco.arm_model import FINGER_MAX_FORCE
from sims.mujoco.controllers import MAX_GRIPPER_STEP, MAX_JOINT_VELOCITY

log = logging.getLogger("real_robot.safety")


@dataclass
class SafetyLimits:
    """Limits enforced by the guard (radians, metres, seconds); refused at construction unless they are safe:
    every limit positive and finite (the joint margin may be 0), gripper step at most 1, workspace low < high."""

    max_relative_target: float = 0.1  # rad: largest joint change per command
    # the next three are the simulator's own limits, so a policy trained there is not slowed down once deployed
    max_joint_velocity: float = MAX_JOINT_VELOCITY  # rad/s (1.5)
    max_gripper_step: float = MAX_GRIPPER_STEP  # largest gripper opening change per command (opening in [0, 1]; 0.5)
    max_gripper_force: float = FINGER_MAX_FORCE  # newtons (20): capped in the driver, no further closing once reached
    workspace_low: tuple = (-0.45, -0.4, 0.005)  # m: tool-centre box, world frame
    workspace_high: tuple = (0.35, 0.4, 0.6)  # m
    watchdog_s: float = 0.5  # s: hold when no fresh command arrives within this time
    joint_margin: float = 0.02  # rad: stay this far inside the robot's joint limits

    def __post_init__(self):
        for key in ("max_relative_target", "max_joint_velocity", "max_gripper_step", "max_gripper_force",
                    "watchdog_s"):
            value = getattr(self, key)
            if not _finite_number(value) or value <= 0:
                raise ValueError(f"safety.{key} must be a finite number > 0 (default {getattr(SafetyLimits, key)}), "
                                 f"got {value!r}: the guard cannot limit the arm with it")
        if self.max_gripper_step > 1:
            raise ValueError(f"safety.max_gripper_step must be <= 1 (the opening runs from 0 to 1), "
                             f"got {self.max_gripper_step}")
        if not _finite_number(self.joint_margin) or not 0 <= self.joint_margin < 0.5:
            raise ValueError(f"safety.joint_margin must be in [0, 0.5) rad, got {self.joint_margin!r}")
        low, high = (_point(self, key) for key in ("workspace_low", "workspace_high"))
        if not (low < high).all():
            raise ValueError(f"safety.workspace_low must be below safety.workspace_high on every axis, got "
                             f"low {low.tolist()} and high {high.tolist()}")
        self.workspace_low, self.workspace_high = tuple(low.tolist()), tuple(high.tolist())


def joint_step_limit(limits: SafetyLimits, control_dt: float, joints: int, arm=None) -> np.ndarray:
    """The largest change per command of each joint [J] (rad): the smaller of ``max_relative_target`` and
    ``max_joint_velocity * control_dt``, and never faster than the arm model's own velocity limits, whatever the
    config says."""
    step = np.full(joints, min(limits.max_relative_target, limits.max_joint_velocity * control_dt))
    if arm is not None:
        step = np.minimum(step, np.asarray(arm.velocity_limits) * control_dt)
    return step


def _finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _point(limits: SafetyLimits, key: str) -> np.ndarray:
    """``limits.<key>`` as three finite metres (x, y, z), or ValueError naming the key."""
    value = getattr(limits, key)
    try:
        point = np.asarray(list(value), dtype=np.float64)
    except (TypeError, ValueError):
        point = np.empty(0)
    if point.shape != (3,) or not np.isfinite(point).all():
        raise ValueError(f"safety.{key} must be three finite numbers [x, y, z] in metres, got {value!r}")
    return point


def as_limits(value) -> SafetyLimits:
    """``SafetyLimits`` from a config section: the dataclass itself, or a dict of the fields to change (unknown
    keys are refused with the valid ones)."""
    if isinstance(value, SafetyLimits):
        return value
    valid = [f.name for f in fields(SafetyLimits)]
    unknown = sorted(set(dict(value)) - set(valid))
    if unknown:
        raise ValueError(f"unknown safety keys {unknown}: the guard's limits are {valid}")
    return SafetyLimits(**dict(value))


class SafetyGuard:
    """Wraps a connected ``Robot``; ``step(action)`` sends a checked action and returns what was sent."""

    def __init__(self, robot, limits: SafetyLimits, control_dt: float,
                 forward_kinematics: Callable[[np.ndarray], np.ndarray] | None = None):
        self.robot = robot
        self.limits = limits
        self.control_dt = control_dt
        self.forward_kinematics = forward_kinematics
        self.counters = {k: 0 for k in ("nan_rejected", "joint_clamped", "step_limited", "workspace_rejected",
                                        "gripper_limited", "gripper_force_limited",
                                        "watchdog_holds", "estop", "sdk_errors")}
        self._lock = threading.Lock()
        self._last_command = time.monotonic()
        self._stop_reason: str | None = None
        self._watchdog: threading.Thread | None = None
        self._watchdog_stop = threading.Event()
        self._previous_sigint = None
        self.gripper_force_cap: float | None = None  # what the driver applied; None: its SDK takes no limit
        self._last_gripper_command: float | None = None  # the gripper's rate limit and force rule start here
        self._warned: set[str] = set()  # interventions already logged at WARNING this episode

    # ----------------------------------------------------------------------------------------- counting
    def _intervene(self, kind: str, message: str) -> None:
        """Count an intervention; the first of each kind per episode is a warning, repeats are debug lines."""
        self.counters[kind] += 1
        level = logging.DEBUG if kind in self._warned else logging.WARNING
        self._warned.add(kind)
        log.log(level, "safety: %s (%s)", message, kind)

    # -------------------------------------------------------------------------------------------- step
    def observe(self) -> dict:
        """``robot.get_observation()``; a failing robot or camera ends in ``safe_stop``."""
        if self._stop_reason is not None:
            self.safe_stop(self._stop_reason)
        try:
            with self._lock:
                return self.robot.get_observation()
        except Exception as error:  # lost connection, camera without frames
            self._robot_failed(error)

    def step(self, action: np.ndarray, current: dict | None = None) -> np.ndarray:
        """Check, clamp and send one command [n + 1]; returns the action actually sent.

        ``current`` is this step's robot observation when the caller already has it (saves a camera read).
        """
        if self._stop_reason is not None:
            self.safe_stop(self._stop_reason)
        action = np.asarray(action, dtype=np.float64)
        try:
            with self._lock:
                self._last_command = time.monotonic()
                current = current if current is not None else self.robot.get_observation()
                safe = self._check(action, current["joint_positions"], float(current["gripper"][0]),
                                   current.get("gripper_force"))
                if safe is None:
                    self.robot.hold()
                    return np.concatenate([current["joint_positions"], current["gripper"]])
                return self.robot.send_action(safe)
        except SafetyStop:
            raise
        except Exception as error:  # SDK exception or lost connection: stop safely, keep the cause
            self._robot_failed(error)

    def _check(self, action: np.ndarray, q: np.ndarray, gripper: float, gripper_force=None) -> np.ndarray | None:
        n = len(q)
        if action.shape != (n + 1,) or not np.isfinite(action).all():
            self._intervene("nan_rejected", f"rejected non-finite or mis-shaped action {action}")
            return None
        lim = self.limits
        low, high = self.robot.joint_low + lim.joint_margin, self.robot.joint_high - lim.joint_margin
        target = np.clip(action[:n], low, high)
        if not np.allclose(target, action[:n]):
            self._intervene("joint_clamped", "joint target clamped to the joint limits")
        max_step = joint_step_limit(lim, self.control_dt, n, getattr(self.robot, "arm", None))  # [J]
        limited = q + np.clip(target - q, -max_step, max_step)
        if not np.allclose(limited, target):
            self._intervene("step_limited", f"joint change limited to {max_step.min():.3f} rad per step "
                                            f"(asked {np.abs(target - q).max():.3f})")
        if self.forward_kinematics is not None:
            tool = self.forward_kinematics(limited)
            if (tool < np.asarray(lim.workspace_low)).any() or (tool > np.asarray(lim.workspace_high)).any():
                self._intervene("workspace_rejected", f"target tool position {np.round(tool, 3)} leaves the workspace")
                return None
        grip = float(np.clip(action[n], 0.0, 1.0))
        base = gripper if self._last_gripper_command is None else self._last_gripper_command  # what was commanded
        grip_limited = base + float(np.clip(grip - base, -lim.max_gripper_step, lim.max_gripper_step))
        if abs(grip_limited - grip) > 1e-9:
            self._intervene("gripper_limited", "gripper change limited")
        squeezing_at_limit = gripper_force is not None and float(gripper_force[0]) >= 0.95 * lim.max_gripper_force
        if squeezing_at_limit and grip_limited < base:
            self._intervene("gripper_force_limited", f"gripper force {float(gripper_force[0]):.1f} N at the "
                                                     f"{lim.max_gripper_force} N limit: not closing further")
            grip_limited = base
        self._last_gripper_command = grip_limited
        return np.concatenate([limited, [grip_limited]])

    def engage(self) -> None:
        """Before an episode: cap the gripper force in the driver and start the watchdog."""
        self._last_gripper_command = None
        self._warned.clear()
        try:
            self.gripper_force_cap = self.robot.limit_gripper_force(self.limits.max_gripper_force)
        except Exception as error:  # an SDK that refuses the limit must not leave an uncapped gripper running
            self._robot_failed(error)
        if self.gripper_force_cap is None:
            log.warning("safety: %s cannot cap its gripper force in the driver; relying on the per-step limit "
                        "(needs measured force) and the gripper's own current limit", self.robot.robot_type)
        self.start_watchdog()

    def disengage(self) -> None:
        """After an episode (however it ended): stop the watchdog and hold the robot if it is still connected."""
        self.stop_watchdog()
        if self.robot.is_connected:
            self.robot.hold()

    # ------------------------------------------------------------------------------------ stop paths
    def _robot_failed(self, error: Exception) -> None:
        """Count a robot/SDK/camera error and end in ``safe_stop`` naming it."""
        self.counters["sdk_errors"] += 1
        self.safe_stop(f"robot error: {type(error).__name__}: {error}", cause=error)

    @property
    def stop_reason(self) -> str | None:
        """Why a stop was requested (Ctrl-C, a key, the caller), or None."""
        return self._stop_reason

    def request_stop(self, reason: str = "operator e-stop") -> None:
        """Ask the loop to stop at its next command (thread- and signal-safe)."""
        self._stop_reason = reason

    def safe_stop(self, reason: str, cause: Exception | None = None) -> None:
        """Hold, disconnect, and raise SafetyStop(reason)."""
        if "e-stop" in reason:
            self.counters["estop"] += 1
        log.error("safety stop: %s", reason)
        self.stop_watchdog()
        try:
            self.robot.hold()
        except Exception as error:  # noqa: BLE001 - the robot may be gone; disconnecting is what is left
            log.error("hold failed during safe stop: %s", error)
        try:
            self.robot.disconnect()
        except Exception as error:  # noqa: BLE001
            log.error("disconnect failed during safe stop: %s", error)
        raise SafetyStop(reason) from cause

    def install_sigint(self) -> None:
        """Ctrl-C becomes an e-stop: the loop holds, disconnects and exits cleanly."""
        self._previous_sigint = signal.signal(signal.SIGINT, lambda *_: self.request_stop("operator e-stop (SIGINT)"))

    def restore_sigint(self) -> None:
        if self._previous_sigint is not None:
            signal.signal(signal.SIGINT, self._previous_sigint)
            self._previous_sigint = None

    # -------------------------------------------------------------------------------------- watchdog
    def start_watchdog(self) -> None:
        """Hold position whenever no command arrived within ``limits.watchdog_s``."""
        self._watchdog_stop.clear()
        self._last_command = time.monotonic()
        self._watchdog = threading.Thread(target=self._watch, name="safety-watchdog", daemon=True)
        self._watchdog.start()

    def stop_watchdog(self) -> None:
        self._watchdog_stop.set()
        if self._watchdog is not None and self._watchdog is not threading.current_thread():
            self._watchdog.join(timeout=1.0)
        self._watchdog = None

    def _watch(self) -> None:
        period = self.limits.watchdog_s / 4
        while not self._watchdog_stop.wait(period):
            if time.monotonic() - self._last_command > self.limits.watchdog_s:
                with self._lock:
                    if time.monotonic() - self._last_command > self.limits.watchdog_s:
                        self._intervene("watchdog_holds", f"no command for {self.limits.watchdog_s} s: holding")
                        try:
                            self.robot.hold()
                        except Exception as error:  # noqa: BLE001
                            self.request_stop(f"hold failed in watchdog: {error}")
                        self._last_command = time.monotonic()
