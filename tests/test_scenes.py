"""Rendered scenes without actions (data.scene_frames): what is rendered, the loss they train, and where they are
refused."""

from unittest.mock import patch

import numpy as np
import pytest
import torch

from embodied.algorithms.sft import SFTConfig
from embodied.config.schema import TrainConfig, validate
from embodied.data.demos import env_features, record_expert_demos
from embodied.data.scenes import (MARKER_SEED, PUSH_STEPS, SCENE_SEED, SceneStream, carried_scene_problem,
                                  render_scenes, stats_with_scenes)
from embodied.data.writer import LeRobotDatasetWriter
from embodied.runner.sft import SFTTrainer
from policies import make_policy
from sims import make_env

torch.set_num_threads(1)


def test_scenes_are_fresh_resets_with_the_arm_pushed_away_from_where_the_reset_left_it():
    env = make_env(task="PickCube", num_envs=4, cameras=("front",), image_size=(32, 32), autoreset=False)
    scenes = render_scenes(env, 10, seed=0)  # waves of 4, 4 and 2 frames
    assert scenes["state"].shape[0] == 10 and scenes["rgb"]["front"].shape == (10, 32, 32, 3)
    assert len(scenes["instruction"]) == 10
    assert PUSH_STEPS[0] == 0 and PUSH_STEPS[1] > 0
    first, _ = env.reset(seed=SCENE_SEED)
    assert torch.equal(scenes["state"][:4], first["state"])  # wave 0: the reset itself
    assert torch.equal(scenes["privileged"][:4], first["privileged"])
    second, _ = env.reset(seed=SCENE_SEED + 1)
    arm_moved = (scenes["state"][4:8] - second["state"]).abs().amax(dim=1)
    assert (arm_moved > 1e-2).all(), arm_moved  # wave 1 pushed every arm
    goals = scenes["privileged"][:, 7:10]  # PickCube: [cube (3), quat (4), goal (3), ...]
    assert torch.cdist(goals[:4], goals[4:8]).min() > 1e-3  # another reset seed, other goals


def small_vla(**extra):
    torch.manual_seed(0)
    policy = make_policy("vla", state_dim=5, action_dim=4, chunk_size=2, cameras=["front"],
                         vision={"name": "keypoints", "channels": 8, "keypoints": 4}, language={"name": "tiny"},
                         fusion={"hidden_size": 32, "layers": 1, "heads": 2, "intermediate_size": 64}, **extra)
    policy.set_stats(torch.zeros(5), torch.ones(5), -torch.ones(4), torch.ones(4))
    return policy


def test_scene_loss_is_the_weighted_mse_of_the_z_scored_task_state_and_teaches_the_camera_tower():
    policy = small_vla(aux_state_coef=0.5, privileged_dim=3)
    mean, std = torch.tensor([1.0, 0.0, -1.0]), torch.tensor([2.0, 1.0, 4.0])
    policy.set_task_state_stats(mean, std)
    torch.nn.init.zeros_(policy.task_state_head[2].weight)
    torch.nn.init.zeros_(policy.task_state_head[2].bias)  # predicts 0: the loss is 0.5 * mean(z^2)
    g = torch.Generator().manual_seed(1)
    obs = {"rgb": {"front": torch.randint(0, 256, (4, 32, 32, 3), dtype=torch.uint8, generator=g)},
           "state": torch.randn(4, 5, generator=g), "privileged": torch.randn(4, 3, generator=g) * 3 + 1,
           "instruction": ["a", "b", "c", "d"]}
    loss = policy.scene_loss(obs)
    assert torch.allclose(loss, 0.5 * ((obs["privileged"] - mean) / std).pow(2).mean())
    torch.nn.init.normal_(policy.task_state_head[2].weight)  # a head that reads its input passes gradients back
    policy.scene_loss(obs).backward()
    assert policy.vision.trunk[0].weight.grad.abs().sum() > 0
    assert policy.learns_from_scenes and not small_vla().learns_from_scenes
    with pytest.raises(NotImplementedError, match="scenes"):
        make_policy("mlp", obs_dim=5, action_dim=4, hidden=[8]).scene_loss(obs)


def test_scene_stream_draws_seeded_minibatches_of_the_rendered_frames():
    scenes = {"state": torch.arange(10.0)[:, None], "instruction": [str(i) for i in range(10)]}
    a, b = SceneStream(scenes, 6, seed=3), SceneStream(scenes, 6, seed=3)
    first = next(a)
    assert torch.equal(first["state"], next(b)["state"]) and first["state"].shape == (6, 1)
    assert first["instruction"] == [str(int(v)) for v in first["state"][:, 0]]  # rows stay together
    with pytest.raises(ValueError, match="scene_batch"):
        SceneStream(scenes, 0, seed=0)


@pytest.fixture(scope="module")
def camera_demos(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("demos") / "reach")
    env = make_env(task="Reach", num_envs=4, cameras=("front",), image_size=(32, 32), autoreset=False)
    writer = LeRobotDatasetWriter.create(root, fps=20, features=env_features(env))
    record_expert_demos(env, writer, num_episodes=4, seed=0, progress=False)
    return root


def _sft_config(tmp_path, demos, policy: str, **vla) -> TrainConfig:
    cfg = TrainConfig()
    cfg.algo = SFTConfig(sft_steps=3, sft_eval_interval=0, batch_size=4)
    cfg.data.paths, cfg.data.scene_frames, cfg.data.scene_batch = [demos], 6, 5
    cfg.env.task, cfg.env.cameras, cfg.env.image_size = "Reach", ["front"], [32, 32]
    cfg.experiment.output_dir, cfg.experiment.progress, cfg.experiment.eval_episodes = str(tmp_path), False, 4
    cfg.experiment.eval_num_envs, cfg.experiment.video = 4, False
    cfg.policy.name = policy
    if policy == "vla":
        cfg.policy.cameras, cfg.policy.chunk_size = ["front"], 1
        cfg.policy.vision, cfg.policy.language = {"name": "tiny"}, {"name": "tiny"}
        cfg.policy.aux_state_coef = vla.get("aux_state_coef", 1.0)
    return cfg


def test_sft_adds_the_scene_loss_on_a_scene_minibatch_at_every_step(tmp_path, camera_demos):
    trainer = SFTTrainer(_sft_config(tmp_path, camera_demos, "vla"))
    assert trainer.scenes.count == 6
    seen = []
    scene_loss = trainer.policy.scene_loss
    trainer.policy.scene_loss = lambda obs: seen.append(obs["state"].shape[0]) or scene_loss(obs)
    trainer.train()
    assert seen == [5, 5, 5]


def test_carried_scenes_hold_the_cube_and_show_the_markers_of_another_reset():
    env = make_env(task="PickCube", num_envs=4, cameras=("front",), image_size=(32, 32), autoreset=False)
    driver = make_env(task="PickCube", num_envs=4, autoreset=False)
    scenes = render_scenes(env, 16, seed=1, driver=driver)  # waves: pushed, carried, pushed, carried
    goal, cube_from_tool = slice(7, 10), slice(13, 16)  # in PickCube's task state
    task_state = scenes["privileged"]
    shown = env.reset(seed=MARKER_SEED + 1)[0]["privileged"][:, goal]
    heading = driver.reset(seed=SCENE_SEED + 1)[0]["privileged"][:, goal]  # where the expert carried the cube
    assert torch.allclose(task_state[4:8, goal], shown)
    assert (task_state[4:8, goal] - heading).norm(dim=1).min() > 0.02
    assert task_state[4:8, cube_from_tool].norm(dim=1).max() < 0.02  # the cube is in the gripper
    assert task_state[:4, cube_from_tool].norm(dim=1).min() > 0.04  # a pushed arm does not hold it
    assert not torch.equal(scenes["rgb"]["front"][4:8], env.reset(seed=MARKER_SEED + 1)[0]["rgb"]["front"])
    spec, generator = env.action_spec, torch.Generator().manual_seed(1)
    pushes = [spec.low + (spec.high - spec.low) * torch.rand(4, spec.dim, generator=generator) for _ in range(2)]
    obs, _ = env.reset(seed=SCENE_SEED + 2)
    for _ in range(PUSH_STEPS[1]):  # the second pushed wave (wave 2) takes the second push length
        obs, *_ = env.step(pushes[1])
    assert torch.equal(scenes["state"][8:12], obs["state"])


def test_carried_scenes_survive_short_episodes_and_are_refused_where_they_cannot_be_staged(tmp_path, camera_demos):
    env = make_env(task="PickCube", num_envs=2, cameras=("front",), image_size=(32, 32), autoreset=False,
                   max_episode_steps=5)
    driver = make_env(task="PickCube", num_envs=2, autoreset=False, max_episode_steps=5)
    assert render_scenes(env, 4, seed=1, driver=driver)["state"].shape[0] == 4  # CARRY_STEPS[0] > 5 steps
    assert carried_scene_problem(driver) is None
    assert "end-effector" in carried_scene_problem(make_env(task="PickCube", num_envs=1, controller="joint_delta"))
    assert "point at its markers" in carried_scene_problem(make_env(task="PushCube", num_envs=1))
    cfg = _sft_config(tmp_path, camera_demos, "vla")
    cfg.data.carried_scenes = True
    with patch("embodied.runner.sft.carried_scene_problem", return_value="no expert"), \
            patch("embodied.runner.sft.render_scenes") as render, \
            pytest.raises(ValueError, match="data.carried_scenes=true: no expert; set data.carried_scenes=false"):
        SFTTrainer(cfg)
    render.assert_not_called()


def test_sft_renders_carried_scenes_with_a_camera_less_driver(tmp_path, camera_demos):
    cfg = _sft_config(tmp_path, camera_demos, "vla")
    cfg.data.carried_scenes = True
    scenes = SFTTrainer(cfg).scenes.scenes
    env = make_env(task="Reach", num_envs=4, cameras=("front",), image_size=(32, 32), autoreset=False)
    driver = make_env(task="Reach", num_envs=4, autoreset=False)
    expected = render_scenes(env, 6, seed=cfg.experiment.seed, driver=driver)
    assert torch.equal(scenes["privileged"], expected["privileged"])
    assert torch.equal(scenes["rgb"]["front"], expected["rgb"]["front"])


def _stats(mean, std) -> dict:
    """Dataset statistics of one feature as meta/stats.json holds them (no quantiles)."""
    mean, std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
    return {"mean": mean, "std": std, "min": mean - std, "max": mean + std, "count": np.array([100])}


def test_scene_stats_are_the_equal_mixture_of_demonstrations_and_scenes():
    demos = {"observation.environment_state": _stats([0.0, 1.0], [0.01, 2.0]),
             "observation.state": _stats([5.0], [1.0])}
    scenes = torch.tensor([[0.1, 1.0], [-0.1, 1.0], [0.3, 1.0], [-0.3, 1.0]])  # dim 0: mean 0, variance 0.05
    stats = stats_with_scenes(demos, scenes)
    # dim 0: mean (0 + 0)/2, variance (1e-4 + 0.05)/2; dim 1: mean (1 + 1)/2, variance (4 + 0)/2
    assert np.allclose(stats["observation.environment_state"]["mean"], [0.0, 1.0])
    assert np.allclose(stats["observation.environment_state"]["std"], np.sqrt([0.0501 / 2, 2.0]))
    assert stats["observation.state"] is demos["observation.state"]
    one = stats_with_scenes({"observation.environment_state": _stats([1.0], [1.0])}, torch.tensor([[3.0], [3.0]]))
    # means 1 and 3: variance (1 + 0)/2 + ((1 - 3)/2)^2
    assert np.allclose(one["observation.environment_state"]["mean"], [2.0])
    assert np.allclose(one["observation.environment_state"]["std"], np.sqrt([1.5]))
    alone = stats_with_scenes({"observation.state": _stats([5.0], [1.0])}, scenes)  # demonstrations without it
    assert np.allclose(alone["observation.environment_state"]["std"], [np.sqrt(0.05), 0.0])


def test_sft_widens_the_task_state_statistics_to_the_rendered_scenes(tmp_path, camera_demos):
    cfg = _sft_config(tmp_path, camera_demos, "vla")
    cfg.data.scene_frames = 0
    demo_only = SFTTrainer(cfg)
    cfg = _sft_config(tmp_path / "scenes", camera_demos, "vla")
    env = make_env(task="Reach", num_envs=4, cameras=("front",), image_size=(32, 32), autoreset=False)
    scenes = render_scenes(env, 6, seed=cfg.experiment.seed)["privileged"]
    expected = stats_with_scenes(demo_only.data.stats, scenes)["observation.environment_state"]
    policy = SFTTrainer(cfg).policy
    assert torch.allclose(policy.task_state_mean, torch.as_tensor(expected["mean"], dtype=torch.float32))
    assert torch.allclose(policy.task_state_std, torch.as_tensor(expected["std"], dtype=torch.float32).clamp(min=0.01))
    assert not torch.allclose(policy.task_state_std, demo_only.policy.task_state_std)


def test_scenes_are_refused_for_a_policy_without_a_task_state_head_and_outside_sft(tmp_path, camera_demos):
    for policy, extra in (("mlp", {}), ("vla", {"aux_state_coef": 0.0})):
        with pytest.raises(ValueError, match="data.scene_frames=6 trains an auxiliary task-state head"):
            SFTTrainer(_sft_config(tmp_path / policy, camera_demos, policy, **extra))
    cfg = TrainConfig()
    cfg.data.scene_frames = 6
    with pytest.raises(ValueError, match="algo=ppo does not read it"):
        validate(cfg)
    cfg.data.scene_frames = -1
    with pytest.raises(ValueError, match="data.scene_frames must be >= 0"):
        validate(cfg)
    cfg.data.scene_frames, cfg.data.carried_scenes = 0, True
    with pytest.raises(ValueError, match="set data.scene_frames above 32"):
        validate(cfg)
