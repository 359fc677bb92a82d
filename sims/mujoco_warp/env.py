"""The tabletop tasks with physics in MuJoCo Warp: the same MJCF, tasks, controllers and episodes as ``mujoco``."""

from __future__ import annotations

from sims.mujoco.env import MujocoTabletopEnv
from sims.mujoco_warp.batch import WarpBatch


class MujocoWarpTabletopEnv(MujocoTabletopEnv):
    """``MujocoTabletopEnv`` whose worlds are simulated by MuJoCo Warp on ``device`` (GPU if present, else CPU).

    Physics substeps, kinematics and the tool Jacobian run on the device; observations, rewards, success and
    resets are computed on the host from one download of the state per control step (float32 physics: states
    agree with the ``mujoco`` backend to about 1e-4 over short horizons; see tests/test_mujoco_warp.py).
    """

    def __init__(self, *, device: str | None = None, randomization=None, **kwargs):
        if randomization is not None and randomization.physical:
            raise ValueError("backend=mujoco_warp does not randomise friction or mass per world yet; "
                             "use backend=mujoco for physical domain randomisation")
        self._device = device
        super().__init__(randomization=randomization, **kwargs)

    def _make_batch(self, num_envs: int, num_threads: int):
        return WarpBatch(self.model, num_envs, self._device)
