"""MuJoCo Warp behind the part of ``mujoco.batch.Batch`` the tabletop env uses: physics on the device.

The env reads and writes host mirrors of the world state (as it does ``mujoco.batch`` views). ``step`` uploads
them once, runs every physics substep on the device (one CUDA graph on a GPU), recomputes kinematics there and
downloads the state once per control step. Worlds not being stepped keep their state (their mirrors are kept).
"""

from __future__ import annotations

import numpy as np

UPLOAD = ("qpos", "qvel", "act", "ctrl", "mocap_pos", "mocap_quat", "qacc_warmstart", "time")
DOWNLOAD = ("qpos", "qvel", "act", "qacc_warmstart", "time", "site_xpos", "site_xmat", "actuator_force")
MIRRORED = tuple(dict.fromkeys(UPLOAD + DOWNLOAD))


def _import_warp():
    try:
        import mujoco_warp as mjw
        import warp as wp
    except ImportError as err:  # optional dependency
        raise ImportError("backend=mujoco_warp needs MuJoCo Warp: pip install 'embodied-vla[warp]'") from err
    wp.config.quiet = True
    return wp, mjw


class WarpBatch:
    """``nsim`` worlds of ``model`` in MuJoCo Warp on ``device`` (default: the GPU if there is one, else CPU)."""

    def __init__(self, model, nsim: int, device: str | None = None, nconmax: int = 32, njmax: int = 128):
        import mujoco

        wp, self.mjw = _import_warp()
        self.wp = wp
        self.model = model
        self.nsim = nsim
        self.device = device or ("cuda:0" if wp.is_cuda_available() else "cpu")
        data = mujoco.MjData(model)
        mujoco.mj_forward(model, data)
        with wp.ScopedDevice(self.device):
            self.m = self.mjw.put_model(model)
            self.d = self.mjw.put_data(model, data, nworld=nsim, nconmax=nconmax, njmax=njmax)
        self.host = {name: self._download(name) for name in MIRRORED}
        with wp.ScopedDevice(self.device):  # Jacobian buffers, reused every control step
            self._jacp = wp.zeros((nsim, 3, model.nv), dtype=float)
            self._jacr = wp.zeros((nsim, 3, model.nv), dtype=float)
        self._graphs: dict[int, object] = {}

    # ----------------------------------------------------------------- mirrors
    def _download(self, name: str) -> np.ndarray:
        value = getattr(self.d, name).numpy().astype(np.float64)
        return value.reshape(self.nsim, -1, 9) if name == "site_xmat" else value  # like mujoco.batch's views

    def bind(self, name: str) -> np.ndarray:
        """The host mirror of state field ``name`` [nsim, ...] (read and written in place by the env)."""
        if name not in self.host:
            raise KeyError(f"mujoco_warp mirrors {sorted(self.host)}, not {name!r}")
        return self.host[name]

    def _upload(self) -> None:
        for name in UPLOAD:
            getattr(self.d, name).assign(self.host[name].astype(np.float32))  # uploaded fields keep device shapes

    def _pull(self, keep: np.ndarray | None) -> None:
        """Download the state; worlds in ``keep`` (not stepped) get their previous mirrors back."""
        for name in DOWNLOAD:
            fresh = self._download(name)
            if keep is not None:
                fresh[keep] = self.host[name][keep]
            self.host[name][...] = fresh

    # ----------------------------------------------------------------- physics
    def _positions(self) -> None:
        self.mjw.kinematics(self.m, self.d)
        self.mjw.com_pos(self.m, self.d)

    def _substeps(self, nstep: int) -> None:
        for _ in range(nstep):
            self.mjw.step(self.m, self.d)
        self._positions()

    def step(self, ids=None, nstep: int = 1, stage=None) -> None:
        """Advance worlds ``ids`` (all when None) by ``nstep`` physics steps; positions are recomputed after."""
        self._upload()
        with self.wp.ScopedDevice(self.device):
            if self.device.startswith("cuda"):  # replay one captured graph of all substeps
                if nstep not in self._graphs:
                    with self.wp.ScopedCapture() as capture:
                        self._substeps(nstep)
                    self._graphs[nstep] = capture.graph
                self.wp.capture_launch(self._graphs[nstep])
            else:
                self._substeps(nstep)
        self._pull(None if ids is None else np.setdiff1d(np.arange(self.nsim), ids))

    def forward(self, ids=None, stage=None) -> None:
        """Recompute positions (sites, centres of mass) from the mirrors' joint positions."""
        self._upload()
        with self.wp.ScopedDevice(self.device):
            self._positions()
        self._pull(None if ids is None else np.setdiff1d(np.arange(self.nsim), ids))

    def reset(self, ids, stage=None) -> None:
        """Like ``mj_resetData`` for worlds ``ids`` (on the mirrors; ``forward`` or ``step`` uploads them)."""
        m, h = self.model, self.host
        h["qpos"][ids] = m.qpos0
        for name in ("qvel", "act", "ctrl", "qacc_warmstart", "time"):
            h[name][ids] = 0.0
        mocap_bodies = np.nonzero(m.body_mocapid >= 0)[0]
        order = m.body_mocapid[mocap_bodies]
        h["mocap_pos"][np.ix_(ids, order)] = m.body_pos[mocap_bodies]
        h["mocap_quat"][np.ix_(ids, order)] = m.body_quat[mocap_bodies]

    def jac(self, body: int, points: np.ndarray, ids=None) -> tuple[np.ndarray, np.ndarray]:
        """Translational and rotational Jacobians [len(ids), 3, nv] of ``points`` [len(ids), 3] on ``body``."""
        wp = self.wp
        rows = np.arange(self.nsim) if ids is None else np.asarray(ids)
        full = np.zeros((self.nsim, 3), dtype=np.float32)
        full[rows] = points
        with wp.ScopedDevice(self.device):
            self.mjw.jac(self.m, self.d, self._jacp, self._jacr, wp.array(full, dtype=wp.vec3),
                         wp.full(self.nsim, body, dtype=int))
        return self._jacp.numpy()[rows].astype(np.float64), self._jacr.numpy()[rows].astype(np.float64)

    def expand(self, name: str):
        """Per-world model fields (domain randomisation, force limits) are not wired for MuJoCo Warp yet."""
        raise NotImplementedError(f"backend=mujoco_warp cannot vary model field {name!r} per world yet "
                                  "(physical randomisation, gripper force limits): use backend=mujoco")

    def set_const(self, ids=None) -> None:
        """Not needed without per-world model fields."""
        raise NotImplementedError("backend=mujoco_warp has no per-world model fields to recompute")
