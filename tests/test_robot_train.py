"""``embodied-train robot=sim_twin``: SAC on the twin through the actor-learner loop, from the CLI's config."""

import dataclasses
import os
import signal

import pytest
import torch

from embodied.cli.train import compose_train_config
from embodied.data.reader import LeRobotDataset
from embodied.robot_rl.env import RobotEnv
from embodied.runner.loops import make_trainer
from embodied.runner.robot import RobotRLRun
from tests.ctrl_c import ctrl_c_on_call, terminal_ctrl_c  # noqa: F401 (a fixture)

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
    for episode, row in enumerate(data.episodes):  # the person drove steps 5 on of the first two episodes only
        frames = range(int(row["dataset_from_index"]), int(row["dataset_to_index"]))
        driven = [bool(data[i]["intervention"].reshape(-1)[0]) for i in frames]
        assert driven == [episode < 2 and step >= 5 for step in range(len(driven))], (episode, driven)
    assert run.trainer.demos is not None and len(run.trainer.demos) > 0  # and they are the run's demonstrations

    resumed = robot_run(out, "experiment.total_env_steps=260", "resume=true", *person)  # the run's own settings
    saved_steps = int(data.episodes[episodes - 1]["dataset_to_index"])  # the frames of the ended episodes
    assert resumed.trainer.counters["env_steps"] == saved_steps  # from the last ended episode
    resumed.train()
    assert resumed.trainer.counters["robot_episodes"] > episodes
    assert len(LeRobotDataset(os.path.join(out, "robot_data")).episodes) > len(data.episodes)  # appended


@pytest.mark.parametrize("overrides, error, message", [
    (["algo=ppo", "policy=mlp"], ValueError, "algo must be sac"),
    (["env.num_envs=4"], ValueError, "env.num_envs=1"),
    (["env=pick_cube"], ValueError, "robot.task=PickCube"),
    (["robot.domain=shifted"], ValueError, "env.domain=shifted"),
    (["robot_rl.person_episodes=3"], ValueError, "robot_rl.person=scripted"),
    (["robot_rl.control_hz=-1"], ValueError, "robot_rl.control_hz must be > 0"),
    (["algo.pretrain_steps=10"], ValueError, "does not pre-train"),
    (["data.paths=[demos/reach]"], ValueError, "set data.paths=\\[\\]"),
    (["robot_rl.person=joystick", "robot_rl.person_episodes=1"], KeyError, "'joystick'"),
    (["robot_rl.safety.watchdog_s=-1"], ValueError, "watchdog_s"),
    (["robot_rl.twin_domain=real"], ValueError, r"twin_domain='real' is not a domain; set one of \['shifted', "),
    (["robot_rl.eval_every=-1"], ValueError, "eval_every must be >= 0"),
    (["robot_rl.twin_domain=shifted_twin"], ValueError, "robot_rl.twinrl_every=0 turns off"),
    (["policy=pixel_tanh", "robot.cameras=[front]", "env.image_size=[32,32]"], ValueError,
     r"renders robot.image_size=\[64, 64\] .* set robot.image_size=\[32,32\]"),
], ids=["algo", "num_envs", "task", "domain", "person", "rate", "pretrain", "dataset", "device", "limits",
        "twin_domain", "eval_every", "unmined_twin", "image_size"])
def test_a_bad_robot_setting_is_refused_before_anything_moves(tmp_path, overrides, error, message):
    with pytest.raises(error, match=message):
        robot_run(str(tmp_path), *overrides)


def test_rl_in_the_twin_before_deployment_is_the_robot_recipe_in_simulation():
    """experiment=twin_pixels (TwinRL part 2) trains with experiment=robot_pixels' algorithm and policy, on simulated
    worlds of the cell's twin instead of a robot."""
    on_robot = compose_train_config(["experiment=robot_pixels", "init_from=sft"])
    in_twin = compose_train_config(["experiment=twin_pixels", "init_from=sft"])
    pull = {"pretrained_anchor_coef": 10.0, "pretrained_anchor_steps": 10000}  # on the success reward only
    assert dataclasses.replace(in_twin.algo, **pull) == on_robot.algo and in_twin.policy == on_robot.policy
    assert (in_twin.algo.gamma, in_twin.algo.pretrained_anchor_coef) == (0.8, 1.0)
    assert on_robot.robot["type"] == "sim_twin" and not in_twin.robot  # so make_trainer builds the simulated run
    assert (in_twin.env.domain, in_twin.env.num_envs, on_robot.env.num_envs) == ("shifted_twin", 8, 1)


def test_a_new_run_refuses_a_robot_dataset_another_run_wrote(tmp_path):
    robot_run(tmp_path / "first", "experiment.total_env_steps=5").train()
    with pytest.raises(FileExistsError, match="resume=true appends"):
        robot_run(tmp_path / "second", f"robot_rl.record={tmp_path / 'first' / 'robot_data'}")


@pytest.mark.usefixtures("terminal_ctrl_c")
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


def saved_classifier(folder, logit: float, image_size=(32, 32)) -> str:
    """A success classifier of the front camera (``image_size``) whose verdict is fixed by its bias: solved for a
    positive ``logit``, not for a negative one."""
    from embodied.robot_rl.success import SuccessClassifier

    model = SuccessClassifier("front", image_size)
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.fill_(logit)
    model.save_pretrained(str(folder))
    return str(folder)


def test_a_success_classifier_is_the_reward_source_as_on_hardware(tmp_path):
    """A classifier that calls every frame solved ends each episode at its first step with reward 1, though the
    twin's own check says the target is not reached."""
    always = saved_classifier(tmp_path / "always_solved", 10.0)
    run = robot_run(tmp_path / "run", "robot.cameras=[front]", "robot.image_size=[32,32]",
                    f"robot_rl.success={always}", "robot_rl.success_keys=false", "experiment.total_env_steps=12")
    run.train()
    data = LeRobotDataset(os.path.join(tmp_path, "run", "robot_data"))
    assert run.trainer.counters["robot_episodes"] == 12 and len(data.episodes) == 12  # one step each
    assert float(run.trainer.buffer.store["reward"][:12].sum()) == 12.0


@pytest.mark.parametrize("overrides, error, message", [
    (["robot_rl.success=/nowhere"], FileNotFoundError, "not a success classifier"),
    (["robot.cameras=[]", "robot_rl.success={classifier}"], ValueError, "reads camera 'front'"),
], ids=["path", "camera"])
def test_a_success_classifier_that_cannot_run_is_refused(tmp_path, overrides, error, message):
    classifier = saved_classifier(tmp_path / "classifier", 0.0)
    with pytest.raises(error, match=message):
        robot_run(tmp_path / "run", *[o.format(classifier=classifier) for o in overrides])


def test_a_robot_run_learns_from_offline_demonstrations_beside_the_persons(tmp_path):
    run = robot_run(tmp_path / "run", "algo.demo_episodes=2", "algo.demo_ratio=0.5", "experiment.total_env_steps=60",
                    "robot_rl.person=scripted", "robot_rl.person_episodes=1", "robot_rl.person_after_step=5")
    offline = run.trainer.demos
    run.train()
    pool = run.trainer.demos
    assert pool.offline is offline and len(pool.interventions) > 0  # the expert's 2 episodes and the person's steps
    assert len(pool) == len(offline) * offline.num_envs + len(pool.interventions)
    # scored as the robot is: reward 1 only at the success that ends the episode (Reach's env is dense otherwise)
    steps = len(offline)
    reward, ended = offline.store["reward"][:steps].float(), offline.store["terminated"][:steps]
    assert ended.sum() == 2 and torch.equal(reward, ended.float())


@pytest.mark.parametrize("twin", ["sim", "shifted_twin"])
def test_twinrl_mining_steers_the_twins_next_resets(tmp_path, twin):
    """Before the first episode (and after every second), the learner's policy is evaluated in the twin and the
    next two resets are that round's mined scenes: the sim twin starts those episodes from the proposed (seed, reset
    id), each round's from its own seed."""
    run = robot_run(tmp_path / "run", "robot_rl.twinrl_every=2", "robot_rl.twinrl_evaluated=8",
                    "robot_rl.twinrl_candidates=16", "experiment.eval_num_envs=8", "experiment.total_env_steps=150",
                    "robot.domain=shifted", "env.domain=shifted",  # the sim twin stands in for a shifted real cell
                    f"robot_rl.twin_domain={twin}")
    resets = []
    reset_scene = run.robot.reset_scene
    run.robot.reset_scene = lambda seed=None, reset_id=0: resets.append((seed, reset_id)) or reset_scene(seed, reset_id)
    run.train()
    mining_seed = run.cfg.experiment.seed + 104_729  # + the episodes before the round
    assert len(resets) == run.trainer.counters["robot_episodes"] >= 3
    assert [seed for seed, _ in resets] == [mining_seed + episode // 2 * 2 for episode in range(len(resets))]
    assert all(8 <= reset_id < 24 for _, reset_id in resets)  # among the 16 candidates after the 8 evaluated
    assert run._mining_env.domain == twin and run.trainer.env.domain == "shifted"  # mined in the model of the cell


def test_a_resumed_run_mines_only_the_rest_of_its_round(tmp_path, monkeypatch):
    """Resumed after an odd number of episodes with twinrl_every=2, the first round proposes one reset, so that the
    rounds stay two episodes apart (no proposal left over from a round when the next one mines)."""
    import embodied.runner.robot as robot_runner
    counts = []
    real_mine = robot_runner.mine_failures
    monkeypatch.setattr(robot_runner, "mine_failures", lambda *args: counts.append(args[-1]) or real_mine(*args))
    mining = ["robot_rl.twinrl_every=2", "robot_rl.twinrl_evaluated=8", "robot_rl.twinrl_candidates=16",
              "experiment.eval_num_envs=8", "env.max_episode_steps=10"]
    robot_run(tmp_path / "run", *mining, "experiment.total_env_steps=30").train()  # 3 episodes of 10 steps
    assert counts == [2, 2]  # before episode 1, after episode 2
    resumed = robot_run(tmp_path / "run", *mining, "experiment.total_env_steps=60", "resume=true")
    assert resumed.trainer.counters["robot_episodes"] == 3
    resumed.train()
    assert counts == [2, 2, 1, 2]  # the rest of the round (episode 4), then full rounds (episodes 5 and 6)


def test_eval_every_measures_uniform_resets_in_the_robots_domain(tmp_path, monkeypatch):
    import embodied.runner.robot as robot_runner
    calls = []
    real_evaluate = robot_runner.evaluate
    monkeypatch.setattr(robot_runner, "evaluate", lambda policy, env, episodes, seed: calls.append(
        (env.domain, episodes, seed, run.trainer.counters["robot_episodes"])) or real_evaluate(policy, env, episodes,
                                                                                             seed))
    logged = []  # (prefix, names, step) of every scalars call
    real_scalars = robot_runner.RunLogger.scalars
    monkeypatch.setattr(robot_runner.RunLogger, "scalars", lambda self, prefix, values, step: logged.append(
        (prefix, set(values), step)) or real_scalars(self, prefix, values, step))
    run = robot_run(tmp_path / "run", "robot_rl.eval_every=2", "experiment.total_env_steps=210",
                    "robot.domain=shifted", "env.domain=shifted", "experiment.eval_num_envs=4")
    run.train()
    episodes = run.trainer.counters["robot_episodes"]
    assert episodes >= 4 and calls == [("shifted", 4, 10_000, n) for n in range(2, episodes + 1, 2)]  # every second
    learner = [names for prefix, names, step in logged if prefix == "train"]  # each episode's update means
    filled = [{"critic_loss", "q", "actor_loss"} <= names for names in learner]  # updates start at step 30 of 210
    assert len(learner) == episodes and sum(filled) >= episodes - 1 and filled[-1]
