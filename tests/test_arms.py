"""Arm models as data: every registered arm's simulated kinematics against its published DH table, its home pose,
its reach over the tasks' workspace, and the env, controllers and experts for any joint count."""

import mujoco
import numpy as np
import pytest
import torch

from sims import make_env
from sims.arms import ARMS, get_arm
from sims.mujoco.controllers import TOP_DOWN
from sims.mujoco.kinematics import ArmKinematics
from sims.planning.planned_expert import solve_ik

torch.set_num_threads(1)
ARM_NAMES = sorted(ARMS.names())


def test_the_four_published_arms_are_registered_with_their_joint_counts():
    assert {name: get_arm(name).dof for name in ("panda", "ur5e", "xarm7", "xarm6")} == \
        {"panda": 7, "ur5e": 6, "xarm7": 7, "xarm6": 6}


@pytest.mark.parametrize("name", ARM_NAMES)
def test_simulated_flange_pose_matches_an_independent_dh_computation_within_a_millimetre(name):
    arm = get_arm(name)
    kinematics = ArmKinematics(arm)
    hand = kinematics.model.body("hand").id
    rng = np.random.default_rng(0)
    yaw = np.array([[np.cos(arm.hand_yaw), -np.sin(arm.hand_yaw), 0], [np.sin(arm.hand_yaw), np.cos(arm.hand_yaw), 0],
                    [0, 0, 1]])
    for _ in range(25):
        q = rng.uniform(np.maximum(arm.joint_low, -np.pi), np.minimum(arm.joint_high, np.pi))
        kinematics._set(q)
        expected = arm.flange_pose(q)  # 4x4 in the arm's base frame, from the DH rows alone
        position = kinematics.data.xpos[hand] - np.asarray(arm.base_pos)
        rotation = kinematics.data.xmat[hand].reshape(3, 3)
        assert np.abs(position - expected[:3, 3]).max() < 1e-3, (q, position, expected[:3, 3])
        assert np.abs(rotation - expected[:3, :3] @ yaw).max() < 1e-5  # MJCF numbers carry 6 digits


def test_the_dh_computation_itself_matches_a_hand_worked_ur5e_pose():
    """UR5e at q = 0 (standard DH): the arm stretched along -x, the flange at x = a2 + a3, y = -(d4 + d6), z = d1 - d5."""
    ur = get_arm("ur5e")
    pose = ur.flange_pose(np.zeros(6))
    (_, d1, _, _), (a2, _, _, _), (a3, _, _, _), (_, d4, _, _), (_, d5, _, _), (_, d6, _, _) = ur.dh
    np.testing.assert_allclose(pose[:3, 3], [a2 + a3, -(d4 + d6), d1 - d5], atol=1e-9)


@pytest.mark.parametrize("name", ARM_NAMES)
def test_home_pose_points_the_tool_down_over_the_table(name):
    arm = get_arm(name)
    position, rotation = ArmKinematics(arm).tool_pose(arm.home)
    angle = np.degrees(np.arccos(np.clip((np.trace(TOP_DOWN.T @ rotation) - 1) / 2, -1, 1)))
    assert angle < 3.0, angle
    assert -0.35 < position[0] < 0.1 and abs(position[1]) < 0.05 and 0.15 < position[2] < 0.35, position


@pytest.mark.parametrize("name", ARM_NAMES)
def test_tool_reaches_pointing_down_everywhere_the_tasks_put_cubes_and_goals(name):
    arm = get_arm(name)
    kinematics = ArmKinematics(arm)
    for x in (-0.15, -0.05, 0.05):  # the Panda's own top-down reach ends near x = 0.1 (0.7 m from its mount)
        for y in (-0.15, 0.0, 0.15):
            for z in (0.02, 0.25):
                q = solve_ik(kinematics, np.array([x, y, z]), arm.home, iterations=400)
                assert q is not None, (x, y, z)
                assert np.degrees(np.arccos(np.clip((np.trace(TOP_DOWN.T @ kinematics.tool_pose(q)[1]) - 1) / 2,
                                                    -1, 1))) < 5


@pytest.mark.parametrize("name", ["ur5e", "xarm6"])
def test_envs_controllers_and_states_follow_the_arms_joint_count(name):
    arm = get_arm(name)
    env = make_env(task="Reach", num_envs=2, arm=name, controller="joint_delta", autoreset=False)
    obs, _ = env.reset(seed=0)
    assert env.action_spec.dim == arm.dof + 1 and obs["state"].shape == (2, 2 * arm.dof + 5)
    np.testing.assert_allclose(obs["state"][0, :arm.dof].numpy(), arm.home, atol=1e-6)
    action = torch.zeros(2, arm.dof + 1)
    action[:, 0] = 1.0  # joint 1 at full speed for 5 steps: targets 0.1 rad ahead of where it is
    for _ in range(5):
        obs, *_ = env.step(action)
    # the servos lag their targets as the Panda's do (0.295 rad after these 5 steps)
    assert obs["state"][0, 0] - arm.home[0] == pytest.approx(0.295, abs=0.04)
    np.testing.assert_allclose(obs["state"][0, 1:arm.dof].numpy(), arm.home[1:], atol=0.02)
    ee = make_env(task="Reach", num_envs=2, arm=name, autoreset=False)
    obs, _ = ee.reset(seed=0)
    start = obs["state"][0, -3:].clone()
    for _ in range(4):
        obs, *_ = ee.step(torch.tensor([[1.0, 0.0, 0.0, 1.0]] * 2))  # +x, targets 5 cm ahead of the tool
    # the Panda: 0.099 along x, 0.000 along y, -0.006 along z; the joint-step cap (0.075 rad per command) slows the
    # six-joint arms, whose shoulders carry more of the move: the UR5e 0.060, the xArm6 0.045
    moved = obs["state"][0, -3:] - start
    assert moved[0] > 0.04 and abs(moved[1]) < 0.01 and abs(moved[2]) < 0.02, moved


@pytest.mark.parametrize("name", ["panda", "ur5e", "xarm6", "xarm7"])
def test_link_capsules_touch_the_table_when_the_arm_is_driven_into_it(name):
    arm = get_arm(name)
    model = make_env(task="Reach", num_envs=1, arm=name, autoreset=False).model
    data = mujoco.MjData(model)
    qpos_adr = [model.jnt_qposadr[model.joint(j).id] for j in arm.joint_names]
    table = model.geom("table").id
    link_geoms = {g for g in range(model.ngeom) if model.geom_contype[g] == 4
                  and mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, model.geom_bodyid[g]).startswith("link")}
    assert len(link_geoms) == arm.dof - 1  # every link but the first, which turns above its mount
    touching = set()
    for joint in (1, 2):  # bend the shoulder, then the elbow, until the links lie in the table
        for bend in np.linspace(-2.5, 2.5, 21):
            q = arm.home.copy()
            q[joint] = np.clip(q[joint] + bend, arm.joint_low[joint], arm.joint_high[joint])
            data.qpos[qpos_adr] = q
            mujoco.mj_forward(model, data)
            touching |= {int(g) for c in data.contact[:data.ncon] for g in (c.geom1, c.geom2)
                         if table in (c.geom1, c.geom2) and g in link_geoms}
    assert touching, "no link ever touched the table"


def test_a_dataset_recorded_with_another_arm_is_refused_by_name(tmp_path):
    from embodied.cli.record_demos import main as record
    from embodied.data.compatibility import check_datasets
    from policies import make_policy

    record(["--task", "Reach", "--episodes", "2", "--num-envs", "2", "--arm", "ur5e", "--cameras",
            "--out", str(tmp_path / "ur")])
    policy = make_policy("mlp", obs_dim=17, action_dim=4, hidden=[8])
    check_datasets([str(tmp_path / "ur")], make_env(task="Reach", num_envs=1, arm="ur5e"), policy)  # same arm: fine
    xarm6 = make_env(task="Reach", num_envs=1, arm="xarm6")  # same sizes (6 joints), another arm
    with pytest.raises(ValueError, match=r"recorded with the ur5e arm \(robot_type 'embodied_sim_ur5e'\) but "
                                         r"env.arm=xarm6: train with env.arm=ur5e"):
        check_datasets([str(tmp_path / "ur")], xarm6, policy)
