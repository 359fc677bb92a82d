"""Demonstrations for off-policy RL from LeRobot datasets: recordings carry each step's reward, and a dataset becomes
a replay buffer whose transitions are the episodes' consecutive frames."""

import numpy as np
import pytest
import torch

from embodied.data.dataset_replay import replay_from_datasets
from embodied.data.demos import REWARD, env_features, record_expert_demos
from embodied.data.writer import LeRobotDatasetWriter

FEATURES = {"observation.state": {"dtype": "float32", "shape": [1], "names": None},
            "observation.environment_state": {"dtype": "float32", "shape": [2], "names": None},
            "action": {"dtype": "float32", "shape": [1], "names": ["a"]},
            REWARD: {"dtype": "float32", "shape": [1], "names": None}}


def write_episodes(root: str, lengths: list[int], features: dict = FEATURES) -> str:
    """Episode e's frame t: state 10 e + t, task state (t, -t), action 100 + t, reward t / 10."""
    writer = LeRobotDatasetWriter.create(root, fps=20, features=features)
    for e, length in enumerate(lengths):
        for t in range(length):
            frame = {"observation.state": np.array([10.0 * e + t], np.float32),
                     "observation.environment_state": np.array([t, -t], np.float32),
                     "action": np.array([100.0 + t], np.float32), REWARD: np.array([t / 10], np.float32)}
            writer.add_frame({key: value for key, value in frame.items() if key in features}, "task")
        writer.save_episode()
    return root


def test_a_dataset_becomes_consecutive_frame_transitions_with_shorter_episodes_repeated(tmp_path):
    buffer = replay_from_datasets([write_episodes(str(tmp_path / "d"), [4, 3])], ["state", "privileged"], n_step=1,
                                  gamma=0.5)
    assert buffer.num_envs == 2 and buffer.steps == 3 + 1  # the longest episode's 3 transitions and n_step rows more
    rows = torch.arange(3)
    first = buffer.transitions(rows, torch.zeros(3, dtype=torch.long))  # episode 0: frames 0 -> 1 -> 2 -> 3
    assert first["obs"]["state"].flatten().tolist() == [0.0, 1.0, 2.0]
    assert first["next_obs"]["state"].flatten().tolist() == [1.0, 2.0, 3.0]  # the last from the episode's last frame
    assert first["action"].flatten().tolist() == [100.0, 101.0, 102.0]
    torch.testing.assert_close(first["reward"], torch.tensor([0.0, 0.1, 0.2]))
    torch.testing.assert_close(first["discount"], torch.tensor([0.5, 0.5, 0.5]))  # truncated: bootstrapped
    second = buffer.transitions(rows, torch.ones(3, dtype=torch.long))  # episode 1 (2 transitions) starts again
    assert second["obs"]["state"].flatten().tolist() == [10.0, 11.0, 10.0]
    assert second["next_obs"]["state"].flatten().tolist() == [11.0, 12.0, 11.0]
    assert second["obs"]["privileged"][1].tolist() == [1.0, -1.0]


def test_a_dataset_without_rewards_is_refused_with_the_fix(tmp_path):
    no_reward = {key: value for key, value in FEATURES.items() if key != REWARD}
    root = write_episodes(str(tmp_path / "d"), [3], no_reward)
    with pytest.raises(ValueError, match="next.reward"):
        replay_from_datasets([root], ["state"], n_step=1, gamma=0.9)
    with pytest.raises(ValueError, match="state observations"):
        replay_from_datasets([root], ["rgb"], n_step=1, gamma=0.9)


def test_recorded_demonstrations_carry_the_reward_the_env_gave_each_step(tmp_path, monkeypatch):
    from embodied.data.reader import LeRobotDataset
    from sims import make_env

    env = make_env(task="Reach", num_envs=2, autoreset=False)
    given = []
    step = env.step
    monkeypatch.setattr(env, "step", lambda action: (lambda out: given.append(out[1].clone()) or out)(step(action)))
    writer = LeRobotDatasetWriter.create(str(tmp_path / "d"), fps=20, features=env_features(env))
    record_expert_demos(env, writer, num_episodes=2, seed=0, progress=False, only_successes=False)
    env.close()
    recorded = LeRobotDataset(str(tmp_path / "d")).columns[REWARD].reshape(2, -1)  # [episodes, steps]
    expected = torch.stack(given, dim=1)[:, :recorded.shape[1]]  # [envs, steps]
    np.testing.assert_allclose(recorded, expected.numpy(), rtol=1e-6)
    assert expected.std() > 0.05  # a shaped reward that changes over the episode: a wrong alignment would show


def test_rlpd_reads_its_demonstrations_from_data_paths(tmp_path):
    from embodied.runner.offpolicy import OffPolicyTrainer
    from sims import make_env
    from tests.test_training import config

    env = make_env(task="Reach", num_envs=3, autoreset=False)
    writer = LeRobotDatasetWriter.create(str(tmp_path / "demos"), fps=float(env.control_hz),
                                         features=env_features(env))
    record_expert_demos(env, writer, num_episodes=3, seed=0, progress=False)
    env.close()
    cfg = config(tmp_path / "run", algo__name="rlpd", policy__name="tanh_mlp", env__num_envs=4, algo__demo_episodes=0,
                 data__paths=[str(tmp_path / "demos")], algo__batch_size=8, algo__learning_starts=0,
                 algo__rollout_steps=2)
    trainer = OffPolicyTrainer(cfg)
    assert trainer.demos.num_envs == 3  # one env per recorded episode
    trainer._collect_and_learn()
    assert trainer.counters["updates"] > 0


def test_expert_episodes_and_datasets_together_are_refused(tmp_path):
    from embodied.config.schema import validate
    from tests.test_training import config

    cfg = config(tmp_path, algo__name="rlpd", policy__name="tanh_mlp", data__paths=["demos/pick_cube"])
    with pytest.raises(ValueError, match="set algo.demo_episodes=0"):
        validate(cfg)  # RLPD's default 20 expert episodes and a dataset: which one was meant is not clear
    validate(config(tmp_path, algo__name="rlpd", policy__name="tanh_mlp", data__paths=["demos/pick_cube"],
                    algo__demo_episodes=0))
    with pytest.raises(ValueError, match="demonstrations"):
        validate(config(tmp_path, algo__name="rlpd", policy__name="tanh_mlp", algo__demo_episodes=0))
    with pytest.raises(ValueError, match="algo.demo_ratio=0 samples no demonstrations"):
        validate(config(tmp_path, algo__name="rlpd", policy__name="tanh_mlp", algo__demo_ratio=0.0))


def test_resuming_a_recording_made_before_rewards_goes_on_without_them(tmp_path):
    from embodied.cli.record_demos import main as record
    from embodied.data.reader import LeRobotDataset
    from sims import make_env

    env = make_env(task="Reach", num_envs=1, autoreset=False, cameras=())
    old = {key: value for key, value in env_features(env).items() if key != REWARD}  # a dataset of an older version
    writer = LeRobotDatasetWriter.create(str(tmp_path / "d"), fps=float(env.control_hz), features=old,
                                         robot_type="embodied_sim_panda")
    record_expert_demos(env, writer, num_episodes=1, seed=0, progress=False)
    env.close()
    record(["--task", "Reach", "--episodes", "1", "--num-envs", "1", "--cameras", "--out", str(tmp_path / "d"),
            "--resume"])
    dataset = LeRobotDataset(str(tmp_path / "d"))
    assert len(dataset.episodes) == 2 and REWARD not in dataset.features
