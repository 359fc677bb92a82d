"""Demonstrations from the motion planner: each task's grasp/place waypoints become joint configurations (IK,
tool pointing down); transit moves between configurations above the objects are planned in joint space with
Informed RRT* around the table and the cubes not being handled; approach and retreat moves are straight joint
interpolations. The plan is executed with the ``joint_delta`` controller, every env at once.
"""

from __future__ import annotations

import numpy as np
import torch

from sims.mujoco.controllers import ArmState, EndEffectorController, JointDeltaController
from sims.mujoco.env import MujocoTabletopEnv
from sims.mujoco.kinematics import ArmKinematics
from sims.planning.collision import ArmCollisionChecker
from sims.planning.informed_rrt_star import InformedRRTStar

TRANSIT_HEIGHT = 0.07  # metres: a move whose both ends hold the tool this high above the table is planned
REACHED = 0.015  # rad: a path point counts as reached when every joint is this close
STRAIGHT_STEP = 0.01  # metres between IK points of a straight tool line


def solve_ik(kinematics: ArmKinematics, target: np.ndarray, q0: np.ndarray, iterations: int = 200,
             tolerance: float = 0.002) -> np.ndarray | None:
    """Joint positions [J] putting the tool centre at ``target`` [3], pointing down; None if not reached."""
    controller = EndEffectorController(with_rotation=False, arm=kinematics.arm, max_translation=0.05)
    q = np.asarray(q0, dtype=np.float64).copy()
    for _ in range(iterations):
        pos, mat = kinematics.tool_pose(q)
        error = target - pos
        if np.linalg.norm(error) < tolerance:
            return q
        state = ArmState(q=q[None], tcp_pos=pos[None], tcp_mat=mat[None], jacobian=kinematics.jacobian(q)[None])
        action = np.concatenate([np.clip(error / controller.max_translation, -1, 1), [1.0]])[None]
        q = controller.joint_targets(state, action)[0][0]
    return None


class PlannedExpert:
    """Per env, a list of joint-space path points with a gripper command and a minimum dwell; ``act()``
    steps every env towards its current point (at most ``speed`` x 0.1 rad per joint per step)."""

    def __init__(self, env: MujocoTabletopEnv, iterations: int = 600, seed: int = 0):
        if not isinstance(env.controller, JointDeltaController):
            raise ValueError("the planner expert drives joints: make the env with controller='joint_delta' "
                             f"(this one uses {type(env.controller).__name__})")
        self.env, self.iterations, self.seed = env, iterations, seed
        self.kinematics = ArmKinematics(env.arm)
        self.paths: list[list[tuple[np.ndarray, float, int, float]]] = []  # (q, grip, min_steps, speed)
        self.index = np.zeros(env.num_envs, dtype=np.int64)
        self.dwell = np.zeros(env.num_envs, dtype=np.int64)
        self.planned_segments = 0

    # ------------------------------------------------------------------------------------ planning
    def _checker(self, world: int, handled: set[int]) -> ArmCollisionChecker:
        env = self.env
        handled_geoms = [env.model.geom(env.task.cubes[c].name).id for c in handled]
        return ArmCollisionChecker(env.model, base_qpos=env.qpos[world].copy(), ignore_geoms=handled_geoms)

    def plan_world(self, world: int, waypoints) -> list[tuple[np.ndarray, float, int, float]]:
        """Path points for env ``world`` through the task's waypoints (raises if IK or planning fails)."""
        env = self.env
        q = env.qpos[world, env.arm_qpos].astype(np.float64).copy()
        handled = {w.carry for w in waypoints if w.carry >= 0}
        checker = self._checker(world, handled)
        cubes = env.scene_view().numpy().cube_pos[world]  # [C, 3] at planning time
        points: list[tuple[np.ndarray, float, int, float]] = []
        for k, w in enumerate(waypoints):
            target = w.target[world].astype(np.float64)
            if w.carry >= 0:  # the cube's centre must reach the target: keep the tool's offset from contact
                contacts = [p.target[world] for p in waypoints[:k]
                            if np.linalg.norm(p.target[world] - cubes[w.carry]) < 0.06]
                if contacts:
                    target = target + (contacts[-1] - cubes[w.carry])
            goal = self._ik(target, q, world)
            start = self.kinematics.tool_position(q)
            high = min(start[2], target[2]) >= TRANSIT_HEIGHT
            segment = None
            if high and np.abs(goal - q).max() > 0.2 and checker(q) and checker(goal):
                planner = InformedRRTStar(checker, env.arm.joint_low, env.arm.joint_high, step=0.3,
                                          seed=self.seed + world)
                result = planner.plan(q, goal, iterations=self.iterations, shortcut_rounds=50)
                if result.path is not None:
                    segment = list(result.path[1:])
                    self.planned_segments += 1
            if segment is None:  # approach, contact, carry (or no path found): a straight tool line
                segment = self._straight(start, target, q, world)
            for i, point in enumerate(segment):
                last = i == len(segment) - 1
                points.append((point, w.grip, w.min_steps if last else 0, w.speed))
            q = goal
        return points

    def _ik(self, target: np.ndarray, q: np.ndarray, world: int) -> np.ndarray:
        goal = solve_ik(self.kinematics, target, q)
        if goal is None:
            raise RuntimeError(f"no IK solution for tool target {np.round(target, 3).tolist()} in env {world}")
        return goal

    def _straight(self, start: np.ndarray, target: np.ndarray, q: np.ndarray, world: int) -> list[np.ndarray]:
        """Joint configurations every ``STRAIGHT_STEP`` metres along the straight tool line start -> target."""
        count = max(1, int(np.ceil(np.linalg.norm(target - start) / STRAIGHT_STEP)))
        points = []
        for t in np.linspace(0.0, 1.0, count + 1)[1:]:
            q = self._ik(start + (target - start) * t, q, world)
            points.append(q)
        return points

    def start(self) -> None:
        """Plan every env from its current (freshly reset) scene."""
        waypoints = self.env.task.expert_plan(self.env.scene_view().numpy())
        self.paths = [self.plan_world(i, waypoints) for i in range(self.env.num_envs)]
        self.index[:] = 0
        self.dwell[:] = 0

    # ----------------------------------------------------------------------------------- execution
    def act(self) -> torch.Tensor:
        """joint_delta actions [N, J + 1] towards each env's current path point."""
        env = self.env
        max_delta = env.controller.max_delta
        actions = np.zeros((env.num_envs, env.arm.dof + 1), dtype=np.float32)
        for i, path in enumerate(self.paths):
            q = env.qpos[i, env.arm_qpos]
            target, grip, min_steps, speed = path[self.index[i]]
            if np.abs(target - q).max() < REACHED and self.dwell[i] >= min_steps and self.index[i] < len(path) - 1:
                self.index[i] += 1
                self.dwell[i] = 0
                target, grip, min_steps, speed = path[self.index[i]]
            self.dwell[i] += 1
            actions[i, :-1] = np.clip((target - q) / max_delta, -speed, speed)
            actions[i, -1] = grip
        return torch.from_numpy(actions)
