"""A robot as an RL env (embodied.robot_rl): the sim twin behind the safety guard on the batched env API."""

import os

import numpy as np
import pytest
import torch

from embodied.data.reader import LeRobotDataset
from embodied.deploy.mapping import ActionMapper, robot_kinematics
from embodied.deploy.recorder import EpisodeRecorder
from embodied.deploy.session import make_observer
from embodied.robot_rl.env import PersonReset, RobotEnv
from embodied.robot_rl.intervention import Intervention, after_step
from real_robot.errors import SafetyStop
from real_robot.safety import SafetyGuard, SafetyLimits
from real_robot.sim_twin import SimTwinRobot
from real_robot.teleop.scripted import ScriptedDevice

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
    calls = []  # the source judges the first observation at the reset, then each step's
    env = make_env(twin, success=lambda robot_obs: calls.append(robot_obs) or len(calls) >= 3)
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step(torch.zeros(1, 4))
    assert reward.tolist() == [0.0] and not terminated.any()
    _, reward, terminated, _, info = env.step(torch.zeros(1, 4))
    assert reward.tolist() == [1.0] and terminated.tolist() == [True] and info["success"].tolist() == [True]
    assert "joint_positions" in calls[0]  # the source sees the robot's own observation


def test_a_person_resets_a_real_arm_while_it_holds(twin, monkeypatch):
    monkeypatch.setattr(twin, "reset_scene", lambda seed=None, reset_id=0: False)  # as every real robot
    prompts, clock = [], iter([10.0, 14.5, 20.0, 21.0])
    watchdogs = []  # the guard's watchdog while the person resets: stopped (none)
    ask = lambda message: prompts.append(message) or watchdogs.append(env.guard._watchdog)  # noqa: E731
    env = make_env(twin, person_reset=PersonReset(ask=ask, clock=lambda: next(clock)))
    env.reset(seed=0)
    assert env.guard._watchdog is not None  # engaged for the episode
    env.reset(seed=0)
    assert env.reset_seconds == [4.5, 1.0] and len(prompts) == 2 and "episode 2:" in prompts[1]
    assert watchdogs == [None, None]  # disengaged (held) before each prompt
    env.close()
    assert env.guard._watchdog is None
    with pytest.raises(RuntimeError, match="reset"):
        env.step(torch.zeros(1, 4))  # after close, no command without a new episode


def test_the_reset_prompt_drops_keys_typed_before_it_appeared_and_ends_at_enter_or_a_stop(monkeypatch):
    """An Enter pressed while the learner saved or mined must not start the next episode on a scene nobody reset;
    a stop requested while the person resets ends the wait (the run then stops, the arm held)."""
    import termios

    import embodied.robot_rl.env as robot_env
    read_fd, write_fd = os.pipe()
    flushed = []
    monkeypatch.setattr(robot_env.os, "isatty", lambda fd: True)  # as a terminal: typed-ahead keys are dropped
    monkeypatch.setattr(termios, "tcflush", lambda fd, queue: flushed.append((fd, queue)) or os.read(fd, 4096))
    os.write(write_fd, b"\n")  # an early Enter
    os.write(write_fd, b"x")  # (flushed with it: one read takes both)
    polls = []
    stopped = lambda: polls.append(1) or len(polls) > 3  # noqa: E731
    assert robot_env.ask_on_terminal("episode 3: reset the scene", stopped, fd=read_fd) is False  # not answered
    assert flushed == [(read_fd, termios.TCIFLUSH)] and len(polls) == 4
    monkeypatch.setattr(robot_env.os, "isatty", lambda fd: False)  # a pipe: nothing to flush
    os.write(write_fd, b"\n")  # Enter after the prompt
    assert robot_env.ask_on_terminal("episode 4: reset the scene", fd=read_fd) is True
    os.close(write_fd)
    with pytest.raises(EOFError, match="input ended"):
        robot_env.ask_on_terminal("episode 5: reset the scene", fd=read_fd)
    os.close(read_fd)


def test_every_step_is_recorded_and_saved_at_the_reset(twin, tmp_path):
    root = str(tmp_path / "robot_rl")
    env = make_env(twin, recorder=EpisodeRecorder(root, 20.0, "sim_twin_panda"))
    env.reset(seed=0)
    actions = [torch.tensor([[0.5, -0.5, 0.2, -1.0]]) for _ in range(4)]
    for action in actions:
        env.step(action)
    env.reset(seed=0)  # the episode is saved here
    data = LeRobotDataset(root)
    assert len(data) == 4 and [float(np.asarray(data[i]["success"]).reshape(-1)[0]) for i in range(4)] == [0.0] * 4
    command = torch.stack([torch.as_tensor(data[i]["command"]).reshape(-1) for i in range(4)])
    assert torch.allclose(command, torch.cat(actions))
    sent = np.stack([np.asarray(data[i]["action"]).reshape(-1) for i in range(4)])
    # what the arm made: the guard closes the gripper 0.5 of its opening per step (1 -> 0.5 -> 0: normalised 0, -1)
    assert np.allclose(sent[:, -1], [0, -1, -1, -1], atol=1e-6)
    assert (np.sign(sent[:, :3]) == [1, -1, 1]).all() and (np.abs(sent[:, :3]) > 0.05).all()


def test_without_autoreset_an_episodes_end_holds_the_arm_and_saves_it_at_once(twin, tmp_path):
    """The robot learner resets the env itself, after it has saved the ended episode: meanwhile the arm holds (no
    watchdog running) and the episode is already in the dataset; a chunk of actions and single steps alike."""
    root = str(tmp_path / "robot_rl")
    env = make_env(twin, max_episode_steps=3, recorder=EpisodeRecorder(root, 20.0, "sim_twin_panda"))
    env.autoreset = False
    env.reset(seed=0)
    assert env.guard._watchdog is not None  # engaged while the episode runs
    *_, truncated, _ = env.chunk_step(torch.zeros(1, 3, 4))
    assert truncated.tolist() == [True] and env.guard._watchdog is None  # ended within the chunk
    assert len(LeRobotDataset(root)) == 3 and env.episodes == 1  # saved, and no next episode begun
    env.reset()
    for _ in range(3):
        assert env.guard._watchdog is not None
        *_, truncated, _ = env.step(torch.zeros(1, 4))
    assert truncated.tolist() == [True] and env.guard._watchdog is None and len(LeRobotDataset(root)) == 6


def test_a_robot_fault_stops_the_arm_and_the_run(twin, monkeypatch):
    env = make_env(twin)
    env.reset(seed=0)

    def broken(action):
        raise RuntimeError("socket closed")

    monkeypatch.setattr(twin, "send_action", broken)
    with pytest.raises(SafetyStop, match="socket closed"):
        env.step(torch.zeros(1, 4))
    assert not twin.is_connected  # safe_stop held and disconnected


def test_refuses_a_robot_that_is_not_connected_and_a_guard_of_another_period(twin):
    with pytest.raises(ValueError, match="connect"):
        make_env(SimTwinRobot(task="Reach", cameras=()))
    kinematics = robot_kinematics(twin)
    guard = SafetyGuard(twin, SafetyLimits(), control_dt=0.01)  # the twin advances 0.05 s per command
    with pytest.raises(ValueError, match="control_dt=0.05"):
        RobotEnv(twin, guard, ActionMapper("ee_delta_pos", kinematics), make_observer(twin, 20.0, [], "", kinematics),
                 lambda robot_obs: False, 10, control_hz=100.0)


def scripted_device(tmp_path, commands) -> ScriptedDevice:
    path = str(tmp_path / "commands.npy")
    np.save(path, np.asarray(commands, np.float64))
    device = ScriptedDevice(path=path)
    device.connect()
    return device


def test_a_person_takes_over_through_the_same_guard_and_is_flagged(twin, tmp_path):
    """From step 2 the device's +x command replaces the policy's zero action: flagged in info and in the dataset,
    and limited by the guard like the policy."""
    root = str(tmp_path / "hil")
    person = Intervention(scripted_device(tmp_path, [[1.0, 0.0, 0.0, 1.0]] * 10), "ee_delta_pos", after_step(2))
    env = make_env(twin, limits=SafetyLimits(max_relative_target=0.01), intervention=person,
                   recorder=EpisodeRecorder(root, 20.0, "sim_twin_panda"))
    env.reset(seed=0)
    flags, executed = [], []
    for _ in range(4):
        _, _, _, _, info = env.step(torch.zeros(1, 4))
        flags.append(bool(info["intervened"][0]))
        executed.append(info["executed_action"][0])
    assert flags == [False, False, True, True] and env.intervention_rate == 0.5
    executed = torch.stack(executed)
    assert executed[:2, :3].abs().max() < 0.002  # the policy's zero action
    # the person asked +1 along x; the guard let through a step of 0.01 rad per joint, as it would the policy's
    assert ((executed[2:, 0] > 0.005) & (executed[2:, 0] < 0.1)).all() and env.guard.counters["step_limited"] == 2
    env.reset(seed=0)
    data = LeRobotDataset(root)
    recorded = [float(np.asarray(data[i]["intervention"]).reshape(-1)[0]) for i in range(4)]
    assert recorded == [0.0, 0.0, 1.0, 1.0]
    assert np.asarray(data[3]["command"]).reshape(-1)[0] == 1.0  # the person's command, not the policy's


def test_the_scripted_expert_stands_in_for_the_person(tmp_path):
    """The stand-in person (the twin's expert) takes over at the start and solves PickCube through the guard."""
    robot = SimTwinRobot(task="PickCube", cameras=(), seed=0)
    robot.connect()
    try:
        device = ScriptedDevice()
        device.connect()
        env = make_env(robot, intervention=Intervention(device, "ee_delta_pos", after_step(0)),
                       max_episode_steps=100)
        env.reset(seed=0)
        for step in range(100):
            _, reward, terminated, _, info = env.step(torch.zeros(1, 4))
            assert info["intervened"].all()
            if terminated.any():
                break
        assert reward.tolist() == [1.0] and terminated.tolist() == [True]
        env.close()
    finally:
        robot.disconnect()


def test_chunks_report_every_executed_step_and_interventions_need_an_end_effector_controller(twin, tmp_path):
    env = make_env(twin)
    env.reset(seed=0)
    _, _, _, _, info = env.chunk_step(torch.full((1, 3, 4), 0.5))
    assert info["executed_action"].shape == (1, 3, 4) and info["intervened"].shape == (1, 3)
    assert (info["executed_action"][0, :, :3] > 0.05).all() and not info["intervened"].any()
    with pytest.raises(ValueError, match="end-effector controller"):
        Intervention(scripted_device(tmp_path, [[0.0] * 4]), "joint_delta", after_step(0))
