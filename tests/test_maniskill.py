"""backend=maniskill: ManiSkill3 tasks through the batched env contract (physx_cpu, one process per env).

`make test` installs ManiSkill and a software Vulkan device (.venv/lavapipe/env.sh) before running these.
"""

import numpy as np
import pytest
import torch

from sims import make_env
from sims.maniskill.tasks import TASKS
from tests.backend_run import train_briefly


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_task_runs_through_the_batched_api(task):
    env = make_env("maniskill", task=task, num_envs=2)
    try:
        obs, info = env.reset(seed=3)
        assert obs["state"].shape == (2, env.observation_spec.state_dim) and obs["state"].dtype == torch.float32
        assert obs["instruction"] == [TASKS[task].instruction] * 2
        assert torch.equal(info["reset_ids"], torch.tensor([0, 1]))
        assert not torch.equal(obs["state"][0], obs["state"][1])  # two different episodes
        _, reward, terminated, truncated, step_info = env.step(torch.zeros(2, env.action_spec.dim))
        assert reward.shape == (2,) and ((reward >= 0) & (reward <= 1)).all()  # normalised dense reward
        assert step_info["success"].dtype == torch.bool and not (terminated | truncated).any()
    finally:
        env.close()


def test_same_seed_and_reset_id_give_the_same_initial_state_at_any_index():
    a = make_env("maniskill", task="PickCube", num_envs=2)
    b = make_env("maniskill", task="PickCube", num_envs=3)
    try:
        obs_a, _ = a.reset(seed=7)
        obs_b, _ = b.reset(seed=7, reset_ids=[1, 4, 0])
        assert torch.equal(obs_b["state"][0], obs_a["state"][1])
        assert torch.equal(obs_b["state"][2], obs_a["state"][0])
        assert not torch.equal(obs_b["state"][1], obs_a["state"][0])
    finally:
        a.close(), b.close()


def test_time_limit_autoreset_and_chunks_are_ours():
    env = make_env("maniskill", task="PushCube", num_envs=2, max_episode_steps=3)
    try:
        first, _ = env.reset(seed=0)
        zero = torch.zeros(2, 2, env.action_spec.dim)
        _, rewards, _, truncated, info = env.chunk_step(zero)
        assert rewards.shape == (2, 2) and info["step_mask"].all() and not truncated.any()
        obs, rewards, _, truncated, info = env.chunk_step(zero)  # the episode ends after its first step
        assert truncated.all() and torch.equal(info["step_mask"], torch.tensor([[True, False]] * 2))
        assert "final_obs" in info and torch.equal(info["reset_ids"], torch.tensor([0, 1]))  # the ended episodes
        assert env.reset_ids.tolist() == [2, 3]
        assert not torch.equal(obs["state"], first["state"])  # new episodes began
    finally:
        env.close()


def test_state_snapshot_restores_the_simulation():
    env = make_env("maniskill", task="PickCube", num_envs=2)
    try:
        env.reset(seed=1)
        action = torch.full((2, env.action_spec.dim), 0.5)
        snapshot = env.get_state()
        after, *_ = env.step(action)
        env.set_state(snapshot)
        again, *_ = env.step(action)
        np.testing.assert_allclose(again["state"].numpy(), after["state"].numpy(), atol=1e-4)
    finally:
        env.close()


def test_bad_maniskill_settings_are_clear_errors():
    with pytest.raises(ValueError, match="available with backend=maniskill"):
        make_env("maniskill", task="OpenDrawer", num_envs=1)
    with pytest.raises(ValueError, match="base_camera"):
        make_env("maniskill", task="PickCube", num_envs=1, cameras=("front",))


def test_cameras_give_robot_state_and_rgb_images():
    env = make_env("maniskill", task="PickCube", num_envs=2, cameras=("base_camera",), image_size=(32, 24))
    try:
        obs, _ = env.reset(seed=0)
        images = obs["rgb"]["base_camera"]
        assert images.shape == (2, 32, 24, 3) and images.dtype == torch.uint8 and images.float().std() > 5
        assert env.observation_spec.cameras == ("base_camera",)
        assert obs["state"].shape == (2, env.observation_spec.state_dim) == (2, 29)  # qpos, qvel, tcp, goal, grasp
        moved, *_ = env.step(torch.full((2, env.action_spec.dim), 0.8))
        assert not torch.equal(moved["rgb"]["base_camera"], images)  # the arm moved in the picture
    finally:
        env.close()


def test_ppo_trains_on_a_maniskill_task_through_the_runner(tmp_path):
    train_briefly(tmp_path, "maniskill", "PushCube", num_envs=2, rollout_steps=8)
