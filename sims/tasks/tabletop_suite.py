"""TabletopSuite: the language-conditioned task suite (``env.suite``, ``env.split``), all tasks in one scene.

Reset id r runs task ``r % T`` of the split's T tasks (as the LIBERO backend does), worded by template
``r // T`` of the split's templates (cycled), from a layout drawn from the episode's generator; so an evaluation of
k x T episodes runs every task k times. The tasks and splits are in ``sims.tasks.suite_catalog``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sims.arrays import const, namespace, norm, row_index
from sims.mujoco.scene import Cube, Marker
from sims.tasks.base import CUBE_HALF, EpisodeInit, SceneView, TASKS, Task, Waypoint, is_grasping, reach_reward
from sims.tasks.base import sample_separated_xy
from sims.tasks.rewards import pick_place_reward
from sims.tasks.suite_catalog import CUBES, REFERENTS, SIDES, TARGETS, SuiteTask, suite_tasks
from sims.tasks.lang_place import CUBE_COLOURS, TARGET_COLOURS

KINDS = ("place", "push", "stack")
PUSH_DISTANCE = 0.10  # the expert pushes the cube this far (metres, along y)
PUSHED = 0.08  # a push succeeds once the cube moved this far to the named side
GOAL_COLUMNS = 4  # per goal: kind, subject cube, destination (target, side sign or base cube), subject's start y


@dataclass(frozen=True)
class EpisodeTask:
    """The task a reset id runs: its index in the split and its canonical instruction (a table's row)."""

    index: int
    instruction: str


@TASKS.register("TabletopSuite", attribute="name")
class TabletopSuite(Task):
    """A suite of tabletop tasks (spatial, object, goal, long families) that differ by instruction."""

    cubes = tuple(Cube(f"cube_{c}", CUBE_HALF, CUBE_COLOURS[c]) for c in CUBES)
    markers = tuple(Marker(f"target_{t}", "disc", 0.035, TARGET_COLOURS[t]) for t in TARGETS)
    privileged_dim = 3 * 7 + 3 * 3 + 3 + 3 + 3 + 3 + 1 + 1
    # what the VLA's auxiliary loss scores: where the cube to move now is, and where it must go
    goal_state_dims = (30, 36)
    params_dim = 2 + 2 * GOAL_COLUMNS  # task index, goal count, then two goals (a one-goal task repeats it)
    instructions_vary = True
    # success ends the episode, as in LIBERO: one limit fits the longest task, and the evaluation runs no idle steps
    ends_on_success = True

    def __init__(self, suite: str = "tabletop", split: str = "train"):
        self.suite, self.split = suite, split
        self.tasks: tuple[SuiteTask, ...] = suite_tasks(suite, split)
        self.max_episode_steps = 160 if any(len(t.goals) > 1 for t in self.tasks) else 80

    # ----------------------------------------------------------------- episodes
    def episode_task(self, reset_ids) -> list[EpisodeTask]:
        """The task each reset id runs (id r: task r % T)."""
        return [EpisodeTask(int(r) % len(self.tasks), self.tasks[int(r) % len(self.tasks)].name)
                for r in np.asarray(reset_ids).reshape(-1)]

    def sample_episode(self, rng: np.random.Generator) -> EpisodeInit:
        """An episode of a task drawn from ``rng`` (the envs call ``episode_for`` with the reset id instead)."""
        return self.episode_for(rng, int(rng.integers(len(self.tasks))))

    def episode_for(self, rng: np.random.Generator, reset_id: int) -> EpisodeInit:
        index = reset_id % len(self.tasks)
        task = self.tasks[index]
        cubes, targets = _layout(rng, task)
        goals = [_goal_params(goal, cubes) for goal in task.goals]
        params = np.array([index, len(goals), *goals[0], *goals[-1]], dtype=np.float64)
        text = task.instruction(reset_id // len(self.tasks), held_out_wording=self.split == "paraphrase")
        return EpisodeInit(np.concatenate([cubes, np.full((3, 1), CUBE_HALF)], axis=1),
                           rng.uniform(-np.pi / 8, np.pi / 8, size=3),  # (turned more, grasps slipped in transit)
                           np.concatenate([targets, np.full((3, 1), 0.001)], axis=1), text, params=params)

    # ----------------------------------------------------------------- scoring
    def _goal(self, view: SceneView, k: int) -> dict:
        """Goal k (0 or 1) of every env: the subject cube's index and position, its destination, whether the goal
        holds, and its dense reward in [0, 1]."""
        xp = namespace(view.cube_pos)
        rows = row_index(view.tcp_pos)
        columns = view.params[:, 2 + GOAL_COLUMNS * k: 2 + GOAL_COLUMNS * (k + 1)]
        kind, destination, start_y = columns[:, 0], columns[:, 2], columns[:, 3]
        subject = xp.astype(columns[:, 1], xp.int64)
        other = xp.astype(xp.clip(destination, 0, 2), xp.int64)  # the target or base cube (a push's sign: unused)
        position = view.cube_pos[rows, subject]  # [N, 3]
        lift = const(position, [0.0, 0.0, 1.0])
        on_target = view.marker_pos[rows, other] + CUBE_HALF * lift
        on_cube = view.cube_pos[rows, other] + 2 * CUBE_HALF * lift
        side = xp.where(kind == 1, destination, 0.0)  # [N] +1 left, -1 right
        zero = xp.zeros_like(side)
        pushed = xp.stack([position[:, 0], start_y + side * PUSH_DISTANCE, zero + CUBE_HALF], axis=-1)
        is_place, is_stack = (kind == 0)[:, None], (kind == 2)[:, None]
        goal = xp.where(is_place, on_target, xp.where(is_stack, on_cube, pushed))
        released = ~is_grasping(view, subject)  # (a later push may close the fingers away from this cube)
        xy_tolerance = xp.where(kind == 2, 0.02, 0.03)
        laid = (norm(position[:, :2] - goal[:, :2]) < xy_tolerance) & (xp.abs(position[:, 2] - goal[:, 2]) < 0.006)
        moved = side * (position[:, 1] - start_y)
        holds = xp.where(kind == 1, (moved >= PUSHED) & (xp.abs(position[:, 2] - CUBE_HALF) < 0.006),
                         laid & released)
        push_point = position - xp.stack([zero, side * (CUBE_HALF + 0.01), zero], axis=-1)
        carry_reward, _ = pick_place_reward(view, subject, goal, 0.02, need_release=True)
        push_reward = 0.5 * reach_reward(norm(view.tcp_pos - push_point)) + 0.5 * xp.clip(moved / PUSHED, 0.0, 1.0)
        reward = xp.where(kind == 1, push_reward, carry_reward)
        return {"subject": subject, "position": position, "goal": goal, "holds": holds, "reward": reward}

    def _progress(self, view: SceneView):
        """Both goals, the current one (the second once the first holds) and whether the task has two goals."""
        xp = namespace(view.cube_pos)
        first, second = self._goal(view, 0), self._goal(view, 1)
        two = view.params[:, 1] > 1
        on_second = two & first["holds"]
        current = {key: xp.where(on_second[:, None] if first[key].ndim == 2 else on_second, second[key], first[key])
                   for key in first}
        return first, second, current, two

    def privileged(self, view: SceneView):
        xp = namespace(view.cube_pos)
        n = view.tcp_pos.shape[0]
        first, _, current, two = self._progress(view)
        parts = [
            xp.reshape(xp.concat([view.cube_pos, view.cube_quat], axis=-1), (n, -1)),
            xp.reshape(view.marker_pos, (n, -1)),
            current["position"],
            current["goal"],
            current["position"] - view.tcp_pos,
            current["goal"] - current["position"],
            xp.astype(is_grasping(view, current["subject"]), view.tcp_pos.dtype)[:, None],
            xp.astype(two & first["holds"], view.tcp_pos.dtype)[:, None],
        ]
        return xp.astype(xp.concat(parts, axis=-1), xp.float32)

    def evaluate(self, view: SceneView):
        xp = namespace(view.cube_pos)
        first, second, current, two = self._progress(view)
        success = first["holds"] & second["holds"]
        reward = xp.where(two, (xp.astype(first["holds"], current["reward"].dtype) + current["reward"]) / 2.0,
                          current["reward"])
        return xp.where(success, 1.0, reward), success, self.failed(view)

    # ----------------------------------------------------------------- expert
    def expert_plan(self, view: SceneView) -> list[Waypoint]:
        n = view.tcp_pos.shape[0]
        plans = []
        for i in range(n):
            goals = [view.params[i, 2:2 + GOAL_COLUMNS]]
            if view.params[i, 1] > 1:
                goals.append(view.params[i, 2 + GOAL_COLUMNS:])
            steps = [step for goal in goals for step in _goal_waypoints(view, i, goal)]
            plans.append(steps)
        width = max(len(p) for p in plans)
        for steps in plans:  # the last waypoint is held: it is never reached, and padding repeats it
            steps[-1] = steps[-1][:2] + (0.0,) + steps[-1][3:]
            steps += [steps[-1]] * (width - len(steps))
        return [Waypoint(np.stack([p[w][0] for p in plans]),
                         *(np.array([p[w][f] for p in plans]) for f in range(1, 6))) for w in range(width)]


def _goal_waypoints(view: SceneView, i: int, goal: np.ndarray) -> list[tuple]:
    """Waypoints (target, grip, tolerance, min_steps, speed, carry) of env i's expert for one goal's columns, from
    the positions at episode start. Carrying and pushing steer the cube's centre (a cube held off-centre lands
    where it should: without it 1 in 10 stacks fell beside the base)."""
    kind, subject, destination, start_y = int(goal[0]), int(goal[1]), goal[2], goal[3]
    start = view.cube_pos[i, subject].copy()
    up = np.array([0.0, 0.0, 0.1])
    if KINDS[kind] == "push":
        side = np.array([0.0, destination, 0.0])
        # the closed fingers' pads reach 12 mm either side of the tool point, which stops 16 mm above the table:
        # pushing that low keeps the cube upright (at the cube's centre height 1 in 10 pushes tipped it over)
        # (and it lands clear of a corner of a cube turned 45 degrees: 28 mm out, the fingers' faces 12 mm from it)
        behind = start - side * (CUBE_HALF + 0.03) - np.array([0.0, 0.0, CUBE_HALF - 0.014])
        end = np.array([start[0], start_y + destination * PUSH_DISTANCE, CUBE_HALF])
        return [(behind + 0.8 * up, -1.0, 0.02, 0, 1.0, -1), (behind, -1.0, 0.006, 0, 1.0, -1),
                (end, -1.0, 0.008, 0, 0.3, subject), (end - side * 0.03 + 0.8 * up, -1.0, 0.02, 0, 1.0, -1)]
    if KINDS[kind] == "place":
        place = view.marker_pos[i, int(destination)] + np.array([0.0, 0.0, CUBE_HALF + 0.003])
    else:
        place = view.cube_pos[i, int(destination)] + np.array([0.0, 0.0, 2 * CUBE_HALF + 0.004])
    return [(start + up, 1.0, 0.02, 0, 1.0, -1), (start, 1.0, 0.005, 0, 1.0, -1), (start, -1.0, 1.0, 5, 1.0, -1),
            (start + up, -1.0, 0.02, 0, 1.0, -1), (place + up * 0.5, -1.0, 0.01, 0, 1.0, subject),
            (place, -1.0, 0.008 if kind == 0 else 0.006, 0, 1.0, subject), (place, 1.0, 1.0, 4, 1.0, -1),
            (place + up, 1.0, 0.02, 0, 1.0, -1)]


def _subject_index(subject: str, cubes: np.ndarray) -> int:
    """The cube a goal moves: named by colour, or the extreme cube of a spatial referent."""
    if subject in REFERENTS:
        _, axis, sign = REFERENTS[subject]
        return int(np.argmax(sign * cubes[:, axis]))
    return CUBES.index(subject)


def _goal_params(goal, cubes: np.ndarray) -> list[float]:
    """A goal's parameter columns: kind, subject cube, destination (target, side sign, base cube), start y."""
    subject = _subject_index(goal.subject, cubes)
    destination = {"place": lambda: TARGETS.index(goal.to), "push": lambda: SIDES[goal.to],
                   "stack": lambda: CUBES.index(goal.to)}[goal.kind]()
    return [KINDS.index(goal.kind), subject, destination, cubes[subject, 1]]


def _layout(rng: np.random.Generator, task: SuiteTask) -> tuple[np.ndarray, np.ndarray]:
    """Cube and target positions [3, 2] each where ``task`` is unambiguous and its expert's path is clear: a spatial
    referent's cube leads the others by 4 cm, a pushed cube has no cube (nor the target a first goal fills) in its
    path or behind it."""
    for _ in range(500):
        # x <= 0.09: 69 cm in front of the arm's base at most (farther out, a grasped cube slid out in transit)
        xy = sample_separated_xy(rng, 6, [-0.12, -0.15], [0.09, 0.15], min_dist=0.075)
        cubes, targets = xy[:3], xy[3:]
        if all(_clear(goal, cubes, targets, task.goals[0]) for goal in task.goals):
            return cubes, targets
    raise RuntimeError(f"no layout for {task.name!r} in 500 draws")


def _clear(goal, cubes: np.ndarray, targets: np.ndarray, first) -> bool:
    if goal.subject in REFERENTS:
        _, axis, sign = REFERENTS[goal.subject]
        ranked = np.sort(sign * cubes[:, axis])
        return ranked[-1] - ranked[-2] >= 0.04
    if goal.kind != "push":
        return True
    subject = CUBES.index(goal.subject)
    obstacles = [cubes[j] for j in range(3) if j != subject]
    if first is not goal and first.kind == "place":
        obstacles.append(targets[TARGETS.index(first.to)])
    ahead = [SIDES[goal.to] * (o[1] - cubes[subject, 1]) for o in obstacles]
    return all(abs(o[0] - cubes[subject, 0]) >= 0.065 or not -0.08 < a < PUSH_DISTANCE + 0.07
               for o, a in zip(obstacles, ahead))
