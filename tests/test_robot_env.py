"""A robot as an RL env (embodied.robot_rl): the sim twin behind the safety guard on the batched env API."""

import numpy as np
import pytest
import torch

from embodied.data.reader import LeRobotDataset
from embodied.deploy.mapping import ActionMapper, robot_kinematics
from embodied.deploy.recorder import EpisodeRecorder
from embodied.deploy.session import make_observer
from embodied.robot_rl.env import PersonReset, RobotEnv
from real_robot.errors import SafetyStop
from real_robot.safety import SafetyGuard, SafetyLimits
from real_robot.sim_twin import SimTwinRobot

torch.set_num_threads(1)


OPEN_ENVS: list[RobotEnv] = []


@pytest.fixture
def twin():
    robot = SimTwinRobot(task="Reach", cameras=(), seed=0)
    robot.connect()
    yield robot
    while OPEN_ENVS:  # stop each env's watchdog before the twin goes
        OPEN_ENVS.pop().close()
    robot.disconnect()


def make_env(robot, limits=None, success=None, max_episode_steps=50, **kwargs) -> RobotEnv:
    kinematics = robot_kinematics(robot)
    guard = SafetyGuard(robot, limits or SafetyLimits(), control_dt=0.05, forward_kinematics=kinematics.tool_position)
    observe = make_observer(robot, 20.0, [], "", kinematics)
    success = success or (lambda robot_obs: robot.task_success)
    env = RobotEnv(robot, guard, ActionMapper("ee_delta_pos", kinematics), observe, success, max_episode_steps,
                   **kwargs)
    OPEN_ENVS.append(env)
    return env


def test_the_policy_acts_through_the_mapper_and_the_guard(twin):
    """An end-effector action moves the twin's tool along it; a tight guard limits every joint's step."""
    push_x = torch.tensor([[1.0, 0.0, 0.0, 1.0]])
    env = make_env(twin)
    obs, _ = env.reset(seed=0)
    assert obs["state"].shape == (1, env.observation_spec.state_dim) and env.action_spec.dim == 4
    tool_before = obs["state"][0, -3:].clone()
    for _ in range(5):
        obs, *_ = env.step(push_x)
    moved = obs["state"][0, -3:] - tool_before
    assert moved[0] > 0.04 and moved[1:].abs().max() < 0.005  # 5 steps of up to 1.5 cm along +x
    tight = make_env(twin, limits=SafetyLimits(max_relative_target=0.01))
    obs, _ = tight.reset(seed=0)
    q_before = obs["state"][0, :7].clone()
    for _ in range(5):
        obs, *_ = tight.step(push_x)
    assert (obs["state"][0, :7] - q_before).abs().max() <= 5 * 0.01 + 1e-6
    assert tight.guard.counters["step_limited"] == 5 and env.guard.counters["step_limited"] == 0


def test_reset_ids_fix_the_twin_scene_and_the_time_limit_resets(twin):
    env = make_env(twin, max_episode_steps=3)
    first = env.reset(seed=3, reset_ids=[0])[0]["privileged"]
    other = env.reset(seed=3, reset_ids=[1])[0]["privileged"]
    again = env.reset(seed=3, reset_ids=[0])[0]["privileged"]
    assert torch.equal(first, again) and not torch.equal(first, other)
    zero = torch.zeros(1, 4)
    for _ in range(2):
        assert not env.step(zero)[3].any()
    obs, reward, terminated, truncated, info = env.step(zero)
    assert truncated.tolist() == [True] and not terminated.any() and "final_obs" in info
    assert obs["elapsed"].tolist() == [0] and env.reset_ids.tolist() == [1]  # the next id after reset(seed=3, [0])
    assert env.episodes == 4 and env.reset_seconds == []  # the twin reset itself every time


def test_success_is_the_reward_and_ends_the_episode(twin):
    calls = []
    env = make_env(twin, success=lambda robot_obs: calls.append(robot_obs) or len(calls) >= 2)
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step(torch.zeros(1, 4))
    assert reward.tolist() == [0.0] and not terminated.any()
    _, reward, terminated, _, info = env.step(torch.zeros(1, 4))
    assert reward.tolist() == [1.0] and terminated.tolist() == [True] and info["success"].tolist() == [True]
    assert "joint_positions" in calls[0]  # the source sees the robot's own observation


def test_a_person_resets_a_real_arm_while_it_holds(twin, monkeypatch):
    monkeypatch.setattr(twin, "reset_scene", lambda seed=None: False)  # as every real robot
    holds, prompts, clock = [], [], iter([10.0, 14.5, 20.0, 21.0])
    monkeypatch.setattr(twin, "hold", lambda: holds.append(1))
    env = make_env(twin, person_reset=PersonReset(ask=prompts.append, clock=lambda: next(clock)))
    env.reset(seed=0)
    env.reset(seed=0)
    assert env.reset_seconds == [4.5, 1.0] and len(prompts) == 2 and "episode 1" in prompts[1]
    assert len(holds) >= 2  # held before each prompt (and when the previous episode ended)


def test_every_step_is_recorded_and_saved_at_the_reset(twin, tmp_path):
    root = str(tmp_path / "robot_rl")
    env = make_env(twin, recorder=EpisodeRecorder(root, 20.0, "sim_twin_panda"))
    env.reset(seed=0)
    actions = [torch.tensor([[0.5, -0.5, 0.2, -1.0]]) for _ in range(4)]
    for action in actions:
        env.step(action)
    env.reset(seed=0)  # the episode is saved here
    data = LeRobotDataset(root)
    assert len(data) == 4
    command = torch.stack([torch.as_tensor(data[i]["command"]).reshape(-1) for i in range(4)])
    assert torch.allclose(command, torch.cat(actions))
    sent = np.stack([np.asarray(data[i]["action"]).reshape(-1) for i in range(4)])
    # what the arm made: the guard closes the gripper 0.5 of its opening per step (1 -> 0.5 -> 0: normalised 0, -1)
    assert np.allclose(sent[:, -1], [0, -1, -1, -1], atol=1e-6)
    assert (np.sign(sent[:, :3]) == [1, -1, 1]).all() and (np.abs(sent[:, :3]) > 0.05).all()


def test_a_robot_fault_stops_the_arm_and_the_run(twin, monkeypatch):
    env = make_env(twin)
    env.reset(seed=0)

    def broken(action):
        raise RuntimeError("socket closed")

    monkeypatch.setattr(twin, "send_action", broken)
    with pytest.raises(SafetyStop, match="socket closed"):
        env.step(torch.zeros(1, 4))
    assert not twin.is_connected  # safe_stop held and disconnected


def test_refuses_a_robot_that_is_not_connected():
    with pytest.raises(ValueError, match="connect"):
        make_env(SimTwinRobot(task="Reach", cameras=()))
