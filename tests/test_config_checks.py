"""Config values that were accepted silently or answered with tracebacks now stop the CLI with one line naming
the key, the value and the fix; keys no setting reads are refused even when added with ``+``."""

import os
import sys

import pytest
from hydra.core.global_hydra import GlobalHydra

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


def test_free_form_sections_still_take_new_keys(in_tmp, monkeypatch):
    """``policy.vision`` is a dict handed to the encoder: its keys are the encoder's to check."""
    from embodied.config.schema import TrainConfig
    from embodied.config.strict import unknown_keys
    from omegaconf import OmegaConf

    cfg = OmegaConf.merge(OmegaConf.structured(TrainConfig), {"policy": {"vision": {"name": "tiny", "width": 8}}})
    assert unknown_keys(cfg, TrainConfig) == []


@pytest.mark.parametrize("command, key", [("embodied-deploy +policy_dir=x", "policy_dir"),
                                          ("embodied-teleop +episode=3", "episode")])
def test_deploy_and_teleop_refuse_unknown_keys(in_tmp, monkeypatch, command, key):
    result = run_command(command, monkeypatch)
    assert f"unknown config keys ['{key}']" in result, result
