"""The ``Robot`` interface (LeRobot style): features declared before connecting, guarded state, clamped actions.

Actions are absolute joint position targets (rad) followed by one gripper opening in [0 (closed), 1 (open)];
observations hold ``joint_positions`` [n], ``gripper`` [1], ``gripper_force`` [1] (newtons, only for robots
that measure it) and one uint8 image [H, W, 3] per camera.
"""

from __future__ import annotations

import abc
import importlib

import numpy as np

from real_robot.camera import Camera, make_camera
from real_robot.errors import DeviceAlreadyConnectedError, DeviceNotConnectedError
from sims.arms import ArmModel, get_arm
from sims.registry import Registry

# robot type <name>: a driver module in real_robot/drivers/ (found there by itself), or the sim twin
ROBOTS = Registry("robot type", package="real_robot.drivers", lazy={"sim_twin": "real_robot.sim_twin"},
                  key="robot=<config> or robot.type (deploy, teleop)")


def register_robot(name: str):
    """Class decorator: make a robot selectable by ``robot.type: <name>`` in config."""
    return ROBOTS.register(name, attribute="robot_type")


def make_robot(config: dict) -> "Robot":
    """Build the robot named by ``config['type']`` (default sim_twin) with the remaining keys as arguments."""
    return ROBOTS.build(config, default="sim_twin")


def available_robots() -> list[str]:
    """Every robot type: the sim twin and one per module in real_robot/drivers/."""
    return ROBOTS.names()


IMAGE_PREFIX = "images."  # observation key of camera <name>: images.<name>


def camera_images(observation: dict) -> dict:
    """The camera frames of a robot observation, keyed ``images.<camera>``."""
    return {key: value for key, value in observation.items() if key.startswith(IMAGE_PREFIX)}


def require_sdk(module: str, extra: str = "real"):
    """Import an SDK lazily; when missing, say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(f"this robot needs the Python module {module!r}: pip install 'embodied-vla[{extra}]'") \
            from error


class Robot(abc.ABC):
    """A robot arm with a gripper and cameras. Subclasses implement the ``_``-prefixed methods."""

    robot_type = ""
    measures_gripper_force = False  # True: observations carry ``gripper_force`` [1] in newtons

    def __init__(self, arm: ArmModel | str, cameras: dict | None = None):
        """``arm``: the ``sims.arms`` model of this robot (its joint limits, and the kinematics of end-effector
        control, the guard's workspace check and the policy's proprioception)."""
        self.arm = get_arm(arm) if isinstance(arm, str) else arm
        self.cameras = {name: camera if isinstance(camera, Camera) else make_camera(dict(camera))
                        for name, camera in (cameras or {}).items()}
        self._connected = False

    # ---------------------------------------------------------------------------------------- features
    @property
    def joint_low(self) -> np.ndarray:
        """Lower joint position limits [J] in radians, the arm model's."""
        return self.arm.joint_low

    @property
    def joint_high(self) -> np.ndarray:
        """Upper joint position limits [J] in radians, the arm model's."""
        return self.arm.joint_high

    @property
    def num_joints(self) -> int:
        return len(self.joint_low)

    @property
    def action_features(self) -> dict:
        """Name -> shape of what ``send_action`` takes, known before connecting. One flat layout everywhere (guard,
        deployment, teleop, recordings): an action is these features concatenated in this order, [J + 1]."""
        return {"joint_positions": (self.num_joints,), "gripper": (1,)}

    @property
    def observation_features(self) -> dict:
        """Name -> shape of what ``get_observation`` returns, known before connecting."""
        features = {"joint_positions": (self.num_joints,), "gripper": (1,)}
        if self.measures_gripper_force:
            features["gripper_force"] = (1,)
        for name, camera in self.cameras.items():
            features[f"{IMAGE_PREFIX}{name}"] = (camera.height, camera.width, 3)
        return features

    # -------------------------------------------------------------------------------------- lifecycle
    @property
    def is_connected(self) -> bool:
        return self._connected

    def connect(self) -> None:
        """Open the SDK connection and the cameras."""
        if self._connected:
            raise DeviceAlreadyConnectedError(f"{self.robot_type} robot is already connected")
        try:
            self._connect()
        except (ImportError, ValueError, KeyError):  # a missing SDK or a bad setting: its own message says the fix
            raise
        except Exception as error:  # the SDK's own failure (socket closed, refused, timed out): one clear line
            where = f" at {self.host}" if getattr(self, "host", None) else ""
            raise ConnectionError(f"could not connect to the {self.robot_type} robot{where} ({type(error).__name__}: "
                                  f"{error}): check robot.host, the network and that the robot accepts remote "
                                  "control") from error
        for camera in self.cameras.values():
            camera.connect()
        self._connected = True

    def disconnect(self) -> None:
        """Stop motion and close everything (safe to call twice)."""
        if not self._connected:
            return
        try:
            self._disconnect()
        finally:
            for camera in self.cameras.values():
                camera.disconnect()
            self._connected = False

    def __enter__(self) -> "Robot":
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.disconnect()

    def _require_connected(self) -> None:
        if not self._connected:
            raise DeviceNotConnectedError(f"{self.robot_type} robot is not connected: call connect() first "
                                          "(or use it as a context manager)")

    # -------------------------------------------------------------------------------------------- I/O
    def get_observation(self) -> dict:
        """Joint positions [n], gripper opening [1] and camera images."""
        self._require_connected()
        joints, gripper = self._read_state()
        obs = {"joint_positions": np.asarray(joints, dtype=np.float64), "gripper": np.array([gripper], np.float64)}
        if self.measures_gripper_force:
            obs["gripper_force"] = np.array([self._read_gripper_force()], np.float64)
        for name, camera in self.cameras.items():
            obs[f"{IMAGE_PREFIX}{name}"] = camera.read()
        return obs

    def send_action(self, action: np.ndarray) -> np.ndarray:
        """Command ``action_features`` concatenated (joint targets [J], gripper opening [1]); returns the action
        actually sent in the same layout (after clamping to the joint limits and [0, 1])."""
        self._require_connected()
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (self.num_joints + 1,):
            raise ValueError(f"action must have shape ({self.num_joints + 1},), got {action.shape}")
        if not np.isfinite(action).all():
            raise ValueError("action contains NaN or inf; nothing was sent")
        sent = np.concatenate([np.clip(action[:-1], self.joint_low, self.joint_high), np.clip(action[-1:], 0, 1)])
        self._write_targets(sent[:-1], float(sent[-1]))
        return sent

    def hold(self) -> None:
        """Stop moving and hold the current position (used by the safety guard)."""
        if self._connected:
            self._hold()

    def reset_scene(self, seed: int | None = None, reset_id: int = 0) -> bool:
        """Reset the task scene to episode ``reset_id`` of ``seed``; False when a person has to do it (every real
        robot)."""
        return False

    def limit_gripper_force(self, newtons: float) -> float | None:
        """Cap the gripper's squeezing force; returns the cap applied, or None when this gripper cannot be capped."""
        self._require_connected()
        return self._limit_gripper_force(float(newtons))

    def _limit_gripper_force(self, newtons: float) -> float | None:
        return None  # override in drivers whose SDK takes a force limit

    def _read_gripper_force(self) -> float:
        raise NotImplementedError(f"{type(self).__name__} sets measures_gripper_force but does not read it")

    @abc.abstractmethod
    def _connect(self) -> None: ...

    @abc.abstractmethod
    def _disconnect(self) -> None: ...

    @abc.abstractmethod
    def _read_state(self) -> tuple[np.ndarray, float]: ...

    @abc.abstractmethod
    def _write_targets(self, joints: np.ndarray, gripper: float) -> None: ...

    @abc.abstractmethod
    def _hold(self) -> None: ...
