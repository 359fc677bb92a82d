"""What the operator sees: a terminal status line and the cameras, in an OpenCV window or as a preview PNG."""

from __future__ import annotations

import logging
import os
import sys
import time

import numpy as np

log = logging.getLogger("embodied.teleop")


def _opencv_window_works() -> bool:
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        return False
    try:
        import cv2

        cv2.namedWindow("embodied-teleop")
        return True
    except Exception:  # noqa: BLE001 - opencv-python-headless has no GUI
        return False


class LiveView:
    """``show`` draws at most every ``every_s`` seconds so it never costs the control loop its rate."""

    def __init__(self, mode: str, preview_path: str, every_s: float = 1.0, stream=None):
        if mode == "auto":
            mode = "window" if _opencv_window_works() else "preview"
        if mode != "none":
            try:
                import cv2  # noqa: F401
            except ImportError:
                log.warning("no camera view: it needs opencv-python (pip install 'embodied-vla[real]')")
                mode = "none"
        self.mode, self.preview_path, self.every_s = mode, preview_path, every_s
        self.stream = stream if stream is not None else sys.stderr
        self._last_draw = self._last_status = 0.0
        if mode == "preview":
            os.makedirs(os.path.dirname(os.path.abspath(preview_path)), exist_ok=True)
            log.info("camera preview: %s (refreshed every %.1f s)", os.path.abspath(preview_path), every_s)

    def status(self, text: str, force: bool = False) -> None:
        """Rewrite the terminal status line (at most 5 times a second unless forced)."""
        now = time.monotonic()
        if force or now - self._last_status > 0.2:
            self.stream.write("\r" + text.ljust(100)[:160])
            self.stream.flush()
            self._last_status = now

    def end_line(self, text: str = "") -> None:
        """Finish the status line with a final message."""
        self.stream.write("\r" + text.ljust(100) + "\n")
        self.stream.flush()

    def show(self, images: dict) -> None:
        """Camera frames (key -> uint8 [H, W, 3] RGB), side by side."""
        now = time.monotonic()
        if self.mode == "none" or not images or now - self._last_draw < self.every_s:
            return
        self._last_draw = now
        height = max(image.shape[0] for image in images.values())
        tiles = [np.pad(image, ((0, height - image.shape[0]), (0, 0), (0, 0))) for image in images.values()]
        canvas = np.concatenate(tiles, axis=1)
        import cv2

        if self.mode == "window":
            cv2.imshow("embodied-teleop", canvas[:, :, ::-1])
            cv2.waitKey(1)
        else:
            partial = self.preview_path + ".tmp.png"
            cv2.imwrite(partial, canvas[:, :, ::-1])
            os.replace(partial, self.preview_path)

    def close(self) -> None:
        """Close the window, if any."""
        if self.mode == "window":
            import cv2

            cv2.destroyAllWindows()
