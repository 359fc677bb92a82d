"""The tabletop task suite (env=tabletop_suite): tasks per reset id, held-out splits, success by hand, experts."""

import numpy as np
import pytest
import torch

from embodied.rollout.task_table import episode_tasks
from sims import make_env
from sims.experts import WaypointExpert
from sims.tasks import make_task
from sims.tasks.base import CUBE_HALF, SceneView
from sims.tasks.suite_catalog import FAMILIES, SUITES, TEMPLATES, suite_tasks
from sims.tasks.tabletop_suite import PUSHED, TabletopSuite
from tests.env_contract import CHECKS


def suite_env(num_envs: int, suite: str = "tabletop", split: str = "train", **kwargs):
    return make_env("mujoco", task="TabletopSuite", suite=suite, split=split, num_envs=num_envs, **kwargs)


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_the_batched_env_contract(check):
    check(lambda n, **kw: suite_env(n, **kw), lambda obs: obs["privileged"])


def test_reset_id_r_runs_task_r_mod_t_in_wording_r_div_t():
    env = suite_env(4, suite="tabletop_goal")
    tasks = env.task.tasks
    assert len(tasks) == 8
    obs, _ = env.reset(seed=0, reset_ids=[0, 8, 16, 3])
    wordings = TEMPLATES["push"][0]
    assert obs["instruction"][:3] == [w.format(s="the red cube", side="left") for w in wordings]
    assert obs["instruction"][3] == "push the blue cube to the right"
    assert env.scene_view().params[:, 0].tolist() == [0, 0, 0, 3]
    assert episode_tasks(env, "TabletopSuite", 10)[9] == "1: goal: push the green cube to the left"


def test_held_out_paraphrases_and_compositions_never_occur_in_training():
    train = suite_tasks("tabletop", "train")
    train_texts = {t.instruction(v, held_out_wording=False) for t in train for v in range(6)}
    paraphrases = {t.instruction(v, held_out_wording=True) for t in train for v in range(6)}
    assert len(train) == 21 and not train_texts & paraphrases
    pairs = {(g.kind, g.subject, g.to) for t in train for g in t.goals}
    held_out = suite_tasks("tabletop", "composition")
    assert len(held_out) == 8
    for task in held_out:
        if len(task.goals) == 1:  # a colour x goal pairing no training task has, its parts all seen in training
            goal = task.goals[0]
            assert (goal.kind, goal.subject, goal.to) not in pairs
            assert any(g.subject == goal.subject for t in train for g in t.goals)
            assert any((g.kind, g.to) == (goal.kind, goal.to) for t in train for g in t.goals)
        else:  # a pairing of two training goals that no training task joins
            assert all((g.kind, g.subject, g.to) in pairs for g in task.goals)
            assert task.goals not in {t.goals for t in train}
    assert sum(len(FAMILIES[f][0]) for f in SUITES["tabletop"]) == 21


def test_bad_suite_split_and_task_options_are_refused_by_name():
    with pytest.raises(ValueError, match="env.suite='tabletop_x' is not a suite; choose one of"):
        make_task("TabletopSuite", suite="tabletop_x", split="train")
    with pytest.raises(ValueError, match="env.split='test' is not a split"):
        make_task("TabletopSuite", suite="tabletop", split="test")
    with pytest.raises(ValueError, match="has no held-out compositions"):
        make_task("TabletopSuite", suite="tabletop_spatial", split="composition")
    with pytest.raises(ValueError, match="need env.task=TabletopSuite"):
        make_task("PickCube", suite="tabletop", split="train")


def _view(cubes, params, tcp=(0.3, 0.3, 0.3), gap=0.08, markers=((0.1, 0.1, 0.001), (0.1, -0.1, 0.001),
                                                                (-0.1, 0.0, 0.001))) -> SceneView:
    quat = np.tile([1.0, 0, 0, 0], (1, 3, 1))
    return SceneView(np.array([tcp], dtype=np.float64), np.array([gap]), np.array([cubes], dtype=np.float64), quat,
                     np.zeros((1, 3, 3)), np.array([markers], dtype=np.float64), np.array([params], dtype=np.float64))


PLACE_RED_ON_YELLOW = [0, 0, 0, 0]  # kind place, subject red (0), target yellow (0), start y (unused)
PUSH_BLUE_LEFT_FROM_0 = [1, 2, 1.0, 0.0]  # kind push, subject blue, side +1 (left), start y 0
STACK_GREEN_ON_RED = [2, 1, 0, 0]


def _success(cubes, goals, **kwargs) -> bool:
    params = [0, len(goals), *goals[0], *goals[-1]]
    return bool(TabletopSuite().evaluate(_view(cubes, params, **kwargs))[1][0])


def test_success_of_each_goal_kind_by_hand():
    elsewhere = [(-0.1, 0.1, CUBE_HALF), (0.0, -0.15, CUBE_HALF), (-0.1, -0.1, CUBE_HALF)]
    on_yellow = [(0.1, 0.1, CUBE_HALF)] + elsewhere[1:]
    assert _success(on_yellow, [PLACE_RED_ON_YELLOW])
    assert not _success(elsewhere, [PLACE_RED_ON_YELLOW])
    assert not _success(on_yellow, [PLACE_RED_ON_YELLOW], tcp=(0.1, 0.1, CUBE_HALF), gap=2 * CUBE_HALF)  # still held
    pushed = [elsewhere[0], elsewhere[1], (0.05, PUSHED + 0.005, CUBE_HALF)]
    short = [elsewhere[0], elsewhere[1], (0.05, PUSHED - 0.01, CUBE_HALF)]
    wrong_side = [elsewhere[0], elsewhere[1], (0.05, -0.1, CUBE_HALF)]
    assert _success(pushed, [PUSH_BLUE_LEFT_FROM_0])
    assert not _success(short, [PUSH_BLUE_LEFT_FROM_0]) and not _success(wrong_side, [PUSH_BLUE_LEFT_FROM_0])
    stacked = [elsewhere[0], (-0.1, 0.105, 3 * CUBE_HALF), elsewhere[2]]
    beside = [elsewhere[0], (-0.1, 0.14, CUBE_HALF), elsewhere[2]]
    assert _success(stacked, [STACK_GREEN_ON_RED]) and not _success(beside, [STACK_GREEN_ON_RED])


def test_a_long_task_needs_both_goals_and_its_task_state_moves_to_the_second_once_the_first_holds():
    goals = [PLACE_RED_ON_YELLOW, PUSH_BLUE_LEFT_FROM_0]
    first_only = [(0.1, 0.1, CUBE_HALF), (0.0, -0.15, CUBE_HALF), (0.05, 0.0, CUBE_HALF)]
    both = [(0.1, 0.1, CUBE_HALF), (0.0, -0.15, CUBE_HALF), (0.05, 0.09, CUBE_HALF)]
    second_only = [(-0.1, 0.1, CUBE_HALF), (0.0, -0.15, CUBE_HALF), (0.05, 0.09, CUBE_HALF)]
    assert not _success(first_only, goals) and not _success(second_only, goals) and _success(both, goals)
    suite = TabletopSuite()
    params = [0, 2, *goals[0], *goals[1]]
    start = suite.privileged(_view(second_only, params))[0]
    later = suite.privileged(_view(first_only, params))[0]
    np.testing.assert_allclose(start[30:33], second_only[0], atol=1e-6)  # now: the red cube, to the yellow target
    np.testing.assert_allclose(start[33:36], (0.1, 0.1, CUBE_HALF + 0.001), atol=1e-6)  # on the disc
    np.testing.assert_allclose(later[30:33], first_only[2], atol=1e-6)  # then: the blue cube, 10 cm to its left
    np.testing.assert_allclose(later[33:36], (0.05, 0.10, CUBE_HALF), atol=1e-6)
    assert start[-1] == 0.0 and later[-1] == 1.0


def test_spatial_referents_name_the_extreme_cube_with_a_margin_and_pushes_have_a_clear_path():
    env = suite_env(48, suite="tabletop_spatial")
    env.reset(seed=1, reset_ids=np.arange(48))
    view = env.scene_view()
    axis_sign = {0: (1, 1.0), 1: (1, -1.0), 2: (0, -1.0), 3: (0, 1.0)}  # leftmost, rightmost, nearest, farthest
    for i in range(48):
        axis, sign = axis_sign[int(view.params[i, 0])]
        values = sign * view.cube_pos[i, :, axis]
        assert int(view.params[i, 3]) == int(np.argmax(values))
        assert np.sort(values)[-1] - np.sort(values)[-2] >= 0.04
    env = suite_env(40, suite="tabletop_goal")
    env.reset(seed=1, reset_ids=np.arange(40))
    view = env.scene_view()
    for i in np.nonzero(view.params[:, 2] == 1)[0]:  # pushes: no other cube within 6.5 cm of the path in x
        subject, side = int(view.params[i, 3]), view.params[i, 4]
        for j in set(range(3)) - {subject}:
            ahead = side * (view.cube_pos[i, j, 1] - view.cube_pos[i, subject, 1])
            assert abs(view.cube_pos[i, j, 0] - view.cube_pos[i, subject, 0]) >= 0.065 or not -0.08 < ahead < 0.17


@pytest.mark.parametrize("split", ["train", "composition"])
def test_the_expert_solves_every_task(split):
    """Ten episodes of each task (mixed in one batch: the expert's waypoints differ per env); measured with 100
    per task: >= 0.99 on every one (README)."""
    env = suite_env(10 * len(suite_tasks("tabletop", split)), split=split, autoreset=False)
    env.reset(seed=5, reset_ids=np.arange(env.num_envs))
    expert = WaypointExpert(env)
    success = torch.zeros(env.num_envs, dtype=torch.bool)
    done = torch.zeros(env.num_envs, dtype=torch.bool)
    while not done.all():  # success ends a suite's episode
        _, _, term, trunc, info = env.step(expert.act())
        success |= info["success"]
        done |= term | trunc
    per_task = success.reshape(10, -1).float().mean(0)  # reset id r: task r % T
    assert per_task.min() >= 0.9 and per_task.mean() >= 0.97, per_task


def test_recorded_suite_demos_end_k_frames_after_success_and_replay_their_tasks(tmp_path):
    """embodied-record-demos --suite: episode j runs task j % T; each ends K=2 frames after its first success."""
    from embodied.cli.record_demos import main
    from embodied.data.reader import LeRobotDataset

    main(["--suite", "tabletop_goal", "--episodes", "8", "--num-envs", "8", "--cameras", "--frames-after-success",
          "2", "--out", str(tmp_path / "demos")])
    dataset = LeRobotDataset(str(tmp_path / "demos"))
    assert len(dataset.episodes) == 8
    for row in dataset.episodes:
        reset_id = int(row["scene/reset_id"])
        replay = suite_env(1, suite="tabletop_goal", autoreset=False, terminate_on_success=False)
        obs, _ = replay.reset(seed=int(row["scene/seed"]), reset_ids=[reset_id])
        assert row["tasks"] == [obs["instruction"][0]] and replay.scene_view().params[0, 0] == reset_id % 8
        actions = dataset.columns["action"][row["dataset_from_index"]:row["dataset_to_index"]]
        first_success = next(t for t, action in enumerate(actions)
                             if replay.step(torch.as_tensor(action)[None])[4]["success"][0])
        assert len(actions) == first_success + 1 + 2


def _config(overrides: list[str]):
    from hydra import compose, initialize_config_dir

    from embodied.cli import train as train_cli

    with initialize_config_dir(config_dir=train_cli.CONFIG_DIR, version_base=None):
        cfg = compose("train", overrides=overrides)
    return train_cli.to_typed(cfg, train_cli.TrainConfig, "t")


def test_the_suite_experiment_validates_and_env_suite_needs_the_suite_task():
    from embodied.config.schema import validate

    typed = _config(["experiment=vla_sft_suite", "data.paths=[demos/tabletop]", "env.split=composition"])
    validate(typed)
    assert (typed.env.task, typed.env.suite, typed.env.split, typed.policy.cameras) == (
        "TabletopSuite", "tabletop", "composition", ["front", "wrist"])
    with pytest.raises(ValueError, match="env.suite=tabletop picks tasks of TabletopSuite"):
        validate(_config(["env=pick_cube", "env.suite=tabletop"]))


def test_the_expert_replans_a_slot_for_the_different_task_its_next_episode_runs():
    """With automatic resets a slot's next episode is another task (reset id r + N): every waypoint field of that
    slot, not only the targets, must follow it."""
    env = suite_env(7, autoreset=True)  # 7 slots, 21 tasks: each slot's next episode runs another task
    env.reset(seed=2)
    expert = WaypointExpert(env)
    finished = successes = 0
    for _ in range(3 * env.max_episode_steps):
        _, _, term, trunc, info = env.step(expert.act())
        finished += int((term | trunc).sum())
        successes += int(info["success"].sum())
    assert finished >= 21 and successes >= 0.9 * finished, (successes, finished)


def test_scores_and_task_state_are_the_same_on_torch_tensors_as_on_numpy():
    """mujoco_warp scores on the device: the array-generic code must give numpy's numbers on torch tensors."""
    env = suite_env(21, autoreset=False, terminate_on_success=False)
    env.reset(seed=4, reset_ids=np.arange(21))
    expert = WaypointExpert(env)
    for _ in range(40):  # mid-episode: cubes held, pushed, some goals reached
        env.step(expert.act())
    view = env.scene_view()
    as_torch = SceneView(*(torch.from_numpy(np.array(getattr(view, f))) for f in view.__dataclass_fields__))
    for mine, theirs in zip(env.task.evaluate(view), env.task.evaluate(as_torch)):
        np.testing.assert_allclose(theirs.numpy(), mine, atol=1e-9)
    np.testing.assert_allclose(env.task.privileged(as_torch).numpy(), env.task.privileged(view), atol=1e-6)
