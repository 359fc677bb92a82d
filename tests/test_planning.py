"""Informed RRT*: paths around obstacles, improving cost, informed samples inside the ellipsoid, MuJoCo checks."""

import numpy as np
import pytest
import torch

from sims.arms import get_arm

PANDA = get_arm("panda")
HOME, JOINT_LOW, JOINT_HIGH = PANDA.home, PANDA.joint_low, PANDA.joint_high
from sims.planning.collision import ArmCollisionChecker
from sims.planning.informed_rrt_star import InformedRRTStar, ellipsoid_frame, path_length, sample_informed


def wall_free(q: np.ndarray) -> bool:
    """2-D square [0, 1]^2 with a wall x in [0.45, 0.55], y < 0.8 (the way round is over the top)."""
    return not (0.45 <= q[0] <= 0.55 and q[1] < 0.8)


def test_finds_a_collision_free_path_around_a_wall_and_improves_it():
    planner = InformedRRTStar(wall_free, [0, 0], [1, 1], step=0.1, edge_resolution=0.01, seed=0)
    result = planner.plan([0.1, 0.1], [0.9, 0.1], iterations=3000, shortcut_rounds=0)
    assert result.path is not None
    assert np.allclose(result.path[0], [0.1, 0.1]) and np.allclose(result.path[-1], [0.9, 0.1])
    assert all(planner.edge_free(a, b) for a, b in zip(result.path[:-1], result.path[1:]))
    assert max(q[1] for q in result.path) >= 0.8  # it really went round the wall
    history = np.array(result.best_cost_history)
    first = np.flatnonzero(np.isfinite(history))[0]
    assert np.all(np.diff(history[first:]) <= 1e-12)  # the best cost never increases
    assert history[-1] < 0.9 * history[first]  # and keeps improving after the first solution
    optimum = 2 * np.hypot(0.35, 0.7) + 0.1  # up to the wall's top corner, across it, down to the goal
    assert history[-1] >= optimum - 1e-6


def test_shortcutting_never_lengthens_a_path():
    planner = InformedRRTStar(wall_free, [0, 0], [1, 1], step=0.1, edge_resolution=0.01, seed=1)
    raw = planner.plan([0.1, 0.1], [0.9, 0.1], iterations=800, shortcut_rounds=0)
    short = planner.shortcut(raw.path, rounds=200)
    assert path_length(short) <= path_length(raw.path) + 1e-9
    assert all(planner.edge_free(a, b) for a, b in zip(short[:-1], short[1:]))


def test_informed_samples_stay_inside_the_ellipsoid():
    rng = np.random.default_rng(0)
    start, goal, best = np.array([0.0, 0.0, 0.0]), np.array([1.0, 0.5, -0.2]), 1.6
    frame = ellipsoid_frame(start, goal)
    samples = np.array([sample_informed(rng, start, goal, best, frame) for _ in range(2000)])
    focal_sum = np.linalg.norm(samples - start, axis=1) + np.linalg.norm(samples - goal, axis=1)
    assert (focal_sum <= best + 1e-9).all()
    assert focal_sum.max() > 0.95 * best  # and fill it out to the boundary


def test_arm_plans_around_the_table_with_mujoco_checks():
    from sims import make_env

    env = make_env(task="PickCube", num_envs=1)
    env.reset(seed=0)
    checker = ArmCollisionChecker(env.model)

    assert checker(HOME)
    into_table = HOME.copy()
    into_table[1], into_table[3] = 1.6, -0.8  # shoulder folded forward: the hand goes through the table
    assert not checker(into_table)
    goal = HOME.copy()
    goal[0] = HOME[0] + 1.2  # swing the arm to the side
    planner = InformedRRTStar(checker, JOINT_LOW, JOINT_HIGH, step=0.4, edge_resolution=0.05, seed=0)
    result = planner.plan(HOME, goal, iterations=300)
    assert result.path is not None and all(checker(q) for q in result.path)
    with pytest.raises(ValueError, match="goal"):
        planner.plan(HOME, into_table, iterations=10)


def test_ik_puts_the_tool_on_target_pointing_down():
    from sims.mujoco.kinematics import ArmKinematics
    from sims.planning.planned_expert import solve_ik

    kinematics = ArmKinematics()
    target = np.array([0.05, -0.12, 0.06])
    q = solve_ik(kinematics, target, PANDA.home)
    position, rotation = kinematics.tool_pose(q)
    assert np.linalg.norm(position - target) < 0.002
    assert rotation[:, 2] @ np.array([0.0, 0.0, -1.0]) > 0.99  # the tool's z axis points at the table
    assert solve_ik(kinematics, np.array([2.0, 0.0, 0.5]), q) is None  # out of reach: no solution, no lie


@pytest.mark.parametrize("task", ["Reach", "PushCube", "PickCube", "StackCube", "LangPlaceCube"])
def test_planner_demonstrations_solve_every_task(task):
    from sims import make_env
    from sims.planning.planned_expert import PlannedExpert

    env = make_env(task=task, num_envs=3, controller="joint_delta", autoreset=False, num_threads=1)
    env.reset(seed=1)
    expert = PlannedExpert(env, iterations=300)
    expert.start()
    success = torch.zeros(3, dtype=torch.bool)
    for _ in range(env.max_episode_steps):
        _, _, terminated, truncated, info = env.step(expert.act())
        success |= info["success"]
        if (terminated | truncated).all():
            break
    assert success.all(), (task, success)
    if task != "Reach":  # transit moves above the objects went through Informed RRT*
        assert expert.planned_segments >= 3


def test_record_demos_with_the_planner(tmp_path):
    from embodied.cli.record_demos import main
    from embodied.data.reader import LeRobotDataset

    out = str(tmp_path / "demos")
    main(["--task", "PickCube", "--expert", "planner", "--episodes", "2", "--num-envs", "2", "--cameras",
          "--out", out])
    dataset = LeRobotDataset(out)
    assert len(dataset.episodes) == 2 and dataset[0]["action"].shape == (1, 8)  # joint_delta actions
    with pytest.raises(SystemExit, match="controller='joint_delta'"):
        main(["--task", "Reach", "--expert", "planner", "--controller", "ee_delta_pos", "--episodes", "1",
              "--cameras", "--out", str(tmp_path / "bad")])
