"""End-to-end training: learning with fixed seeds, exact resume, checkpoints, config validation."""

import os

import pytest
import torch
from safetensors.torch import load_file

from embodied.algorithms import ALGORITHMS
from embodied.config.schema import TrainConfig, validate
from embodied.runner.trainer import Trainer
from policies import from_pretrained


def config(tmp_path, **overrides) -> TrainConfig:
    cfg = TrainConfig()
    if "algo__name" in overrides:  # as algo=<name>: that algorithm's own config, then the overrides
        cfg.algo = ALGORITHMS.lookup(overrides["algo__name"]).config()
    cfg.experiment.output_dir = str(tmp_path)
    cfg.experiment.progress = False
    for dotted, value in overrides.items():
        section, key = dotted.split("__")
        setattr(getattr(cfg, section), key, value)
    return cfg


def test_ppo_learns_reach(tmp_path):
    cfg = config(tmp_path, experiment__total_env_steps=24_000, experiment__eval_interval=0)
    metrics = Trainer(cfg).train()
    assert metrics["success_once"] >= 0.9, metrics
    assert os.path.isfile(tmp_path / "final_policy" / "model.safetensors")
    assert any(name.startswith("events") for name in os.listdir(tmp_path / "tb"))


@pytest.mark.slow
def test_ppo_learns_push_cube(tmp_path):
    # about two minutes on 2 CPU cores; the default PPO settings reach 0.8 near 320k env-steps (seed 1)
    cfg = config(tmp_path, env__task="PushCube", env__num_envs=64, experiment__total_env_steps=480_000,
                 experiment__eval_interval=0, experiment__checkpoint_interval=0)
    metrics = Trainer(cfg).train()
    assert metrics["success_once"] >= 0.8, metrics


@pytest.mark.parametrize("head", ["gaussian", "token", "flow"])
def test_vla_trains_through_the_runner_with_cached_frozen_features(tmp_path, head):
    cfg = config(tmp_path, policy__name="vla", policy__chunk_size=2, policy__head={"name": head},
                 policy__vision={"name": "tiny", "freeze": True}, policy__language={"name": "tiny", "freeze": True},
                 policy__fusion={"hidden_size": 32, "layers": 1, "heads": 2, "intermediate_size": 64},
                 env__cameras=["front"], env__image_size=[32, 32], env__num_envs=4, algo__rollout_steps=5,
                 experiment__total_env_steps=80, experiment__eval_interval=0, experiment__eval_episodes=4,
                 experiment__eval_num_envs=4)
    trainer = Trainer(cfg)
    before = {k: v.clone() for k, v in trainer.policy.state_dict().items()}
    batch, _ = trainer.collector.collect()
    assert "vision_tokens" in batch["obs"] and "rgb" not in batch["obs"]  # frozen tower ran once per step
    metrics = trainer.train()
    assert metrics["episodes"] == 4  # the final evaluation ran every configured episode
    after = trainer.policy.state_dict()
    assert not torch.equal(before["queries"], after["queries"])  # the decoder side learned
    assert torch.equal(before["vision.net.0.weight"], after["vision.net.0.weight"])  # the frozen tower did not


def test_vla_without_the_env_camera_is_a_clear_error(tmp_path):
    cfg = config(tmp_path, policy__name="vla", env__cameras=[])
    with pytest.raises(ValueError, match="env.cameras"):
        Trainer(cfg)


def test_grpo_improves_on_sparse_reach(tmp_path):
    cfg = config(tmp_path, algo__name="grpo", algo__collector="groups", algo__advantage="grpo", algo__loss="grpo",
                 algo__group_size=8, algo__groups_per_batch=8, algo__update_epochs=2, algo__target_kl=None,
                 algo__clip_high=0.28, env__reward_mode="sparse", env__num_envs=64,
                 experiment__total_env_steps=60_000, experiment__eval_interval=0)
    trainer = Trainer(cfg)
    before = trainer.run_eval(None, video=False)["success_once"]
    after = trainer.train()["success_once"]
    assert after >= before + 0.3, (before, after)


def test_resume_matches_uninterrupted_run(tmp_path):
    common = dict(env__num_envs=8, algo__rollout_steps=20, experiment__eval_interval=0,
                  experiment__checkpoint_interval=2, experiment__eval_episodes=4, experiment__eval_num_envs=4)
    full = Trainer(config(tmp_path / "full", experiment__total_env_steps=8 * 20 * 4, **common))
    full.train()
    part = Trainer(config(tmp_path / "part", experiment__total_env_steps=8 * 20 * 2, **common))
    part.train()
    resumed = Trainer(config(tmp_path / "part", experiment__total_env_steps=8 * 20 * 4, **common) |
                      _set(resume=True))
    assert resumed.iteration == 2
    resumed.train()
    a = load_file(tmp_path / "full" / "final_policy" / "model.safetensors")
    b = load_file(tmp_path / "part" / "final_policy" / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _set(**kw):
    class Setter:
        def __ror__(self, cfg):
            for k, v in kw.items():
                setattr(cfg, k, v)
            return cfg
    return Setter()


def test_checkpoint_policy_round_trip_is_bit_exact(tmp_path):
    cfg = config(tmp_path, env__num_envs=4, algo__rollout_steps=10, experiment__total_env_steps=40,
                 experiment__eval_interval=0, experiment__checkpoint_interval=1, experiment__eval_episodes=2,
                 experiment__eval_num_envs=2)
    trainer = Trainer(cfg)
    initial = {k: v.clone() for k, v in trainer.policy.state_dict().items()}
    trainer.train()  # one iteration: its checkpoint holds the policy as it is now
    live = trainer.policy.state_dict()
    assert not torch.equal(live["actor.0.weight"], initial["actor.0.weight"])  # it trained
    obs, _ = trainer.env.reset(seed=0)
    trainer.policy.eval()
    for saved in ("checkpoints/iter_000001/policy", "final_policy"):
        loaded = from_pretrained(str(tmp_path / saved))
        assert loaded.state_dict().keys() == live.keys()
        for key, value in loaded.state_dict().items():
            assert torch.equal(value, live[key]), (saved, key)  # parameters and normaliser statistics
        assert torch.equal(loaded.deterministic_action(obs), trainer.policy.deterministic_action(obs)), saved


def test_resume_without_checkpoint_is_a_clear_error(tmp_path):
    cfg = config(tmp_path)
    cfg.resume = True
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        Trainer(cfg)


def test_resume_with_another_collector_is_a_clear_error(tmp_path):
    budget = dict(env__num_envs=4, algo__rollout_steps=8, experiment__total_env_steps=32, experiment__eval_interval=0,
                  experiment__checkpoint_interval=1, experiment__eval_episodes=2, experiment__eval_num_envs=2)
    pipelined = config(tmp_path, dist__pipeline_stages=2, **budget)
    Trainer(pipelined).train()
    resumed = config(tmp_path, **budget)
    resumed.resume = True
    with pytest.raises(ValueError, match="another collector .* resume with the dist"):
        Trainer(resumed)


@pytest.mark.parametrize("field,value,message", [
    ("env__num_envs", 0, "env.num_envs"),
    ("algo__gamma", 1.5, "algo.gamma"),
    ("algo__logprob_granularity", "word", "logprob_granularity"),
    ("algo__dual_clip", 0.5, "dual_clip"),
])
def test_config_validation_names_the_bad_value(tmp_path, field, value, message):
    cfg = config(tmp_path, **{field: value})
    with pytest.raises(ValueError, match=message):
        validate(cfg)
