"""Robot RL survives its faults: a kill -9 mid-episode loses only the open episode and resume goes on; a NaN action,
an SDK exception, a camera loss and Ctrl-C each end in a hold with the data intact (the Reach twin, SAC)."""

import json
import os
import signal
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from embodied.data.reader import LeRobotDataset
from embodied.data.replay import ReplayBuffer
from embodied.deploy.recorder import EpisodeRecorder
from embodied.robot_rl.actor_learner import run_actor_learner
from embodied.robot_rl.env import NonFiniteAction
from embodied.robot_rl.intervention import Intervention
from embodied.rollout.transition_collector import TransitionCollector
from embodied.runner.checkpoint import complete_checkpoints
from embodied.runner.offpolicy import OffPolicyTrainer
from real_robot.errors import SafetyStop
from real_robot.sim_twin import SimTwinRobot
from real_robot.teleop.scripted import ScriptedDevice
from tests.ctrl_c import terminal_ctrl_c  # noqa: F401 (a fixture)
from tests.test_robot_env import make_env
from tests.test_training import config

torch.set_num_threads(1)
EPISODE_STEPS = 25
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sac_trainer(out: str, resume: bool = False) -> OffPolicyTrainer:
    cfg = config(out, algo__name="sac", policy__name="tanh_mlp", env__num_envs=1, algo__learning_starts=20,
                 algo__batch_size=16)
    cfg.resume = resume
    return OffPolicyTrainer(cfg)


PERSON_STEPS = (5, 10, 20)  # a stand-in person drives steps 5-9 and 20 to the end of each episode (kill -9 test)
PERSON_PER_EPISODE = PERSON_STEPS[1] - PERSON_STEPS[0] + EPISODE_STEPS - PERSON_STEPS[2]


def twin_run(out: str, env_steps: int, resume: bool = False, kill_at_check: int | None = None) -> None:
    """A robot run in this process: SAC on the twin through the actor-learner loop, a stand-in person driving
    the ``PERSON_STEPS`` of each episode, every step recorded; with
    ``kill_at_check`` the process kills itself (SIGKILL) at that success check, inside an episode. Writes the
    report's counts and its uniform random actions to ``out/report.json``."""
    from embodied.rollout import transition_collector

    torch.set_num_threads(1)
    random_steps, uniform = [], transition_collector.uniform_actions
    transition_collector.uniform_actions = lambda *args: random_steps.append(1) or uniform(*args)
    trainer = sac_trainer(out, resume)
    robot = SimTwinRobot(task="Reach", cameras=(), seed=0)
    robot.connect()
    checks = []

    def success(robot_obs) -> bool:  # never solved: every episode runs its EPISODE_STEPS
        checks.append(1)
        if len(checks) == kill_at_check:
            os.kill(os.getpid(), signal.SIGKILL)
        return False

    os.makedirs(out, exist_ok=True)
    commands = os.path.join(out, "commands.npy")
    np.save(commands, np.tile([0.0, 0.0, -1.0, 1.0], (EPISODE_STEPS, 1)))
    device = ScriptedDevice(path=commands)
    device.connect()
    person = Intervention(device, "ee_delta_pos", lambda step, robot_obs: (
        PERSON_STEPS[0] <= step < PERSON_STEPS[1] or step >= PERSON_STEPS[2]))
    env = make_env(robot, success=success, max_episode_steps=EPISODE_STEPS, intervention=person,
                   recorder=EpisodeRecorder(os.path.join(out, "dataset"), 20.0, "sim_twin_panda"))
    report = run_actor_learner(trainer, env, env_steps)
    robot.disconnect()
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump({"env_steps": report.env_steps, "random_steps": len(random_steps), "counters": trainer.counters}, f)


def run_child(out: str, env_steps: int, resume: bool, kill_at_check: int | None = None):
    """``twin_run`` in a fresh Python process; its completed process."""
    code = f"from tests.test_robot_rl_faults import twin_run; twin_run({out!r}, {env_steps}, {resume}, {kill_at_check})"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "MUJOCO_GL": "egl"})


def checkpoint_counters(out: str) -> tuple[dict, dict]:
    """The counters and extra state of the newest complete checkpoint."""
    state = torch.load(os.path.join(complete_checkpoints(os.path.join(out, "checkpoints"))[0], "trainer_state.pt"),
                       weights_only=True)
    return state["counters"], state["extra"]


def recorded_actions(out: str, intervened_only: bool = False) -> np.ndarray:
    """The executed actions of every saved episode (or of the frames a person drove), in order [frames, A]."""
    data = LeRobotDataset(os.path.join(out, "dataset"))
    frames = [data[i] for i in range(len(data))]
    if intervened_only:
        frames = [frame for frame in frames if bool(np.asarray(frame["intervention"]).reshape(-1)[0])]
    return np.stack([np.asarray(frame["action"]).reshape(-1) for frame in frames])


def buffered_actions(out: str, steps: int, buffer: str = "replay") -> np.ndarray:
    """The first ``steps`` actions of the run's durable buffer ``buffer`` (replay or interventions) [steps, A]."""
    stored = ReplayBuffer.open(os.path.join(out, buffer), flush_every=None, steps=steps)
    return stored.store["action"][:steps, 0].numpy()


def test_kill_9_mid_episode_loses_only_that_episode_and_resume_goes_on(tmp_path):
    out = str(tmp_path / "run")
    # each episode makes 1 + EPISODE_STEPS success checks (its reset's, then each step's): the kill lands at step 10
    # of the fifth episode
    killed = run_child(out, 1000, resume=False, kill_at_check=4 * (EPISODE_STEPS + 1) + 11)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    counters, extra = checkpoint_counters(out)
    assert counters["robot_episodes"] == 4 and counters["env_steps"] == 4 * EPISODE_STEPS
    # utd 0.5 from env-step 20 on: the updates not yet paid when the episode was saved are owed
    assert counters["updates"] + extra["owed_updates"] == (4 * EPISODE_STEPS - 19) / 2
    person = PERSON_PER_EPISODE  # the episode's last step too: stored before the episode's checkpoint
    assert extra["intervention_steps"] == 4 * person
    assert len(complete_checkpoints(os.path.join(out, "checkpoints"))) == 2  # the two newest kept
    before = recorded_actions(out)
    assert before.shape[0] == 4 * EPISODE_STEPS  # the four ended episodes, saved by the env; the fifth is gone
    np.testing.assert_array_equal(buffered_actions(out, 4 * EPISODE_STEPS), before)  # the buffer holds the same steps
    np.testing.assert_array_equal(buffered_actions(out, 4 * person, "interventions"),
                                  recorded_actions(out, intervened_only=True))

    resumed = run_child(out, 2 * EPISODE_STEPS, resume=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    with open(os.path.join(out, "report.json")) as f:
        report = json.load(f)
    assert report["env_steps"] == 2 * EPISODE_STEPS and report["counters"]["robot_episodes"] == 6
    assert report["counters"]["env_steps"] == 6 * EPISODE_STEPS
    assert report["counters"]["updates"] == (6 * EPISODE_STEPS - 19) // 2  # all paid
    assert report["random_steps"] == 0  # the random phase ended before the kill
    after = recorded_actions(out)
    assert after.shape[0] == 6 * EPISODE_STEPS
    np.testing.assert_array_equal(after[:4 * EPISODE_STEPS], before)
    np.testing.assert_array_equal(buffered_actions(out, 6 * EPISODE_STEPS), after)
    _, extra = checkpoint_counters(out)
    assert extra["intervention_steps"] == 6 * person  # the reopened buffer of interventions grew on
    np.testing.assert_array_equal(buffered_actions(out, 6 * person, "interventions"),
                                  recorded_actions(out, intervened_only=True))


def sdk_error_on_call(robot, monkeypatch, call: int) -> None:
    """The robot's SDK raises on its ``call``-th joint command."""
    original, calls = robot._write_targets, []

    def failing(joints, gripper):
        calls.append(1)
        if len(calls) == call:
            raise ConnectionResetError("controller closed the socket")
        return original(joints, gripper)

    monkeypatch.setattr(robot, "_write_targets", failing)


def nan_on_act(monkeypatch, call: int) -> None:
    """The policy's ``call``-th action is NaN."""
    original, calls = TransitionCollector.act, []

    def act(self, obs):
        calls.append(1)
        action = original(self, obs)
        return torch.full_like(action, float("nan")) if len(calls) == call else action

    monkeypatch.setattr(TransitionCollector, "act", act)


# each fault lands at step 12 of the third episode: 2 ended episodes of EPISODE_STEPS, 1 + EPISODE_STEPS camera frames
# and success checks each (the reset's, then each step's), and the frame the env reads when it is built
FAULT_STEP = 2 * EPISODE_STEPS + 12
FAULTS = {  # error, its message, the success check that sends SIGINT (a person's Ctrl-C, to the learner)
    "policy_nan": (ValueError, "NaN or inf", None),  # refused by the env's action check, before the guard
    "person_nan": (NonFiniteAction, "the person produced a non-finite action", None),  # held by the guard
    "sdk_error": (SafetyStop, "socket", None),
    "camera_loss": (SafetyStop, "no frame", None),
    "sigint": (KeyboardInterrupt, None, 2 * (EPISODE_STEPS + 1) + 12),
}


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.usefixtures("terminal_ctrl_c")
def test_a_fault_during_training_holds_the_arm_and_keeps_the_data(tmp_path, monkeypatch, fault):
    error, message, sigint_at_check = FAULTS[fault]
    out = str(tmp_path / "run")
    trainer = sac_trainer(out)
    robot = SimTwinRobot(task="Reach", cameras=("front",), image_size=(16, 16), seed=0,
                         camera_fail_after=1 + 2 * (EPISODE_STEPS + 1) + 11 if fault == "camera_loss" else None)
    robot.connect()
    commands = []  # what the arm was told, in order: "move" or "hold"
    send_action, hold = robot.send_action, robot.hold
    monkeypatch.setattr(robot, "send_action", lambda action: commands.append("move") or send_action(action))
    monkeypatch.setattr(robot, "hold", lambda: commands.append("hold" if robot.is_connected else "gone") or hold())
    if fault == "policy_nan":
        nan_on_act(monkeypatch, FAULT_STEP)
    if fault == "sdk_error":
        sdk_error_on_call(robot, monkeypatch, FAULT_STEP)
    checks = []

    def success(robot_obs) -> bool:
        checks.append(1)
        if len(checks) == sigint_at_check:
            os.kill(os.getpid(), signal.SIGINT)
        return False

    # (Ctrl-C reaches the learner's thread while the actor goes on: paced at 100 Hz, it takes a step or two more)
    env = make_env(robot, success=success, max_episode_steps=EPISODE_STEPS,
                   control_hz=100.0 if sigint_at_check else None,
                   recorder=EpisodeRecorder(os.path.join(out, "dataset"), 20.0, "sim_twin_panda"))
    if fault == "person_nan":  # a device broken past its own checks takes over for one step
        env.intervention = SimpleNamespace(start_episode=lambda: None, action=lambda robot, robot_obs, step: np.full(
            4, np.nan) if env.episodes == 3 and step == 11 else None)
    try:
        with pytest.raises(error, match=message):
            run_actor_learner(trainer, env, 1000)
        assert commands[-1] == "hold" and commands.count("move") < FAULT_STEP + 5  # held at once, while connected
        counters, _ = checkpoint_counters(out)
        assert counters["robot_episodes"] == 2 and counters["env_steps"] == 2 * EPISODE_STEPS
        recorded = recorded_actions(out)
        # the open episode is saved as far as it went
        assert 2 * EPISODE_STEPS + 8 <= recorded.shape[0] < 3 * EPISODE_STEPS, recorded.shape
        np.testing.assert_array_equal(buffered_actions(out, 2 * EPISODE_STEPS), recorded[:2 * EPISODE_STEPS])
    finally:
        if robot.is_connected:
            robot.disconnect()
