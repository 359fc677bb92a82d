"""Record robot episodes (deployment rollouts, teleoperation) to a LeRobot v3.0 dataset.

Per frame: ``observation.state`` (the policy's state vector), ``observation.images.<camera>`` (videos),
``action`` (what was actually sent, after every safety clamp, in the controller's normalised action space, so a
policy trained on the dataset reproduces the motion the arm made), ``action.joint_targets`` (the raw command
sent: joint targets and gripper opening) and ``command`` (what the policy or the operator's device asked for).
"""

from __future__ import annotations

import os

import numpy as np

from embodied.data.writer import LeRobotDatasetWriter
from real_robot.robot import camera_images


def robot_features(state_dim: int, images: dict, action_dim: int, num_joints: int, flags: tuple = ()) -> dict:
    """LeRobot features of a recorded robot episode (``images``: camera key -> [H, W, 3]; ``flags``: names of
    per-frame 0/1 markers, e.g. ``intervention``)."""
    vector = lambda n: {"dtype": "float32", "shape": [n], "names": None}  # noqa: E731
    features = {"observation.state": vector(state_dim), "action": vector(action_dim),
                "action.joint_targets": vector(num_joints + 1), "command": vector(action_dim)}
    features |= {name: vector(1) for name in flags}
    for key, shape in images.items():
        features[f"observation.{key}"] = {"dtype": "video", "shape": list(shape)}
    return features


class EpisodeRecorder:
    """Appends frames to the dataset at ``root``; one ``end_episode`` per episode makes it durable."""

    def __init__(self, root: str, fps: float, robot_type: str, append: bool = True):
        self.root, self.fps, self.robot_type, self.append = root, fps, robot_type, append
        self.writer: LeRobotDatasetWriter | None = None

    @property
    def exists(self) -> bool:
        """Whether ``root`` already holds a dataset."""
        return os.path.isfile(os.path.join(self.root, "meta", "info.json"))

    def open(self, features: dict) -> LeRobotDatasetWriter:
        """Create the dataset, or append to it after checking fps and features match (``append=False``:
        an existing dataset is an error that names the fix)."""
        if self.exists:
            if not self.append:
                raise FileExistsError(f"{self.root} already holds a dataset: pass --resume (resume=true) to append "
                                      "to it, or choose another dataset path")
            self.writer = LeRobotDatasetWriter.resume(self.root, fps=self.fps, features=features)
        else:
            self.writer = LeRobotDatasetWriter.create(self.root, fps=self.fps, features=features,
                                                      robot_type=self.robot_type)
        return self.writer

    def add(self, state, robot_obs: dict, action, joint_targets, command, task: str, flags: dict | None = None) -> None:
        """Buffer one frame: the policy state, the robot observation's cameras, what was sent and asked, and the
        frame's ``flags`` (name -> bool; the same names in every frame of a dataset)."""
        images = camera_images(robot_obs)
        flags = flags or {}
        if self.writer is None:
            self.open(robot_features(len(state), {k: v.shape for k, v in images.items()}, len(action),
                                     len(joint_targets) - 1, tuple(flags)))
        frame = {"observation.state": np.asarray(state, np.float32), "action": np.asarray(action, np.float32),
                 "action.joint_targets": np.asarray(joint_targets, np.float32),
                 "command": np.asarray(command, np.float32)}
        frame |= {f"observation.{key}": image for key, image in images.items()}
        frame |= {name: np.array([float(value)], np.float32) for name, value in flags.items()}
        self.writer.add_frame(frame, task)

    @property
    def episode_length(self) -> int:
        """Frames buffered in the open episode."""
        return 0 if self.writer is None else self.writer.episode_length

    def discard_episode(self) -> None:
        """Drop the open episode (re-record)."""
        if self.writer is not None:
            self.writer.discard_episode()

    def end_episode(self) -> int | None:
        """Save the open episode (also one cut short by a fault: nothing recorded is lost); its index."""
        if self.episode_length == 0:
            return None
        return self.writer.save_episode()
