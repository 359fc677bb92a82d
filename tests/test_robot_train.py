"""``embodied-train robot=sim_twin``: SAC on the twin through the actor-learner loop, from the CLI's config."""

import os
import signal

import pytest
import torch

from embodied.cli.train import compose_train_config
from embodied.data.reader import LeRobotDataset
from embodied.robot_rl.env import RobotEnv
from embodied.runner.loops import make_trainer
from embodied.runner.robot import RobotRLRun
from tests.ctrl_c import ctrl_c_on_call

torch.set_num_threads(1)
ROBOT_RUN = ["robot=sim_twin", "algo=sac", "policy=tanh_mlp", "env.num_envs=1", "robot_rl.control_hz=0",
             "experiment.eval_episodes=4", "experiment.progress=false"]
SMALL_SAC = ["algo.learning_starts=30", "algo.batch_size=16"]


def robot_run(out, *overrides: str) -> RobotRLRun:
    """The run ``embodied-train`` builds for ROBOT_RUN + SMALL_SAC + ``overrides``; an override of a key or group
    replaces ROBOT_RUN's (SMALL_SAC goes with algo=sac only)."""
    given = {override.partition("=")[0] for override in overrides}
    base = [o for o in ROBOT_RUN + (SMALL_SAC if "algo" not in given else []) if o.partition("=")[0] not in given]
    return make_trainer(compose_train_config([*base, f"experiment.output_dir={out}", *overrides]))


def test_a_robot_run_records_every_episode_and_resume_goes_on_from_the_last(tmp_path):
    out = str(tmp_path / "run")
    person = ["robot_rl.person=scripted", "robot_rl.person_episodes=2", "robot_rl.person_after_step=5"]
    run = robot_run(out, "experiment.total_env_steps=160", *person)
    assert isinstance(run, RobotRLRun)
    final = run.train()
    assert final["episodes"] == 4 and os.path.isfile(run.summary_path)
    counters = run.trainer.counters
    episodes = counters["robot_episodes"]
    assert episodes >= 3 and counters["env_steps"] <= 160  # the steps of the ended episodes (50 or fewer each)
    data = LeRobotDataset(os.path.join(out, "robot_data"))
    assert len(data.episodes) in (episodes, episodes + 1)  # the open episode is saved too when the run ends
    intervened = [bool(data[i]["intervention"].reshape(-1)[0]) for i in range(len(data))]
    assert 5 <= sum(intervened) <= 2 * 50  # the person drove steps 5 on of the first two episodes only
    assert run.trainer.demos is not None and len(run.trainer.demos) > 0  # and they are the run's demonstrations

    resumed = robot_run(out, "experiment.total_env_steps=260", "resume=true", *person)  # the run's own settings
    saved_steps = int(data.episodes[episodes - 1]["dataset_to_index"])  # the frames of the ended episodes
    assert resumed.trainer.counters["env_steps"] == saved_steps  # from the last ended episode
    resumed.train()
    assert resumed.trainer.counters["robot_episodes"] > episodes
    assert len(LeRobotDataset(os.path.join(out, "robot_data")).episodes) > len(data.episodes)  # appended


@pytest.mark.parametrize("overrides, message", [
    (["algo=ppo", "policy=mlp"], "algo must be sac"),
    (["env.num_envs=4"], "env.num_envs=1"),
    (["env=pick_cube"], "robot.task=PickCube"),
    (["robot.domain=shifted"], "env.domain=shifted"),
    (["robot_rl.person_episodes=3"], "robot_rl.person=scripted"),
    (["robot_rl.control_hz=-1"], "robot_rl.control_hz must be > 0"),
], ids=["algo", "num_envs", "task", "domain", "person", "rate"])
def test_a_bad_robot_setting_is_refused_before_anything_moves(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        robot_run(str(tmp_path), *overrides)


def test_ctrl_c_stops_the_arm_keeps_the_saved_episodes_and_saves_the_policy(tmp_path, monkeypatch):
    out = str(tmp_path / "run")
    run = robot_run(out, "experiment.total_env_steps=1000")
    with ctrl_c_on_call(monkeypatch, RobotEnv, "step", 80):  # in the second episode (50 steps each)
        final = run.train()
    assert set(final) == {"interrupted_at"} and final["interrupted_at"] == 1
    assert not run.robot.is_connected and os.path.isdir(os.path.join(out, "final_policy"))
    assert run.trainer.counters["robot_episodes"] == 1
    assert len(LeRobotDataset(os.path.join(out, "robot_data")).episodes) == 2  # the one ended, and the stopped one
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the terminal's Ctrl-C is given back


def test_the_twin_stands_in_for_the_shifted_domain():
    from real_robot.sim_twin import SimTwinRobot

    frames = {}
    for domain in ("sim", "shifted"):
        robot = SimTwinRobot(task="Reach", cameras=("front",), image_size=(32, 32), seed=0, domain=domain)
        robot.connect()
        assert robot.env.domain == domain
        frames[domain] = robot.get_observation()["images.front"].astype(int)
        robot.disconnect()
    assert abs(frames["sim"] - frames["shifted"]).mean() > 5  # colours, light and camera pose differ
