"""Collision checking of arm configurations against the scene (and the arm itself) with MuJoCo."""

from __future__ import annotations

import mujoco
import numpy as np



class ArmCollisionChecker:
    """``checker(q) -> True`` when arm configuration q [J] keeps ``clearance`` metres from every obstacle.

    Every collidable geom of the arm (links, hand, fingers; the first link turns above its mount and has none) is
    tested with ``mj_geomDistance`` against every collidable geom that is not part of the
    arm (table, objects) and not in ``ignore_geoms`` (e.g. the cube being grasped). Fingers stay as in
    ``base_qpos``.
    """

    def __init__(self, model: mujoco.MjModel, base_qpos: np.ndarray | None = None, clearance: float = 0.0,
                 ignore_geoms=()):
        self.model = model
        self.data = mujoco.MjData(model)
        if base_qpos is not None:
            self.data.qpos[:] = base_qpos
        arm_joints = [j for j in range(model.njnt)  # joint1..jointJ of sims.mujoco.arm_model
                      if (mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j) or "").startswith("joint")]
        self.qpos_adr = np.array([model.jnt_qposadr[j] for j in arm_joints])
        root = model.body("link1").id
        arm_bodies = {b for b in range(model.nbody) if self._descends_from(b, root)}
        collidable = (model.geom_contype != 0) | (model.geom_conaffinity != 0)
        self.arm_geoms = [g for g in range(model.ngeom) if model.geom_bodyid[g] in arm_bodies and collidable[g]]
        ignored = set(ignore_geoms)
        self.obstacles = [g for g in range(model.ngeom) if g not in self.arm_geoms and collidable[g]
                          and model.geom_type[g] != mujoco.mjtGeom.mjGEOM_PLANE and g not in ignored]
        self.clearance = clearance
        self._fromto = np.zeros(6)
        self.checks = 0

    def _descends_from(self, body: int, root: int) -> bool:
        while body > 0:
            if body == root:
                return True
            body = self.model.body_parentid[body]
        return False

    def __call__(self, q: np.ndarray) -> bool:
        self.checks += 1
        self.data.qpos[self.qpos_adr] = q
        mujoco.mj_kinematics(self.model, self.data)
        distmax = self.clearance + 0.01
        for arm_geom in self.arm_geoms:
            for obstacle in self.obstacles:
                if mujoco.mj_geomDistance(self.model, self.data, arm_geom, obstacle, distmax, self._fromto) \
                        < self.clearance:
                    return False
        return True
