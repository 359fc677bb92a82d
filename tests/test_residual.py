"""Residual policy: equals its base at step 0, computes base chunks once per chunk, trains only the correction,
saves the base inside its checkpoint, wraps a VLA base; and residual PPO improves an SFT base on PickCube."""

import shutil
from unittest import mock

import numpy as np
import pytest
import torch

from embodied.algorithms.sft import SFTConfig
from embodied.config.schema import TrainConfig
from embodied.runner.trainer import Trainer
from policies import from_pretrained, make_policy
from policies.mlp import MLPPolicy
from policies.residual import ResidualPolicy
from sims import make_env


def residual_over(base, env, obs, **config):
    """A residual policy around ``base`` (saved and reloaded, as the trainer does)."""
    return ResidualPolicy.for_env({"base": base, **config}, env.observation_spec, env.action_spec, obs)


@pytest.fixture
def pick_env():
    env = make_env(task="PickCube", num_envs=4)
    obs, _ = env.reset(seed=0)
    return env, obs


def saved_mlp_base(tmp_path, env, obs, chunk_size=1) -> str:
    torch.manual_seed(0)
    base = MLPPolicy.for_env({"hidden": [32], "chunk_size": chunk_size}, env.observation_spec, env.action_spec, obs)
    with torch.no_grad():
        base.actor[-1].weight.normal_(0, 0.3)  # a base that actually moves
    path = str(tmp_path / "base")
    base.save_pretrained(path)
    return path


def test_combined_policy_equals_the_base_at_step_zero(tmp_path, pick_env):
    env, obs = pick_env
    path = saved_mlp_base(tmp_path, env, obs)
    policy = residual_over(path, env, obs)
    base = from_pretrained(path)
    expected = base.deterministic_action(obs)
    assert torch.equal(policy.deterministic_action(obs), expected)  # exactly: the correction's last layer is 0
    assert expected.abs().max() > 0.05  # and the base is not trivially zero
    action, logprob, value = policy.act(policy.cache_features(obs))
    assert action.shape == (4, 1, 4) and logprob.shape == (4, 1, 4) and value.shape == (4,)
    np.testing.assert_allclose((action - expected).std().item(), 0.1 * np.exp(-1.0), rtol=0.5)  # scale * std


def test_a_chunked_base_runs_once_per_chunk_and_the_correction_every_step(tmp_path, pick_env):
    env, obs = pick_env
    path = saved_mlp_base(tmp_path, env, obs, chunk_size=4)
    policy = residual_over(path, env, obs)
    calls = []
    original = policy.base.deterministic_action
    policy.base.deterministic_action = lambda o: calls.append(1) or original(o)
    chunk = original(obs)  # [4, 4, A] for the first observation
    executed = []
    for step in range(8):
        cached = policy.cache_features(obs)
        executed.append(cached["base_action"])
        if step == 0:
            assert torch.equal(cached["base_action"], chunk[:, 0])
        action, _, _ = policy.act(cached)
        obs, *_ = env.step(action[:, 0])
    assert len(calls) == 2  # steps 0 and 4
    assert torch.equal(executed[3], chunk[:, 3])


def test_only_the_correction_trains(tmp_path):
    env = make_env(task="PickCube", num_envs=2)
    obs, _ = env.reset(seed=0)
    path = saved_mlp_base(tmp_path, env, obs)
    cfg = TrainConfig()
    cfg.env.task, cfg.env.num_envs, cfg.policy.name, cfg.base = "PickCube", 8, "residual", path
    cfg.algo.rollout_steps, cfg.experiment.total_env_steps = 16, 256
    cfg.experiment.eval_episodes, cfg.experiment.eval_num_envs, cfg.experiment.progress = 4, 4, False
    cfg.experiment.checkpoint_interval, cfg.experiment.output_dir = 0, str(tmp_path / "run")
    trainer = Trainer(cfg)
    optimised = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert not any(id(p) in optimised for p in trainer.policy.base.parameters())
    base_before = {k: v.clone() for k, v in trainer.policy.base.state_dict().items()}
    actor_before = trainer.policy.actor[-1].weight.clone()
    trainer.train()
    for key, value in trainer.policy.base.state_dict().items():
        assert torch.equal(value, base_before[key]), key
    assert not torch.equal(trainer.policy.actor[-1].weight, actor_before)

    shutil.rmtree(path)  # the saved residual carries its base: the original directory is not needed
    loaded = from_pretrained(str(tmp_path / "run" / "final_policy"))
    obs, _ = env.reset(seed=3)
    assert torch.equal(loaded.deterministic_action(obs), trainer.policy.deterministic_action(obs))


def saved_tiny_vla(path: str, obs: dict, head: str) -> None:
    """A tiny-tower VLA reading the front camera, predicting chunks of 4 with ``head``, saved at ``path``."""
    torch.manual_seed(0)
    vla = make_policy("vla", state_dim=obs["state"].shape[-1], action_dim=4, chunk_size=4,
                      cameras=["front"], vision={"name": "tiny"}, language={"name": "tiny"},
                      fusion={"arch": "llama", "hidden_size": 32, "layers": 1, "heads": 2, "intermediate_size": 64},
                      head={"name": head})
    vla.set_stats(obs["state"].mean(0), obs["state"].std(0) + 1e-3, -torch.ones(4), torch.ones(4))
    vla.save_pretrained(path)


def test_a_vla_base_with_a_chunked_head(tmp_path):
    env = make_env(task="PickCube", num_envs=2, cameras=("front",), image_size=(32, 32))
    obs, _ = env.reset(seed=0)
    saved_tiny_vla(str(tmp_path / "vla"), obs, head="flow")
    policy = residual_over(str(tmp_path / "vla"), env, obs, obs_keys=["state"])
    expected = from_pretrained(str(tmp_path / "vla")).deterministic_action(obs)[:, 0]
    assert torch.allclose(policy.deterministic_action(obs)[:, 0], expected, atol=1e-6)
    with pytest.raises(ValueError, match="needs a base"):
        ResidualPolicy.for_env({"base": ""}, env.observation_spec, env.action_spec, obs)
    cfg = TrainConfig()  # the camera base in an env without cameras: named before training (was KeyError 'rgb')
    cfg.env.task, cfg.policy.name, cfg.base = "PickCube", "residual", str(tmp_path / "vla")
    cfg.experiment.output_dir = str(tmp_path / "run")
    with pytest.raises(ValueError, match=r"reads cameras \['front'\] that the env does not render \(env.cameras=\[\]\)"):
        Trainer(cfg)


def test_validation_names_the_missing_base():
    from embodied.config.schema import validate

    cfg = TrainConfig()
    cfg.policy.name = "residual"
    with pytest.raises(ValueError, match="needs base="):
        validate(cfg)
    with mock.patch.object(cfg, "base", "runs/x"):
        cfg.policy.residual_scale = 0.0
        with pytest.raises(ValueError, match="residual_scale must be > 0"):
            validate(cfg)


@pytest.mark.slow
def test_residual_ppo_improves_an_sft_base_on_pickcube(tmp_path):
    """Shortened benchmarks/residual.py: 10 expert demos -> SFT base (s0 = 0.30 measured), then residual PPO;
    measured 0.47 after 192k env-steps on 2026-11-22's install; 0.41 after 288k on a fresh install of 2026-12-02
    (same s0). Since the controller caps each joint's step (2026-12-04): s0 0.28, 0.23 after 288k, 0.64 after 576k,
    so the run is now 576k env-steps (0.89 after 640k in the benchmark, before the cap). Since the simulated gripper
    also closes at the guard's rate and force (2026-12-05): s0 0.125, 0.48 after 576k (fresh clone, 64 episodes), so
    the base may start lower; the gain of 12 points is what the test is about."""
    from embodied.data.demos import env_features, record_expert_demos
    from embodied.data.writer import LeRobotDatasetWriter
    from embodied.runner.sft import SFTTrainer

    env = make_env(task="PickCube", num_envs=16, autoreset=False)
    writer = LeRobotDatasetWriter.create(str(tmp_path / "demos"), fps=20, features=env_features(env))
    record_expert_demos(env, writer, num_episodes=10, seed=0, progress=False)
    cfg = TrainConfig()
    cfg.env.task, cfg.algo = "PickCube", SFTConfig(sft_steps=1000, sft_eval_interval=0)
    cfg.data.paths = [str(tmp_path / "demos")]
    cfg.experiment.output_dir, cfg.experiment.progress = str(tmp_path / "sft"), False
    s0 = SFTTrainer(cfg).train()["success_once"]

    cfg = TrainConfig()
    cfg.env.task, cfg.env.num_envs, cfg.policy.name, cfg.base = "PickCube", 64, "residual", str(tmp_path / "sft" /
                                                                                             "final_policy")
    cfg.policy.residual_scale, cfg.policy.init_log_std = 0.5, -1.5
    cfg.experiment.total_env_steps, cfg.experiment.eval_interval, cfg.experiment.checkpoint_interval = 576_000, 0, 0
    cfg.experiment.output_dir, cfg.experiment.progress = str(tmp_path / "residual"), False
    final = Trainer(cfg).train()["success_once"]
    assert 0.08 <= s0 <= 0.5 and final >= s0 + 0.12, (s0, final)


def test_bc_warm_start_of_the_correction_then_ppo_from_it(tmp_path):
    """algo=sft policy=residual learns demo - base on demonstrations; init_from carries it into PPO."""
    from embodied.data.demos import env_features, record_expert_demos
    from embodied.data.writer import LeRobotDatasetWriter
    from embodied.runner.sft import SFTTrainer

    env = make_env(task="Reach", num_envs=8, autoreset=False)
    writer = LeRobotDatasetWriter.create(str(tmp_path / "demos"), fps=20, features=env_features(env))
    record_expert_demos(env, writer, num_episodes=8, seed=0, progress=False)
    obs, _ = env.reset(seed=0)
    base_path = saved_mlp_base(tmp_path, env, obs)  # a base that ignores the task

    cfg = TrainConfig()
    cfg.algo = SFTConfig(sft_steps=300, sft_eval_interval=0)
    cfg.policy.name, cfg.base, cfg.policy.residual_scale = "residual", base_path, 1.0
    cfg.data.paths = [str(tmp_path / "demos")]
    cfg.experiment.eval_episodes, cfg.experiment.eval_num_envs = 8, 8
    cfg.experiment.output_dir, cfg.experiment.progress = str(tmp_path / "warm"), False
    trainer = SFTTrainer(cfg)
    batch = next(trainer.data)
    demo = batch["action"][:, 0]
    with torch.no_grad():
        base_error = (from_pretrained(base_path).deterministic_action(batch["obs"])[:, 0] - demo).pow(2).mean()
        before = (trainer.policy.deterministic_action(batch["obs"])[:, 0] - demo).pow(2).mean()
    trainer.train()
    with torch.no_grad():
        after = (trainer.policy.deterministic_action(batch["obs"])[:, 0] - demo).pow(2).mean()
    assert torch.isclose(before, base_error) and after < 0.5 * base_error, (base_error, after)

    cfg.algo.name, cfg.init_from = "ppo", str(tmp_path / "warm" / "final_policy")
    cfg.env.num_envs, cfg.experiment.output_dir = 4, str(tmp_path / "ppo")
    ppo = Trainer(cfg)
    obs, _ = env.reset(seed=5)
    assert torch.equal(ppo.policy.deterministic_action(obs), trainer.policy.deterministic_action(obs))
    with pytest.raises(ValueError, match="holds a 'residual' policy"):
        cfg.policy.name, cfg.init_from = "mlp", str(tmp_path / "warm" / "final_policy")
        Trainer(cfg)
