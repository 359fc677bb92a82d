"""MuJoCo Warp worlds whose state stays on the device: torch views of Warp's arrays, stepped in place.

Every state field the tabletop env reads or writes is a zero-copy ``torch`` view of a MuJoCo Warp array on the
Warp device (``cuda:0`` on a GPU, ``cpu`` here), so the controller, task, observation and reset code run as torch
ops on that device and nothing goes through the host between control steps.
"""

from __future__ import annotations

import torch

FIELDS = ("qpos", "qvel", "act", "ctrl", "mocap_pos", "mocap_quat", "qacc_warmstart", "time",
          "site_xpos", "site_xmat", "actuator_force")
STATE = ("qpos", "qvel", "act", "ctrl", "mocap_pos", "mocap_quat", "qacc_warmstart", "time")  # what a step reads


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
            self._jacp = wp.zeros((nsim, 3, model.nv), dtype=float)  # Jacobian buffers, reused every step
            self._jacr = wp.zeros((nsim, 3, model.nv), dtype=float)
            self._points = wp.zeros(nsim, dtype=wp.vec3)
            self._bodies = wp.zeros(nsim, dtype=int)
        self.fields = {name: wp.to_torch(getattr(self.d, name)) for name in FIELDS}  # zero-copy views
        self.torch_device = self.fields["qpos"].device
        self._graphs: dict[int, object] = {}

    def _positions(self) -> None:
        self.mjw.kinematics(self.m, self.d)
        self.mjw.com_pos(self.m, self.d)

    def _substeps(self, nstep: int) -> None:
        for _ in range(nstep):
            self.mjw.step(self.m, self.d)
        self._positions()

    def step(self, nstep: int = 1) -> None:
        """Advance every world by ``nstep`` physics steps; positions (sites) are recomputed after."""
        with self.wp.ScopedDevice(self.device):
            if self.device.startswith("cuda"):  # replay one captured graph of all substeps
                if nstep not in self._graphs:
                    with self.wp.ScopedCapture() as capture:
                        self._substeps(nstep)
                    self._graphs[nstep] = capture.graph
                self.wp.capture_launch(self._graphs[nstep])
            else:
                self._substeps(nstep)

    def forward(self) -> None:
        """Recompute positions (sites, centres of mass) of every world from its joint positions."""
        with self.wp.ScopedDevice(self.device):
            self._positions()

    def snapshot(self) -> dict[str, torch.Tensor]:
        """Device copies of the fields a step reads and writes (to undo a step for worlds that must hold)."""
        return {name: self.fields[name].clone() for name in FIELDS}

    def restore(self, snapshot: dict[str, torch.Tensor], keep: torch.Tensor) -> None:
        """Put the snapshot back for worlds where ``keep`` [nsim] is true (on the device, no host sync)."""
        for name, saved in snapshot.items():
            field = self.fields[name]
            mask = keep.view((-1,) + (1,) * (field.ndim - 1))
            field.copy_(torch.where(mask, saved, field))

    def jac(self, body: int, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Translational and rotational Jacobians [nsim, 3, nv] of ``points`` [nsim, 3] on ``body`` (views)."""
        wp = self.wp
        wp.to_torch(self._points).copy_(points.to(torch.float32))
        wp.to_torch(self._bodies).fill_(body)
        with wp.ScopedDevice(self.device):
            self.mjw.jac(self.m, self.d, self._jacp, self._jacr, self._points, self._bodies)
        return wp.to_torch(self._jacp), wp.to_torch(self._jacr)
