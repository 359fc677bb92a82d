"""Headless rendering of a batch of worlds (EGL by default).

A renderer's GL calls run on its own worker thread, which owns the GL context, a copy of the model, a scene and a
scratch MjData, so the renderer can be called from any thread. One worker, not several: two GL threads in one
process crashed llvmpipe (a general protection fault in swrast_dri.so, once in a few runs) and drew at most a
quarter more frames, since llvmpipe already rasterises on every core.

Software GL (llvmpipe) spends most of a 64 px frame on the triangles of round geoms, on multisampling and on one
pipeline flush per frame read back; ``RENDER_QUALITIES`` names the trade between look and speed:

* ``full`` draws and reads one frame at a time at the framebuffer's origin: ``mujoco.Renderer``'s images, bit for
  bit, as every pixel result so far was measured on;
* ``fast`` draws round geoms with fewer facets, and draws a batch as tiles of one framebuffer (one ``mjr_render``
  per frame into its own viewport) read back with one ``mjr_readPixels``;
* ``fastest`` also drops the multisampling.

benchmarks/sim_throughput.py prints frames/s and the pixels that differ from ``full``.
"""

from __future__ import annotations

import copy
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # noqa: E402
import numpy as np  # noqa: E402


@dataclass(frozen=True)
class RenderQuality:
    """Multisamples per pixel and facets of round geoms (MuJoCo's ``<visual><quality>``), and whether frames are
    drawn as tiles of a shared framebuffer or one at a time at its origin, exactly as ``mujoco.Renderer`` draws."""

    samples: int
    slices: int
    stacks: int
    tiled: bool


RENDER_QUALITIES = {
    "full": RenderQuality(samples=4, slices=28, stacks=16, tiled=False),  # mujoco.Renderer's images, bit for bit
    "fast": RenderQuality(samples=4, slices=12, stacks=8, tiled=True),  # still antialiased
    "fastest": RenderQuality(samples=0, slices=12, stacks=8, tiled=True),  # jagged edges
}
ATLAS_SIDE = 1024  # the largest framebuffer side a worker draws its tiles into, in pixels


def render_quality(name: str) -> RenderQuality:
    """The quality called ``name``, or a ValueError naming the choices."""
    if name not in RENDER_QUALITIES:
        raise ValueError(f"unknown render quality {name!r}; choose one of {sorted(RENDER_QUALITIES)}")
    return RENDER_QUALITIES[name]


class _TileWorker:
    """One thread that owns a GL context and draws frames, as tiles of its framebuffer or one at a time."""

    def __init__(self, model: mujoco.MjModel, cameras: tuple[str, ...], height: int, width: int,
                 quality: RenderQuality, frames: int):
        """``frames``: the most frames one batch holds (every camera of every env); tiles fit them up to
        ATLAS_SIDE pixels a side."""
        self.height, self.width = height, width
        self.cols = max(1, min(ATLAS_SIDE // width, frames)) if quality.tiled else 1
        self.rows = max(1, min(ATLAS_SIDE // height, -(-frames // self.cols))) if quality.tiled else 1
        self.model = copy.copy(model)  # per-env visual randomisation is written into it
        # untiled: the model's own offscreen size, as mujoco.Renderer uses it (multisampling depends on it)
        global_ = self.model.vis.global_
        global_.offwidth = self.cols * width if quality.tiled else max(global_.offwidth, width)
        global_.offheight = self.rows * height if quality.tiled else max(global_.offheight, height)
        self.model.vis.quality.offsamples = quality.samples
        self.model.vis.quality.numslices = quality.slices
        self.model.vis.quality.numstacks = quality.stacks
        self.camera_ids = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, c) for c in cameras]
        self.thread = ThreadPoolExecutor(max_workers=1)  # one thread: the context is current on it alone
        self.thread.submit(self._open).result()

    def _open(self) -> None:
        self.context = mujoco.GLContext(self.cols * self.width, self.rows * self.height)
        self.context.make_current()
        self.gl = mujoco.MjrContext(self.model, mujoco.mjtFontScale.mjFONTSCALE_150)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self.gl)
        self.scene = mujoco.MjvScene(self.model, maxgeom=10_000)
        self.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
        self.option, self.perturb, self.camera = mujoco.MjvOption(), mujoco.MjvPerturb(), mujoco.MjvCamera()
        self.camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self.data = mujoco.MjData(self.model)
        self.atlas = np.empty((self.rows * self.height, self.cols * self.width, 3), dtype=np.uint8)

    def draw(self, qpos, mocap_pos, visuals, env_ids, images: list[np.ndarray]) -> None:
        """Render the cameras of envs ``env_ids`` into ``images[c]``, row i for ``env_ids[i]`` (the caller's arrays).

        Camera c of env e always takes tile (e * cameras + c) mod tiles: the depth tests of nearly coplanar
        surfaces (a marker on the table) can resolve differently at another place in the framebuffer, so a
        fixed tile keeps an env's image the same whatever the batch or subset."""
        cameras, per_atlas = len(self.camera_ids), self.cols * self.rows
        passes: dict[int, list] = {}
        for row, env in enumerate(env_ids):
            for c in range(cameras):
                atlas, tile = divmod(int(env) * cameras + c, per_atlas)
                passes.setdefault(atlas, []).append((tile, row, int(env), c))
        self._posed = None  # the env whose world ``data`` holds: its cameras follow each other, across passes too
        for frames in passes.values():
            self._draw_atlas(qpos, mocap_pos, visuals, frames, images)

    def _draw_atlas(self, qpos, mocap_pos, visuals, frames, images) -> None:
        h, w, m, data = self.height, self.width, self.model, self.data
        for tile, _, env, c in frames:
            if env != self._posed:  # pose the world once per env, not once per camera
                if visuals is not None:
                    m.geom_rgba[:] = visuals["geom_rgba"][env]
                    m.cam_pos[:] = visuals["cam_pos"][env]
                    m.light_diffuse[:] = visuals["light_diffuse"][env]
                data.qpos[:] = qpos[env]
                data.mocap_pos[:] = mocap_pos[env]
                mujoco.mj_kinematics(m, data)
                mujoco.mj_camlight(m, data)
                self._posed = env
            self.camera.fixedcamid = self.camera_ids[c]
            mujoco.mjv_updateScene(m, data, self.option, self.perturb, self.camera, mujoco.mjtCatBit.mjCAT_ALL,
                                   self.scene)
            row, col = divmod(tile, self.cols)
            mujoco.mjr_render(mujoco.MjrRect(col * w, row * h, w, h), self.scene, self.gl)
        first, last = min(f[0] for f in frames) // self.cols, max(f[0] for f in frames) // self.cols  # rows drawn
        atlas = self.atlas[: (last - first + 1) * h]
        mujoco.mjr_readPixels(atlas, None, mujoco.MjrRect(0, first * h, self.cols * w, len(atlas)), self.gl)
        for tile, row_out, _, c in frames:
            row, col = divmod(tile, self.cols)
            row -= first
            images[c][row_out] = atlas[row * h:(row + 1) * h, col * w:(col + 1) * w][::-1]  # GL rows run upward

    def close(self) -> None:
        """Free the GL context on its own thread, then stop the thread."""
        def free() -> None:
            self.gl.free()
            self.context.free()

        self.thread.submit(free).result()
        self.thread.shutdown()


class BatchRenderer:
    """Renders every camera of every env into uint8 [N, H, W, 3] arrays; the framebuffer is sized for ``num_envs``
    worlds (None: as many as one framebuffer of tiles holds)."""

    def __init__(self, model: mujoco.MjModel, cameras: tuple[str, ...], height: int, width: int,
                 quality: str = "full", num_envs: int | None = None):
        for camera in cameras:
            if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera) < 0:
                names = [model.camera(i).name for i in range(model.ncam)]
                raise ValueError(f"unknown camera {camera!r}; the scene has {names}")
        self.cameras = cameras
        self.height, self.width = height, width
        self.quality = render_quality(quality)
        tiles = max(1, ATLAS_SIDE // width) * max(1, ATLAS_SIDE // height)
        self.worker = _TileWorker(model, cameras, height, width, self.quality, (num_envs or tiles) * len(cameras))

    def render(self, qpos: np.ndarray, mocap_pos: np.ndarray, visuals: dict | None, env_ids=None) -> dict:
        """Images of envs ``env_ids`` (default all) from their positions and per-env visual overrides."""
        ids = np.arange(qpos.shape[0]) if env_ids is None else np.asarray(env_ids)
        images = [np.empty((len(ids), self.height, self.width, 3), dtype=np.uint8) for _ in self.cameras]
        self.worker.thread.submit(self.worker.draw, qpos, mocap_pos, visuals, ids, images).result()
        return dict(zip(self.cameras, images))

    def close(self) -> None:
        """Free the GL context."""
        if self.worker is not None:
            self.worker.close()
            self.worker = None
