"""Every dataset is checked against the env and policy before training: one line per mismatch, naming the
dataset, the feature, both values and the fix (each case below trained silently or failed deep in torch)."""

import json
import os
import shutil

import numpy as np
import pytest

from embodied.algorithms.sft import SFTConfig
from embodied.config.schema import TrainConfig
from embodied.data.demos import env_features
from embodied.data.writer import LeRobotDatasetWriter
from embodied.runner.sft import SFTTrainer
from embodied.runner.trainer import Trainer
from sims import make_env

LEROBOT_WRITTEN = os.path.join(os.path.dirname(__file__), "data", "lerobot_written", "dataset")


def write_dataset(root: str, env, fps: float = 20.0, episodes: int = 2) -> str:
    """A small dataset with the env's own features (random values)."""
    writer = LeRobotDatasetWriter.create(root, fps=fps, features=env_features(env))
    rng = np.random.default_rng(0)
    for _ in range(episodes):
        for _ in range(3):
            writer.add_frame({k: rng.uniform(-1, 1, v["shape"]).astype(np.float32) if v["dtype"] == "float32" else
                              np.zeros(v["shape"], np.uint8) for k, v in env_features(env).items()}, "reach")
        writer.save_episode()
    return root


def sft_config(tmp_path, paths, task: str = "PickCube") -> TrainConfig:
    cfg = TrainConfig()
    cfg.env.task = task
    cfg.algo = SFTConfig(sft_steps=2, sft_eval_interval=0, batch_size=4)
    cfg.data.paths = list(paths)
    cfg.experiment.output_dir, cfg.experiment.progress, cfg.experiment.video = str(tmp_path / "run"), False, False
    cfg.experiment.eval_episodes, cfg.experiment.eval_num_envs = 2, 2
    return cfg


def edit_info(root: str, change) -> None:
    path = os.path.join(root, "meta", "info.json")
    info = json.load(open(path))
    change(info)
    json.dump(info, open(path, "w"))


@pytest.fixture(scope="module")
def reach_env():
    return make_env(task="Reach", num_envs=1, autoreset=False)


def test_another_robots_state_and_actions_are_named(tmp_path):
    """A LeRobot-written dataset with 6-D state and actions, trained on PickCube (19-D state, 4-D actions)."""
    root = str(tmp_path / "six_dof")
    shutil.copytree(LEROBOT_WRITTEN, root)

    def six_dof(info):
        info["features"]["observation.state"]["shape"] = [6]
        info["features"]["action"] |= {"shape": [6], "names": [f"joint{i}" for i in range(6)]}
    edit_info(root, six_dof)
    with pytest.raises(ValueError) as error:
        SFTTrainer(sft_config(tmp_path, [root]))
    lines = str(error.value).splitlines()[1:]
    assert len(lines) == 3
    assert f"{root}: action is [6]-D" in lines[0] and "[4]-D ['dx', 'dy', 'dz', 'gripper']" in lines[0]
    assert "observation.state has shape [6] but the env gives [19]" in lines[1]
    assert "observation.environment_state has shape [6] but the env gives [17]" in lines[2]  # Reach's, not PickCube's


def test_joint_space_demos_name_the_controller_to_use(tmp_path):
    joint_env = make_env(task="StackCube", num_envs=1, controller="joint_delta", autoreset=False)
    root = write_dataset(str(tmp_path / "stack_joint"), joint_env)
    with pytest.raises(ValueError, match=r"action is \[8\]-D .* takes \[4\]-D .*: set env.controller=joint_delta"):
        SFTTrainer(sft_config(tmp_path, [root], task="StackCube"))
    cfg = sft_config(tmp_path, [root], task="StackCube")
    cfg.env.controller = "joint_delta"
    assert SFTTrainer(cfg).train()["episodes"] == 2  # the fix works as written


@pytest.mark.parametrize("fps", [5.0, 30.0])
def test_a_dataset_at_another_rate_is_refused(tmp_path, reach_env, fps):
    root = write_dataset(str(tmp_path / f"fps{fps:g}"), reach_env, fps=fps)
    with pytest.raises(ValueError, match=rf"{root}: recorded at {fps:g} fps but the env steps at 20 Hz"):
        SFTTrainer(sft_config(tmp_path, [root], task="Reach"))


def test_missing_features_are_named_with_the_fix(tmp_path, reach_env):
    root = write_dataset(str(tmp_path / "no_action"), reach_env)
    edit_info(root, lambda info: info["features"].pop("action"))
    with pytest.raises(ValueError, match=r"no feature 'action', which the policy needs: a dataset without actions"):
        SFTTrainer(sft_config(tmp_path, [root], task="Reach"))
    root = write_dataset(str(tmp_path / "no_task_state"), reach_env)
    edit_info(root, lambda info: info["features"].pop("observation.environment_state"))
    with pytest.raises(ValueError, match=r"no feature 'observation.environment_state'.*policy.obs_keys=\[state\]"):
        SFTTrainer(sft_config(tmp_path, [root], task="Reach"))
    cfg = sft_config(tmp_path, [root], task="Reach")
    cfg.policy.obs_keys = ["state"]
    assert SFTTrainer(cfg).train()["episodes"] == 2  # proprioception only: the fix trains


def test_a_camera_policy_needs_the_camera_in_the_dataset(tmp_path, reach_env):
    root = write_dataset(str(tmp_path / "no_images"), reach_env)
    cfg = sft_config(tmp_path, [root], task="Reach")
    cfg.policy.name, cfg.policy.cameras, cfg.env.cameras = "vla", ["front"], ["front"]
    with pytest.raises(ValueError, match=r"no feature 'observation.images.front'.*--cameras front"):
        SFTTrainer(cfg)


def test_the_rl_anchor_is_checked_too(tmp_path, reach_env):
    root = write_dataset(str(tmp_path / "fast"), reach_env, fps=30.0)
    cfg = sft_config(tmp_path, [], task="Reach")
    cfg.algo.name, cfg.algo.anchor_coef, cfg.data.anchor_paths = "ppo", 0.1, [root]
    with pytest.raises(ValueError, match="recorded at 30 fps"):
        Trainer(cfg)


def test_invalid_info_json_names_the_file(tmp_path, reach_env):
    root = write_dataset(str(tmp_path / "broken"), reach_env)
    with open(os.path.join(root, "meta", "info.json"), "w") as f:
        f.write("{not json")
    with pytest.raises(ValueError, match=rf"{root}/meta/info.json is not valid JSON"):
        SFTTrainer(sft_config(tmp_path, [root], task="Reach"))
