"""Forward kinematics and tool Jacobian of an arm model, for deployment (IK of end-effector actions on a real arm)
and the safety guard's workspace check."""

from __future__ import annotations

import mujoco
import numpy as np

from sims.arms import ArmModel, get_arm
from sims.mujoco.scene import build_scene_xml


class ArmKinematics:
    """A single MuJoCo copy of the arm (no objects) evaluated at given joint positions."""

    def __init__(self, arm: ArmModel | str = "panda"):
        self.arm = get_arm(arm) if isinstance(arm, str) else arm
        self.model = mujoco.MjModel.from_xml_string(build_scene_xml((), (), 0.005, self.arm))
        self.data = mujoco.MjData(self.model)
        self.qpos_adr = np.array([self.model.jnt_qposadr[self.model.joint(n).id] for n in self.arm.joint_names])
        self.dof_adr = np.array([self.model.jnt_dofadr[self.model.joint(n).id] for n in self.arm.joint_names])
        self.tcp_site = self.model.site("tcp").id

    def _set(self, q: np.ndarray) -> None:
        self.data.qpos[self.qpos_adr] = q
        mujoco.mj_kinematics(self.model, self.data)

    def tool_pose(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tool-centre position [3] and rotation matrix [3, 3] at joint positions q [J]."""
        self._set(q)
        return self.data.site_xpos[self.tcp_site].copy(), self.data.site_xmat[self.tcp_site].reshape(3, 3).copy()

    def tool_position(self, q: np.ndarray) -> np.ndarray:
        """Tool-centre position [3] (the safety guard's forward kinematics)."""
        return self.tool_pose(q)[0]

    def jacobian(self, q: np.ndarray) -> np.ndarray:
        """Tool Jacobian [6, J]: translational rows, then rotational."""
        self._set(q)
        mujoco.mj_comPos(self.model, self.data)
        jacp, jacr = np.zeros((3, self.model.nv)), np.zeros((3, self.model.nv))
        mujoco.mj_jacSite(self.model, self.data, jacp, jacr, self.tcp_site)
        return np.concatenate([jacp, jacr])[:, self.dof_adr]
