"""backend=mujoco_warp: MuJoCo Warp physics (Warp's CPU device here) against the mujoco backend."""

import pytest
import torch

from sims import make_env
from sims.experts import WaypointExpert
from sims.mujoco.randomization import Randomization
from sims.tasks import TASKS
from tests.backend_run import train_briefly


@pytest.mark.parametrize("task", sorted(TASKS))
def test_same_seed_and_reset_id_give_the_mujoco_backends_initial_state(task):
    warp = make_env("mujoco_warp", task=task, num_envs=3)
    cpu = make_env("mujoco", task=task, num_envs=3)
    ow, _ = warp.reset(seed=5, reset_ids=[4, 0, 9])
    oc, _ = cpu.reset(seed=5, reset_ids=[4, 0, 9])
    for key in ("state", "privileged"):
        torch.testing.assert_close(ow[key], oc[key], atol=1e-6, rtol=0)  # float32 kinematics on the device
    assert ow["instruction"] == oc["instruction"]


def test_free_space_trajectories_agree_within_1e_4():
    warp, cpu = (make_env(b, task="Reach", num_envs=2) for b in ("mujoco_warp", "mujoco"))
    warp.reset(seed=1), cpu.reset(seed=1)
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        action = torch.rand(2, warp.action_spec.dim, generator=gen) * 2 - 1
        ow, rw, *_ = warp.step(action)
        oc, rc, *_ = cpu.step(action)
    assert (ow["state"] - oc["state"]).abs().max() < 1e-4
    assert (rw - rc).abs().max() < 1e-4


def test_contact_rich_episodes_agree_within_2_cm_and_the_expert_succeeds_on_both():
    """Grasping amplifies float32 vs float64 differences: positions stay within 2 cm, outcomes are the same."""
    envs = [make_env(b, task="PickCube", num_envs=2, autoreset=False) for b in ("mujoco_warp", "mujoco")]
    for env in envs:
        env.reset(seed=2)
    experts = [WaypointExpert(env) for env in envs]
    success = [torch.zeros(2, dtype=torch.bool) for _ in envs]
    for _ in range(envs[0].max_episode_steps):
        action = experts[1].act()
        experts[0].act()  # keeps its own waypoint bookkeeping in step
        out = [env.step(action) for env in envs]
        for s, o in zip(success, out):
            s |= o[4]["success"]
        gap = (out[0][0]["state"][:, -3:] - out[1][0]["state"][:, -3:]).abs().max()  # tool position
        cube = (out[0][0]["privileged"][:, :3] - out[1][0]["privileged"][:, :3]).abs().max()
        assert gap < 0.02 and cube < 0.02, (gap, cube)
        if (out[1][2] | out[1][3]).all():
            break
    assert success[0].all() and success[1].all()


def test_ppo_trains_on_mujoco_warp_through_the_runner(tmp_path):
    train_briefly(tmp_path, "mujoco_warp", "Reach", num_envs=4, rollout_steps=5)


def test_unsupported_warp_features_are_clear_errors():
    with pytest.raises(ValueError, match="physical domain randomisation"):
        make_env("mujoco_warp", task="PickCube", num_envs=1, randomization=Randomization(friction=(0.5, 1.5)))
    env = make_env("mujoco_warp", task="PickCube", num_envs=1)
    with pytest.raises(NotImplementedError, match="use backend=mujoco"):
        env.limit_gripper_force(10.0)
