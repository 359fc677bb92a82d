"""Headless rendering of a batch of worlds (EGL by default), one scratch MjData shared by all envs."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # noqa: E402
import numpy as np  # noqa: E402


class BatchRenderer:
    """Renders every camera of every env into uint8 [N, H, W, 3] arrays."""

    def __init__(self, model: mujoco.MjModel, cameras: tuple[str, ...], height: int, width: int):
        for camera in cameras:
            if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera) < 0:
                names = [model.camera(i).name for i in range(model.ncam)]
                raise ValueError(f"unknown camera {camera!r}; the scene has {names}")
        self.model = model  # a private copy: per-env visual randomisation is written into it
        self.cameras = cameras
        self.data = mujoco.MjData(model)
        self.renderer = mujoco.Renderer(model, height, width)
        self.renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
        self.base_rgba = model.geom_rgba.copy()
        self.base_cam_pos = model.cam_pos.copy()
        self.base_light_diffuse = model.light_diffuse.copy()

    def render(self, qpos: np.ndarray, mocap_pos: np.ndarray, visuals: dict | None, env_ids=None) -> dict:
        """Images of envs ``env_ids`` (default all) from their positions and per-env visual overrides."""
        ids = np.arange(qpos.shape[0]) if env_ids is None else env_ids
        h, w = self.renderer.height, self.renderer.width
        images = {c: np.empty((len(ids), h, w, 3), dtype=np.uint8) for c in self.cameras}
        for row, i in enumerate(ids):
            if visuals is not None:
                self.model.geom_rgba[:] = visuals["geom_rgba"][i]
                self.model.cam_pos[:] = visuals["cam_pos"][i]
                self.model.light_diffuse[:] = visuals["light_diffuse"][i]
            self.data.qpos[:] = qpos[i]
            self.data.mocap_pos[:] = mocap_pos[i]
            mujoco.mj_kinematics(self.model, self.data)
            mujoco.mj_camlight(self.model, self.data)
            for camera in self.cameras:
                self.renderer.update_scene(self.data, camera)
                self.renderer.render(out=images[camera][row])
        return images

    def close(self) -> None:
        """Free the GL context."""
        self.renderer.close()
