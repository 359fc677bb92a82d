"""Scripted experts solve every task; rendering shows the commanded object; gymnasium registration."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import sims  # noqa: F401  (registers the gymnasium ids)
from sims import make_env
from sims.experts import WaypointExpert
from sims.tasks.base import is_grasping

TASKS = ["Reach", "PushCube", "PickCube", "StackCube", "LangPlaceCube"]


@pytest.mark.parametrize("task", TASKS)
def test_scripted_expert_success_rate_at_least_95_percent(task):
    env = make_env(task=task, num_envs=100, autoreset=False)
    env.reset(seed=123)
    expert = WaypointExpert(env)
    succeeded = torch.zeros(100, dtype=torch.bool)
    for _ in range(env.max_episode_steps):
        _, _, _, _, info = env.step(expert.act())
        succeeded |= info["success"]
    assert succeeded.float().mean().item() >= 0.95


def test_a_cube_held_in_the_air_counts_as_grasped_whatever_its_yaw():
    """The fingers close across cubes turned up to 45 degrees: every step the expert holds the cube aloft is a grasp."""
    env = make_env(task="PickCube", num_envs=32, autoreset=False)
    env.reset(seed=11)
    expert = WaypointExpert(env)
    first_cube = np.zeros(32, dtype=np.int64)
    held = grasped = 0
    for _ in range(env.max_episode_steps):
        env.step(expert.act())
        view = env.scene_view()
        aloft = (view.cube_pos[:, 0, 2] > 0.035) & (np.linalg.norm(view.tcp_pos - view.cube_pos[:, 0], axis=-1) < 0.02)
        held += int(aloft.sum())
        grasped += int((is_grasping(view, first_cube) & aloft).sum())
    assert held > 500 and grasped / held >= 0.97, (held, grasped)


def test_expert_refuses_joint_controller():
    env = make_env(task="Reach", num_envs=1, controller="joint_delta")
    with pytest.raises(ValueError, match="ee_delta_pos"):
        WaypointExpert(env)


def test_rendering_is_non_constant_and_shows_the_commanded_cube():
    env = make_env(task="LangPlaceCube", num_envs=2, cameras=("front", "wrist"), image_size=(64, 64))
    obs, _ = env.reset(seed=0)
    front = obs["rgb"]["front"]
    assert front.shape == (2, 64, 64, 3) and front.dtype == torch.uint8
    assert front.float().std() > 10 and obs["rgb"]["wrist"].float().std() > 5
    # Hide the commanded cube (move it far away) and the image must change where it was.
    cube = int(env.params[0, 0])
    before = front[0].clone()
    adr = env.cube_qpos[cube]
    env.qpos[0, adr:adr + 3] = [5.0, 5.0, -5.0]
    after = env._observe()["rgb"]["front"][0]
    changed = (np.abs(before.numpy().astype(int) - after.astype(int)).sum(-1) > 60).sum()
    assert changed >= 4, "the commanded cube is not visible in the front camera"
    # Its colour is there: the dominant channel of changed pixels matches the cube's colour name.
    name = obs["instruction"][0].split()[2]
    channel = {"red": 0, "green": 1, "blue": 2}[name]
    mask = np.abs(before.numpy().astype(int) - after.astype(int)).sum(-1) > 60
    assert before.numpy()[mask].mean(0).argmax() == channel


def _pixel(env, camera: str, point) -> tuple[int, int]:
    """Row and column of a world point in an env camera image (MuJoCo pinhole: the camera looks along -z)."""
    import mujoco

    data = mujoco.MjData(env.model)
    mujoco.mj_kinematics(env.model, data)
    mujoco.mj_camlight(env.model, data)
    cam = env.model.camera(camera).id
    rel = data.cam_xmat[cam].reshape(3, 3).T @ (np.asarray(point) - data.cam_xpos[cam])  # camera frame
    height, width = env.image_size
    focal = height / 2 / np.tan(np.radians(env.model.cam_fovy[cam]) / 2)
    return int(height / 2 - focal * rel[1] / -rel[2]), int(width / 2 + focal * rel[0] / -rel[2])


@pytest.mark.parametrize("task", ["Reach", "PickCube"])
def test_a_floating_goal_stands_on_a_stem_down_to_the_table(task):
    """The goal sphere hangs on a green post, so one camera sees its spot on the table and its height."""
    env = make_env(task=task, num_envs=1, image_size=(96, 96), autoreset=False)
    env.reset(seed=0)
    if task == "PickCube":
        env.qpos[0, env.cube_qpos[0]:env.cube_qpos[0] + 3] = [5.0, 5.0, -5.0]  # nothing in front of the post
    env.mocap_pos[0, 0] = [0.0, 0.12, 0.22]
    image = env.render_frames("front")[0].astype(int)
    for z in (0.04, 0.1, 0.16):  # along the post, below the sphere (radius 3 cm)
        row, col = _pixel(env, "front", [0.0, 0.12, z])
        r, g, b = image[row, col]
        assert g > r + 40 and g > b + 40, (z, (row, col), (r, g, b))
    row, col = _pixel(env, "front", [0.0, 0.0, 0.1])  # the same height, 12 cm aside: no post there
    assert not image[row, col, 1] > image[row, col, 0] + 40


def test_the_side_camera_sees_the_goal_height_and_an_unknown_camera_error_lists_the_cameras():
    env = make_env(task="PickCube", num_envs=1, image_size=(64, 64), autoreset=False)
    env.reset(seed=0)
    env.qpos[0, env.cube_qpos[0]:env.cube_qpos[0] + 3] = [5.0, 5.0, -5.0]  # nothing in front of the goal
    rows = []
    for z in (0.08, 0.25):  # the ends of PickCube's goal heights
        env.mocap_pos[0, 0] = [0.05, 0.0, z]
        image = env.render_frames("side")[0].astype(int)
        row, col = _pixel(env, "side", [0.05, 0.0, z])
        assert image[row, col, 1] > image[row, col, 0] + 40, (z, image[row, col])  # the green sphere is there
        rows.append(row)
    assert rows[0] - rows[1] > 15  # 17 cm of height: more than a quarter of the image
    with pytest.raises(ValueError, match="the scene has \\['front', 'side', 'wrist'\\]"):
        make_env(task="PickCube", num_envs=1, cameras=("top",))


@pytest.mark.parametrize("task", TASKS)
def test_gymnasium_registration_passes_check_env(task):
    env = gym.make(f"embodied/{task}-v0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env.unwrapped)
    obs, info = env.reset(seed=0)
    assert obs.shape == env.observation_space.shape and isinstance(info["instruction"], str)


def test_gymnasium_rgb_mode():
    env = gym.make("embodied/PickCube-v0", obs_mode="rgb")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env.unwrapped)
    obs, _ = env.reset(seed=0)
    batched = make_env(task="PickCube", num_envs=1, cameras=("front",), autoreset=False)
    expected, _ = batched.reset(seed=0)
    # the gymnasium view is the batched env's first world: the same image and proprioception for the same seed
    assert obs["front"].dtype == np.uint8 and np.array_equal(obs["front"], expected["rgb"]["front"][0].numpy())
    np.testing.assert_array_equal(obs["state"], expected["state"][0].numpy())
    action = np.array([0.0, 0.0, -1.0, 1.0], dtype=np.float32)  # down, gripper open
    stepped, *_ = env.step(action)
    expected, *_ = batched.step(torch.from_numpy(action)[None])
    assert np.array_equal(stepped["front"], expected["rgb"]["front"][0].numpy())
    assert not np.array_equal(stepped["front"], obs["front"])  # the arm moved in the picture
    other, _ = env.reset(seed=1)
    assert not np.array_equal(other["front"], obs["front"])  # another scene
