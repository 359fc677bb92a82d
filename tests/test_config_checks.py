"""Config values that were accepted silently or answered with tracebacks now stop the CLI with one line naming
the key, the value and the fix; keys no setting reads are refused even when added with ``+``."""

import os
import sys

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from embodied.algorithms import registry
from embodied.config.schema import TrainConfig
from embodied.config.strict import unknown_keys
from embodied.rollout.group_collector import GroupCollector
from policies import make_policy
from sims import make_env
from tests.cli_commands import TINY, run_command


def run_train(args: list[str], monkeypatch) -> str:
    """``embodied-train`` with the tiny budget first, so that ``args`` win; "ok" or the line it exited with."""
    from embodied.cli.train import main

    monkeypatch.setattr(sys, "argv", ["embodied-train", *TINY["embodied-train"], "env.num_envs=4", *args])
    GlobalHydra.instance().clear()
    try:
        main()
    except SystemExit as done:
        return "ok" if done.code in (None, 0) else str(done.code)
    return "ok"


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("override, message", [
    ("env.max_episode_steps=0", "env.max_episode_steps must be >= 1 (or null: the task's own limit), got 0"),
    ("experiment.eval_num_envs=0", "experiment.eval_num_envs must be >= 1 (worlds evaluated side by side), got 0"),
    ("policy.chunk_size=0", "policy.chunk_size must be >= 1 (actions per prediction), got 0"),
    ("+env.num_env=4", "embodied-train: unknown config keys ['env.num_env']"),
    ("+experiment.eval_epsiodes=4", "embodied-train: unknown config keys ['experiment.eval_epsiodes']"),
])
def test_bad_train_values_stop_with_one_line(in_tmp, monkeypatch, override, message):
    result = run_train([override, "experiment.name=bad"], monkeypatch)
    assert message in result and "\n" not in result, result
    assert not os.path.exists(in_tmp / "runs" / "bad" / "checkpoints")  # nothing trained


def test_an_unknown_sft_precision_is_refused_by_name(in_tmp, monkeypatch):
    result = run_train(["algo=sft", "data.paths=[demos]", "algo.precision=fp16", "experiment.name=bad"], monkeypatch)
    assert "algo.precision must be one of ['bf16', 'fp32'], got 'fp16'" in result and "\n" not in result, result


def test_free_form_sections_still_take_new_keys(in_tmp, monkeypatch):
    """``policy.vision`` is a dict handed to the encoder: its keys are the encoder's to check."""
    cfg = OmegaConf.merge(OmegaConf.structured(TrainConfig), {"policy": {"vision": {"name": "tiny", "width": 8}}})
    assert unknown_keys(cfg, TrainConfig) == []


@pytest.mark.parametrize("override, message", [
    ("+policy.vision.flim=true", "policy.vision.flim: not a setting of the 'tiny' encoder; policy.vision takes "
                                 "['name', 'freeze', 'film', 'dim']"),
    ("+policy.language.max_token=8", "policy.language.max_token: not a setting of the 'tiny' encoder; "
                                     "policy.language takes ['name', 'freeze', 'pool', 'dim', 'max_tokens']"),
])
def test_an_encoder_setting_that_nothing_reads_stops_the_run_with_one_line(in_tmp, monkeypatch, override, message):
    result = run_train(["policy=vla", "policy.vision.name=tiny", "policy.language.name=tiny", "policy.cameras=[front]",
                        "policy.aux_state_coef=0", override, "experiment.name=bad"], monkeypatch)
    assert message in result and "\n" not in result, result
    assert not os.path.exists(in_tmp / "runs" / "bad" / "checkpoints")  # nothing trained


@pytest.mark.parametrize("command, key", [("embodied-deploy +policy_dir=x", "policy_dir"),
                                          ("embodied-teleop +episode=3", "episode")])
def test_deploy_and_teleop_refuse_unknown_keys(in_tmp, monkeypatch, command, key):
    result = run_command(command, monkeypatch)
    assert f"unknown config keys ['{key}']" in result, result


@pytest.mark.parametrize("overrides, message", [
    (["algo.collector=steps", "algo.advantage=grpo", "algo.loss=grpo"],
     "algo.advantage=grpo needs ['episode_returns'], which the steps collector does not produce: with "
     "algo.collector=steps use algo.advantage in ['gae']"),
    (["algo=grpo", "algo.loss=ppo"], "algo.loss=ppo needs ['old_values', 'returns'], which the groups collector "
     "does not produce: with algo.collector=groups use algo.loss in ['grpo', 'opd']"),
    (["algo=grpo", "algo.advantage=gae"], "algo.advantage=gae needs ['step_rewards']"),
    (["algo.kl_coef=0.1"], "algo.kl_coef=0.1 needs a loss with a KL term (['grpo']); algo.loss=ppo has none"),
    (["algo=grpo", "algo.loss=opd"], "algo.loss=opd scores actions with a teacher policy (algo.teacher), a setting "
     "algo=grpo does not have: use algo in ['opd']"),
])
def test_collector_advantage_and_loss_that_cannot_work_together_are_refused(in_tmp, monkeypatch, overrides,
                                                                             message):
    """They failed deep in finish() (TypeError) or the loss (KeyError 'returns'), or were silently replaced."""
    result = run_train([*overrides, "experiment.name=bad"], monkeypatch)
    assert message in result and "\n" not in result, result


def test_the_group_collector_uses_the_configured_advantage(monkeypatch):
    """algo.advantage was ignored for GRPO (the group collector always called the grpo estimator)."""
    called = []

    @registry.register_advantage("group_mean", needs=("episode_returns",))
    def group_mean(returns, group_size):
        called.append(returns.shape)
        return returns - returns.view(-1, group_size).mean(1).repeat_interleave(group_size)

    try:
        cfg = TrainConfig().algo
        cfg.collector, cfg.advantage, cfg.loss, cfg.group_size, cfg.groups_per_batch = "groups", "group_mean", \
            "grpo", 2, 1
        cfg.dynamic_sampling = False
        env = make_env(task="Reach", num_envs=2, autoreset=False, max_episode_steps=5)
        policy = make_policy("mlp", obs_dim=env.observation_spec.state_dim + env.observation_spec.privileged_dim,
                             action_dim=4, hidden=[8])
        collector = GroupCollector(env, policy, cfg)
        collector.start(0)
        torch.manual_seed(0)
        batch, _ = collector.collect()
        assert called == [torch.Size([2])] and batch["advantages"].shape[0] == 10
    finally:
        registry.ADVANTAGES.unregister("group_mean")


def test_target_kl_with_a_loss_that_reports_no_approx_kl_is_refused_before_training():
    """A new loss without ratio statistics stopped the first update with KeyError 'approx_kl'."""

    @registry.register_loss("plain_pg", needs=("returns",))
    def plain_pg(policy, batch, cfg):
        return torch.zeros(()), {}

    try:
        problem = registry.combination_problem("steps", "gae", "plain_pg", target_kl=0.1)
        assert problem == ("algo.target_kl=0.1 stops the epochs on the loss's approx_kl, which algo.loss=plain_pg "
                           "does not report (add losses.ratio_stats to its stats): set algo.target_kl=null")
        assert registry.combination_problem("steps", "gae", "plain_pg", target_kl=None) is None
        assert registry.combination_problem("steps", "gae", "ppo", target_kl=0.1) is None
    finally:
        registry.LOSSES.unregister("plain_pg")
