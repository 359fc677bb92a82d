"""Cameras: an OpenCV capture device and a simulated one; a camera that stops delivering frames raises."""

from __future__ import annotations

import time

import numpy as np

from real_robot.errors import DeviceNotConnectedError
from sims.registry import Registry

CAMERAS = Registry("camera type", key="robot.cameras: {<name>: {type: <camera type>, ...}}")


class CameraTimeout(RuntimeError):
    """A camera delivered no frame within its timeout."""


class Camera:
    """Base class: ``connect``, ``read() -> uint8 [H, W, 3]``, ``disconnect``; size declared up front."""

    def __init__(self, width: int, height: int, timeout_s: float = 0.5):
        self.width, self.height, self.timeout_s = width, height, timeout_s
        self._connected = False

    def connect(self) -> None:
        self._connected = True

    def disconnect(self) -> None:
        self._connected = False

    def read(self) -> np.ndarray:
        """The latest frame, uint8 [height, width, 3] RGB."""
        if not self._connected:
            raise DeviceNotConnectedError(f"{type(self).__name__} is not connected: call connect() first")
        frame = self._read()
        if frame is None:
            raise CameraTimeout(f"{type(self).__name__} delivered no frame within {self.timeout_s} s")
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(f"{type(self).__name__} frame is {frame.dtype} {frame.shape}, declared "
                             f"uint8 ({self.height}, {self.width}, 3)")
        return frame

    def _read(self) -> np.ndarray | None:
        raise NotImplementedError


class OpenCVCamera(Camera):
    """A V4L2/USB camera through OpenCV (``opencv-python``), resized to the declared size."""

    def __init__(self, index: int | str = 0, width: int = 64, height: int = 64, timeout_s: float = 0.5):
        super().__init__(width, height, timeout_s)
        self.index = index
        self._capture = None

    def connect(self) -> None:
        try:
            import cv2
        except ImportError as error:
            raise ImportError("OpenCVCamera needs opencv-python: pip install opencv-python-headless") from error
        self._cv2 = cv2
        self._capture = cv2.VideoCapture(self.index)
        if not self._capture.isOpened():
            raise ConnectionError(f"cannot open camera {self.index!r}; check the device path and permissions")
        super().connect()

    def disconnect(self) -> None:
        if self._capture is not None:
            self._capture.release()
        super().disconnect()

    def _read(self):
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            ok, frame = self._capture.read()
            if ok:
                frame = self._cv2.resize(frame, (self.width, self.height), interpolation=self._cv2.INTER_AREA)
                return frame[:, :, ::-1].copy()  # BGR -> RGB
        return None


class SimCamera(Camera):
    """Frames from a callable (the sim twin's renderer); ``fail_after`` frames simulates a camera that dies."""

    def __init__(self, source, width: int, height: int, fail_after: int | None = None):
        super().__init__(width, height)
        self.source = source
        self.fail_after = fail_after
        self.frames = 0

    def _read(self):
        self.frames += 1
        if self.fail_after is not None and self.frames > self.fail_after:
            return None
        return self.source()


CAMERAS.register("opencv", attribute="camera_type")(OpenCVCamera)


def make_camera(config: dict) -> Camera:
    """A camera from config, e.g. ``{type: opencv, index: /dev/video0, width: 64, height: 64}``."""
    return CAMERAS.build(config, default="opencv")
