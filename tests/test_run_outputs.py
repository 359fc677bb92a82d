"""What a run leaves behind and shows: summary.json, eval videos, file modes, progress, help groups, rate warnings."""

import dataclasses
import json
import os

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

import embodied.cli.deploy  # noqa: F401  (registers the deploy schema)
import embodied.cli.teleop  # noqa: F401  (registers the teleop schema)
from embodied.cli.console import accepted_groups
from embodied.cli.train import _config_path
from embodied.config.schema import TrainConfig
from embodied.rollout.evaluate import evaluate
from embodied.runner.summary import config_hash
from embodied.runner.trainer import Trainer
from sims import make_env


def tiny_config(tmp_path) -> TrainConfig:
    cfg = TrainConfig()
    cfg.env.num_envs, cfg.algo.rollout_steps = 4, 10
    cfg.experiment.total_env_steps, cfg.experiment.eval_interval = 120, 1
    cfg.experiment.eval_episodes, cfg.experiment.eval_num_envs = 2, 2
    cfg.experiment.output_dir = str(tmp_path)
    return cfg


def test_a_run_writes_its_summary_and_a_video_and_never_shows_nan(tmp_path, capsys):
    cfg = tiny_config(tmp_path)
    cfg.experiment.eval_interval = 2  # iteration 1 ends no episode and runs no evaluation: success is unknown
    trainer = Trainer(cfg)
    final = trainer.train()
    assert "nan" not in capsys.readouterr().err  # the progress bar: no success before an episode has ended
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert trainer.summary_path == str(tmp_path / "summary.json")
    assert summary["final_eval"] == {k: final[k] for k in ("success_once", "success_at_end", "episode_return",
                                                             "episodes")}
    assert summary["final_eval"]["episodes"] == 2 and summary["env_steps"] == 120
    history = trainer.eval_history
    assert len(history) == 2 and summary["best_eval"]["success_once"] == max(h["success_once"] for h in history)
    assert summary["wall_clock_s"] > summary["training_s"] > 0
    assert summary["env_steps_per_s"] == pytest.approx(120 / summary["training_s"], rel=0.01)
    assert os.path.isfile(os.path.join(summary["policy_dir"], "model.safetensors"))
    assert len(summary["videos"]) == 2 and all(os.path.getsize(v) > 500 for v in summary["videos"])
    assert summary["config_hash"] == config_hash(trainer.cfg)
    assert config_hash(dataclasses.replace(trainer.cfg, resume=True)) != summary["config_hash"]


def test_saved_files_follow_the_users_umask(tmp_path):
    policy = Trainer(tiny_config(tmp_path)).policy
    old = os.umask(0o002)  # a lab's shared folder: group-writable, world-readable
    try:
        policy.save_pretrained(str(tmp_path / "p"))
    finally:
        os.umask(old)
    for name in ("model.safetensors", "config.json"):
        assert os.stat(tmp_path / "p" / name).st_mode & 0o777 == 0o664, name


def test_video_of_a_state_only_env_shows_what_the_camera_would(tmp_path):
    policy = Trainer(tiny_config(tmp_path)).policy
    blind = make_env(task="Reach", num_envs=3, autoreset=False)
    seeing = make_env(task="Reach", num_envs=3, cameras=("front",), autoreset=False)
    summary, frames = evaluate(policy, blind, 3, seed=7, video_camera="front")
    summary_seen, frames_seen = evaluate(policy, seeing, 3, seed=7, video_camera="front")
    assert summary == summary_seen and len(frames) == len(frames_seen) > 10
    assert np.array_equal(np.stack(frames), np.stack(frames_seen))  # env 0's images, step by step
    assert not np.array_equal(frames[0], frames[-1])


@pytest.mark.parametrize("command", ["train", "deploy", "teleop"])
def test_help_lists_exactly_the_groups_the_command_accepts(command):
    config_dir = _config_path()
    listed = accepted_groups(config_dir, command)
    assert listed, command
    groups = sorted(d for d in os.listdir(config_dir) if os.path.isdir(os.path.join(config_dir, d)))
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        for group in groups:
            options = sorted(f[:-5] for f in os.listdir(os.path.join(config_dir, group)) if f.endswith(".yaml"))
            if group in listed:
                assert listed[group] == options
                for option in options:
                    compose(command, overrides=[f"{group}={option}"])
            else:
                with pytest.raises(Exception, match="No match in the defaults list"):
                    compose(command, overrides=[f"{group}={options[0]}"])
