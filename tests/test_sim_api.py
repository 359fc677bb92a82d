"""Batched simulator contract: determinism, reset ids, auto-reset, chunks, bad actions, clipping."""

import numpy as np
import pytest
import torch

from sims import make_env


def rollout(env, actions):
    states = []
    for a in actions:
        obs, *_ = env.step(a)
        states.append(obs["privileged"].clone())
    return torch.stack(states)


def test_same_seed_and_reset_id_give_same_initial_state_and_trajectory():
    torch.manual_seed(0)
    actions = [torch.rand(4, 4) * 2 - 1 for _ in range(10)]
    env_a = make_env(task="PushCube", num_envs=4)
    env_b = make_env(task="PushCube", num_envs=4)
    obs_a, _ = env_a.reset(seed=7)
    obs_b, _ = env_b.reset(seed=7)
    assert torch.equal(obs_a["privileged"], obs_b["privileged"])
    assert torch.equal(rollout(env_a, actions), rollout(env_b, actions))
    obs_c, _ = env_b.reset(seed=8)
    assert not torch.equal(obs_a["privileged"], obs_c["privileged"])


def test_reset_id_fixes_the_initial_configuration_across_env_indices_and_batch_sizes():
    env = make_env(task="LangPlaceCube", num_envs=6)
    obs, _ = env.reset(seed=3, reset_ids=[5, 5, 5, 9, 9, 2])
    p = obs["privileged"]
    assert torch.equal(p[0], p[1]) and torch.equal(p[1], p[2])
    assert torch.equal(p[3], p[4])
    assert not torch.equal(p[0], p[3])
    assert obs["instruction"][0] == obs["instruction"][2]
    single = make_env(task="LangPlaceCube", num_envs=1)
    obs_single, _ = single.reset(seed=3, reset_ids=[9])
    assert torch.equal(obs_single["privileged"][0], p[3])
    assert obs_single["instruction"][0] == obs["instruction"][3]


def test_identical_groups_stay_identical_under_identical_actions():
    env = make_env(task="PickCube", num_envs=4)
    env.reset(seed=1, reset_ids=[3, 3, 3, 3])
    action = (torch.rand(1, 4) * 2 - 1).repeat(4, 1)
    for _ in range(5):
        obs, reward, *_ = env.step(action)
    assert torch.all(obs["privileged"] == obs["privileged"][0])
    assert torch.all(reward == reward[0])


def test_auto_reset_keeps_final_observation_and_starts_a_new_episode():
    env = make_env(task="Reach", num_envs=3, max_episode_steps=4)
    obs, info = env.reset(seed=0)
    first_ids = info["reset_ids"].clone()
    zero = torch.zeros(3, 4)
    for step in range(4):
        obs, reward, terminated, truncated, info = env.step(zero)
    assert truncated.all() and not terminated.any()
    assert info["done_mask"].all()
    final = info["final_obs"]["privileged"]
    assert not torch.equal(final, obs["privileged"])  # the returned obs is the new episode's first
    assert torch.equal(info["reset_ids"], first_ids)  # ids of the episodes that produced this step
    assert (info["elapsed_steps"] == 4).all()
    assert not np.isin(env.reset_ids, first_ids.numpy()).any()  # the new episodes take fresh ids
    assert (env._elapsed == 0).all()


def test_without_autoreset_finished_envs_are_frozen():
    env = make_env(task="Reach", num_envs=2, max_episode_steps=2, autoreset=False)
    env.reset(seed=0)
    env.step(torch.zeros(2, 4))
    obs, *_ , info = env.step(torch.zeros(2, 4))
    with pytest.raises(RuntimeError, match="reset"):
        env.step(torch.zeros(2, 4))


def test_chunk_step_matches_single_steps_and_masks_after_episode_end():
    actions = torch.rand(2, 6, 4) * 2 - 1
    env_a = make_env(task="PushCube", num_envs=2, max_episode_steps=4)
    env_b = make_env(task="PushCube", num_envs=2, max_episode_steps=4)
    env_a.reset(seed=2)
    env_b.reset(seed=2)
    _, rewards, terminated, truncated, info = env_a.chunk_step(actions[:, :3])
    singles = [env_b.step(actions[:, t])[1] for t in range(3)]
    assert rewards.shape == (2, 3)
    assert torch.allclose(rewards, torch.stack(singles, dim=1))
    # The next chunk crosses the 4-step limit: one step runs, the rest are masked and reset happens.
    _, rewards, terminated, truncated, info = env_a.chunk_step(actions[:, 3:])
    assert info["step_mask"].tolist() == [[True, False, False], [True, False, False]]
    assert truncated.all()
    assert (rewards[:, 1:] == 0).all()
    assert (info["elapsed_steps"] == 4).all() and (env_a._elapsed == 0).all()


def test_bad_actions_raise_clear_errors():
    env = make_env(task="Reach", num_envs=2)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(torch.zeros(2, 4))
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"expected \[num_envs, action_dim\] = \[2, 4\]"):
        env.step(torch.zeros(2, 7))
    bad = torch.zeros(2, 4)
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match=r"NaN or inf for env\(s\) \[1\]"):
        env.step(bad)
    with pytest.raises(ValueError, match="T, 4"):
        env.chunk_step(torch.zeros(2, 4))


def test_out_of_range_actions_are_clipped_and_counted():
    env_a = make_env(task="Reach", num_envs=2)
    env_b = make_env(task="Reach", num_envs=2)
    env_a.reset(seed=0)
    env_b.reset(seed=0)
    big = torch.tensor([[5.0, -3.0, 0.5, 1.0], [0.2, 0.1, 0.0, -1.0]])
    obs_a, *_, info = env_a.step(big)
    obs_b, *_ = env_b.step(big.clamp(-1, 1))
    assert info["num_clipped"].tolist() == [2, 0]
    assert torch.equal(obs_a["state"], obs_b["state"])


@pytest.mark.parametrize("controller,dim", [("joint_delta", 8), ("ee_delta_pos", 4), ("ee_delta_pose", 7)])
def test_controllers_move_the_arm(controller, dim):
    env = make_env(task="Reach", num_envs=2, controller=controller)
    obs, _ = env.reset(seed=0)
    assert env.action_spec.dim == dim
    start = obs["state"][:, 16:19].clone()
    action = torch.zeros(2, dim)
    action[:, 0] = 1.0
    for _ in range(3):
        obs, *_ = env.step(action)
    assert (obs["state"][:, 16:19] - start).norm(dim=1).min() > 0.02


def test_ee_controller_tracks_commanded_translation():
    env = make_env(task="Reach", num_envs=1, controller="ee_delta_pos")
    obs, _ = env.reset(seed=0)
    start = obs["state"][0, 16:19].clone()
    action = torch.tensor([[0.0, 0.0, -0.5, 1.0]])  # 2.5 cm down per step, 10 cm in all
    for _ in range(4):
        obs, *_ = env.step(action)
    moved = obs["state"][0, 16:19] - start
    # The servos lag the command within a 50 ms step: at least 60% of it is executed, straight down.
    assert moved[2] < -0.06 and moved[:2].abs().max() < 0.01


def test_domain_randomisation_changes_physics_and_visuals_per_episode():
    from sims.mujoco.randomization import Randomization

    rand = Randomization(color=0.2, lighting=0.3, camera_position=0.02, friction=(0.5, 1.5), mass=(0.5, 2.0))
    env = make_env(task="PickCube", num_envs=2, randomization=rand, cameras=("front",))
    env.reset(seed=0)
    assert not np.allclose(env._mass[0], env._mass[1])
    assert not np.allclose(env.visuals["geom_rgba"][0], env.visuals["geom_rgba"][1])
    env.reset(seed=0, reset_ids=[4, 4])
    assert np.allclose(env._friction[0], env._friction[1])
    with pytest.raises(ValueError, match="friction"):
        Randomization(friction=(1.5, 0.5))


def test_the_shifted_domain_keeps_episodes_and_changes_look_and_friction():
    sim = make_env(task="PickCube", num_envs=2, cameras=("front",), domain="sim")
    real = make_env(task="PickCube", num_envs=2, cameras=("front",), domain="shifted")
    obs_sim, _ = sim.reset(seed=4)
    obs_real, _ = real.reset(seed=4)
    torch.testing.assert_close(obs_real["privileged"], obs_sim["privileged"])  # same episodes
    image_gap = (obs_real["rgb"]["front"].float() - obs_sim["rgb"]["front"].float()).abs().mean()
    assert image_gap > 5.0  # colours, light and camera pose differ (uint8 units)
    np.testing.assert_allclose(real.model.geom_friction[:, 0], 0.6 * sim.model.geom_friction[:, 0])
    with pytest.raises(KeyError, match=r"unknown domain 'mars'; available: \['shifted', 'shifted_twin', 'sim'\]"):
        make_env(task="PickCube", num_envs=1, domain="mars")


def test_the_twin_of_the_shifted_cell_looks_like_it_and_keeps_the_simulators_physics():
    envs = {domain: make_env(task="PickCube", num_envs=2, cameras=("front",), domain=domain)
            for domain in ("sim", "shifted", "shifted_twin")}
    images = {domain: env.reset(seed=4)[0]["rgb"]["front"].float() for domain, env in envs.items()}
    twin_gap = (images["shifted_twin"] - images["shifted"]).abs().mean()
    sim_gap = (images["sim"] - images["shifted"]).abs().mean()
    assert 0.5 < twin_gap < 0.5 * sim_gap  # close to the cell, not equal to it
    np.testing.assert_allclose(envs["shifted_twin"].model.geom_friction, envs["sim"].model.geom_friction)


def test_record_demos_in_the_shifted_domain(tmp_path):
    from embodied.cli.record_demos import main
    from embodied.data.reader import LeRobotDataset

    main(["--task", "Reach", "--episodes", "2", "--num-envs", "2", "--cameras", "--domain", "shifted",
          "--out", str(tmp_path / "real")])
    assert len(LeRobotDataset(str(tmp_path / "real")).episodes) == 2
