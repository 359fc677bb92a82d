"""embodied-deploy on the sim twin: a recorded dry run, and fault injection (each fault ends held or stopped,
with a clear outcome, and every frame recorded before it is in a readable dataset)."""

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from embodied.data.reader import LeRobotDataset
from embodied.deploy.config import DeployConfig
from embodied.deploy.mapping import TemporalEnsembler
from embodied.deploy.session import run_deployment
from policies import from_pretrained
from policies.mlp import MLPPolicy
from sims import make_env


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory):
    env = make_env(task="Reach", num_envs=2)
    obs, _ = env.reset(seed=0)
    torch.manual_seed(0)
    policy = MLPPolicy.for_env({"hidden": [16]}, env.observation_spec, env.action_spec, obs)
    path = str(tmp_path_factory.mktemp("policy"))
    policy.save_pretrained(path)
    return path


def deploy(tmp_path, policy_dir, key_fd=None, **overrides):
    robot = {"type": "sim_twin", "task": "Reach", "cameras": ["front"], "image_size": [32, 32]}
    robot |= overrides.pop("robot", {})
    overrides = {"max_steps": 12} | overrides
    cfg = DeployConfig(policy_path=policy_dir, robot=robot, control_hz=100.0, record=str(tmp_path / "rollouts"),
                       stop_on_success=False, **overrides)
    report = run_deployment(cfg, key_fd=key_fd)[-1]
    dataset = LeRobotDataset(str(tmp_path / "rollouts")) if report.frames_recorded else None
    return report, dataset


def test_dry_run_records_every_frame_and_reports_loop_timing(tmp_path, policy_dir):
    report, dataset = deploy(tmp_path, policy_dir)
    assert report.outcome == "timeout" and report.steps == 12
    assert len(dataset) == 12 and dataset[0]["observation.images.front"].shape == (32, 32, 3)
    assert dataset[0]["action.joint_targets"].shape == (8,)  # 7 joint targets + gripper, as sent
    assert dataset[0]["action"].shape == (1, 4)  # a chunk of one: the same, in the policy ee_delta_pos space
    timing = report.timing()
    assert 5.0 < timing["period_p50_ms"] < 100.0 and timing["period_p99_ms"] >= timing["period_p50_ms"]


def test_nan_actions_hold_and_stop(tmp_path, policy_dir, monkeypatch):
    calls = []

    def nan_after_three(self, obs):
        calls.append(1)
        return torch.full((1, 4), float("nan")) if len(calls) > 3 else torch.zeros(1, 4)

    monkeypatch.setattr(MLPPolicy, "select_action", nan_after_three)
    report, dataset = deploy(tmp_path, policy_dir)
    assert report.outcome.startswith("nan_action") and report.interventions["nan_rejected"] == 1
    assert len(dataset) == 3


def test_a_gripper_slammed_shut_and_open_moves_at_the_trained_rate_and_the_guard_has_nothing_to_clip(
        tmp_path, policy_dir, monkeypatch):
    """The deploy mapping limits the gripper as the simulator's controllers do (half the opening per command, from
    the opening last sent), so a policy's gripper moves as in training and the guard's same default never fires."""
    calls = []

    def three_shut_three_open(self, obs):
        calls.append(1)
        return torch.tensor([[0.0, 0.0, 0.0, -1.0 if (len(calls) - 1) // 3 % 2 == 0 else 1.0]])

    monkeypatch.setattr(MLPPolicy, "select_action", three_shut_three_open)
    report, dataset = deploy(tmp_path, policy_dir)
    openings = dataset.columns["action.joint_targets"][:, 7]  # sent, from the measured 1.0 (open) at the start
    np.testing.assert_allclose(openings, [0.5, 0, 0, 0.5, 1, 1] * 2, atol=1e-3)
    assert report.interventions.get("gripper_limited", 0) == 0, report.interventions


def test_a_one_radian_jump_is_limited(tmp_path, policy_dir, monkeypatch):
    from embodied.deploy import mapping

    monkeypatch.setattr(mapping.ActionMapper, "__call__",
                        lambda self, action, q, gripper=None: np.concatenate([q + 1.0, [1.0]]))
    report, dataset = deploy(tmp_path, policy_dir, safety={"max_relative_target": 0.05})
    assert report.outcome == "timeout" and report.interventions["step_limited"] == 12
    sent, states = dataset.columns["action.joint_targets"], dataset.columns["observation.state"]
    assert np.abs(sent[:, :7] - states[:, :7]).max() <= 0.05 + 1e-5


def test_episodes_start_from_a_fresh_scene_and_count_their_own_interventions(tmp_path, policy_dir, monkeypatch):
    from embodied.deploy import mapping

    monkeypatch.setattr(mapping.ActionMapper, "__call__",
                        lambda self, action, q, gripper=None: np.concatenate([q + 1.0, [1.0]]))
    cfg = DeployConfig(policy_path=policy_dir, robot={"type": "sim_twin", "task": "Reach", "cameras": []},
                       control_hz=100.0, max_steps=5, episodes=2, record=str(tmp_path / "rollouts"),
                       safety={"max_relative_target": 0.05})
    reports = run_deployment(cfg)
    assert [r.interventions["step_limited"] for r in reports] == [5, 5]  # per episode, not cumulative
    dataset = LeRobotDataset(str(tmp_path / "rollouts"))
    states = dataset.columns["observation.state"]
    assert len(dataset.episodes) == 2
    assert np.abs(states[4, :7] - states[0, :7]).max() > 0.02  # the arm moved during episode 1 ...
    np.testing.assert_allclose(states[5, :7], states[0, :7], atol=1e-6)  # ... and episode 2 starts at home again


def test_a_stalled_policy_is_held_by_the_watchdog(tmp_path, policy_dir, monkeypatch):
    original = MLPPolicy.select_action
    calls = []

    def stall_once(self, obs):
        calls.append(1)
        if len(calls) == 4:
            time.sleep(0.4)
        return original(self, obs)

    monkeypatch.setattr(MLPPolicy, "select_action", stall_once)
    report, dataset = deploy(tmp_path, policy_dir, safety={"watchdog_s": 0.1})
    assert report.interventions["watchdog_holds"] >= 1 and report.outcome == "timeout" and len(dataset) == 12


def test_a_camera_that_stops_delivering_frames(tmp_path, policy_dir):
    report, dataset = deploy(tmp_path, policy_dir, robot={"camera_fail_after": 5})
    assert report.outcome.startswith("safety_stop") and "no frame" in report.outcome
    assert len(dataset) == 5


def test_an_sdk_exception_mid_episode(tmp_path, policy_dir, monkeypatch):
    from real_robot.sim_twin import SimTwinRobot

    original = SimTwinRobot._write_targets
    calls = []

    def fail_on_sixth(self, joints, gripper):
        calls.append(1)
        if len(calls) == 6:
            raise ConnectionResetError("controller closed the socket")
        return original(self, joints, gripper)

    monkeypatch.setattr(SimTwinRobot, "_write_targets", fail_on_sixth)
    report, dataset = deploy(tmp_path, policy_dir)
    assert report.outcome.startswith("safety_stop") and "socket" in report.outcome
    assert report.interventions["sdk_errors"] == 1 and len(dataset) == 5


def test_sigint_is_an_estop_that_keeps_the_recording(tmp_path, policy_dir, monkeypatch):
    original = MLPPolicy.select_action
    calls = []

    def interrupt_on_seventh(self, obs):
        calls.append(1)
        if len(calls) == 7:
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, obs)

    monkeypatch.setattr(MLPPolicy, "select_action", interrupt_on_seventh)
    report, dataset = deploy(tmp_path, policy_dir)
    assert "SIGINT" in report.outcome and report.interventions["estop"] == 1
    assert len(dataset) == 6  # the command being computed when Ctrl-C came is never sent


def test_an_estop_key_stops_and_keeps_the_recording(tmp_path, policy_dir, monkeypatch):
    read_end, write_end = os.pipe()
    original = MLPPolicy.select_action
    calls = []

    def press_q_on_fifth(self, obs):
        calls.append(1)
        if len(calls) == 5:
            os.write(write_end, b"q")
        return original(self, obs)

    monkeypatch.setattr(MLPPolicy, "select_action", press_q_on_fifth)
    try:
        report, dataset = deploy(tmp_path, policy_dir, key_fd=read_end, max_steps=500)
    finally:
        os.close(read_end)
        os.close(write_end)
    assert "e-stop (key 'q')" in report.outcome and report.interventions["estop"] == 1
    assert 4 <= report.steps < 500 and len(dataset) == report.steps


def cli(args, policy_dir, tmp_path, prelude="", interrupt_when_recording=False):
    """Run ``embodied-deploy`` as a user would, after ``prelude`` (fault injection); (exit code, stderr, stdout)."""
    overrides = [f"policy_path={policy_dir}", "robot.task=Reach", "robot.cameras=[front]", "robot.image_size=[32,32]",
                 "stop_on_success=false", "control_hz=100", f"record={tmp_path / 'rollouts'}",
                 f"hydra.run.dir={tmp_path / 'hydra'}", *args]
    program = f"{prelude}\nfrom embodied.cli.deploy import main\nmain()"
    env = os.environ | {"OMP_NUM_THREADS": "1", "MUJOCO_GL": "egl"}
    process = subprocess.Popen([sys.executable, "-c", program, *overrides], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if interrupt_when_recording:
        deadline = time.monotonic() + 120
        while not (tmp_path / "rollouts" / "meta").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=180)
    return process.returncode, stderr, stdout


CALL_COUNTER = "import itertools, time, numpy, torch\ncalls = itertools.count(1)\n"
NAN_AFTER_THREE = CALL_COUNTER + """from policies.mlp import MLPPolicy
MLPPolicy.select_action = lambda self, obs: torch.full((1, 4), float("nan") if next(calls) > 3 else 0.0)
"""
SDK_ERROR_ON_SIXTH = CALL_COUNTER + """from real_robot.sim_twin import SimTwinRobot
original = SimTwinRobot._write_targets
def write(self, joints, gripper):
    if next(calls) == 6:
        raise ConnectionResetError("controller closed the socket")
    return original(self, joints, gripper)
SimTwinRobot._write_targets = write
"""
ONE_RADIAN_JUMP = """import numpy
from embodied.deploy.mapping import ActionMapper
ActionMapper.__call__ = lambda self, action, q, gripper=None: numpy.concatenate([q + 1.0, [1.0]])
"""
STALL_ONCE = CALL_COUNTER + """from policies.mlp import MLPPolicy
original = MLPPolicy.select_action
def stall(self, obs):
    if next(calls) == 4:
        time.sleep(0.4)
    return original(self, obs)
MLPPolicy.select_action = stall
"""


@pytest.mark.parametrize("prelude, args, code, message", [
    ("", ["robot.camera_fail_after=4"], 1,
     "stopped safely (safety_stop: robot error: CameraTimeout: SimCamera delivered no frame"),
    (NAN_AFTER_THREE, [], 1, "stopped safely (nan_action: the policy produced a non-finite action"),
    (SDK_ERROR_ON_SIXTH, [], 1, "stopped safely (safety_stop: robot error: ConnectionResetError: controller "
                                "closed the socket)"),
    (ONE_RADIAN_JUMP, ["safety.max_relative_target=0.05"], 0, r"'step_limited': 12\b"),
    (STALL_ONCE, ["safety.watchdog_s=0.1"], 0, r"'watchdog_holds': [1-9]"),
    ("", ["control_hz=-5"], 1, "control_hz must be in (0, 1000], got -5.0"),
], ids=["camera", "nan", "sdk_error", "jump", "stall", "bad_value"])
def test_cli_ends_every_fault_with_a_clear_message(tmp_path, policy_dir, prelude, args, code, message):
    returncode, stderr, stdout = cli(["max_steps=12", *args], policy_dir, tmp_path, prelude)
    assert returncode == code, stderr
    assert re.search(message if not code else re.escape(message), stderr if code else stdout)
    if "control_hz" not in message:
        recorded = int(stdout.split("frames recorded ")[1].split(";")[0])
        assert len(LeRobotDataset(str(tmp_path / "rollouts"))) == recorded > 0
    if code:
        assert "the robot was held and disconnected" in stderr or "control_hz" in message


def test_cli_sigint_stops_safely_and_keeps_the_recording(tmp_path, policy_dir):
    code, stderr, stdout = cli(["max_steps=100000", "control_hz=20"], policy_dir, tmp_path,
                               interrupt_when_recording=True)
    assert code == 1, stderr
    assert "stopped safely (safety_stop: operator e-stop (SIGINT))" in stderr
    recorded = int(stdout.split("frames recorded ")[1].split(";")[0])
    assert recorded >= 1 and len(LeRobotDataset(str(tmp_path / "rollouts"))) == recorded


def test_temporal_ensembling_averages_overlapping_predictions():
    ensembler = TemporalEnsembler(coefficient=0.0)  # equal weights
    first = ensembler(np.array([[0.0], [1.0], [2.0]]))
    second = ensembler(np.array([[10.0], [20.0], [30.0]]))
    assert first.tolist() == [0.0] and second.tolist() == [5.5]  # mean of 1.0 (old) and 10.0 (new)


def test_temporal_ensembling_weights_the_oldest_prediction_most_and_forgets_on_reset():
    ensembler = TemporalEnsembler(coefficient=1.0)  # weights exp(-i), i = 0 for the oldest prediction
    ensembler(np.array([[0.0, 0.0], [1.0, -1.0], [2.0, -2.0]]))
    ensembler(np.array([[10.0, 0.0], [20.0, 0.0], [30.0, 0.0]]))
    third = ensembler(np.array([[100.0, 4.0], [0.0, 0.0], [0.0, 0.0]]))
    w = np.exp(-np.arange(3.0))  # step 2 was predicted 2, 1 and 0 steps ago: 2.0, 20.0, 100.0 (oldest first)
    expected = np.array([w @ [2.0, 20.0, 100.0], w @ [-2.0, 0.0, 4.0]]) / w.sum()
    np.testing.assert_allclose(third, expected, rtol=1e-12)
    ensembler.reset()
    assert ensembler(np.array([[7.0, 7.0], [8.0, 8.0], [9.0, 9.0]])).tolist() == [7.0, 7.0]  # no older predictions


@pytest.mark.parametrize("controller, action", [
    ("ee_delta_pos", [0.3, -0.2, 0.1, -0.5]),
    ("ee_delta_pose", [0.25, -0.15, 0.1, 0.1, -0.05, 0.15, 0.5]),  # inside the joint-step cap: mapped back as sent
    ("joint_delta", [0.1, -0.2, 0.3, 0.0, 0.5, -0.4, 0.2, 1.0]),
])
def test_sent_commands_map_back_to_the_controller_action(controller, action):
    from embodied.deploy.mapping import ActionMapper
    from sims.arms import get_arm
    from sims.mujoco.kinematics import ArmKinematics

    mapper = ActionMapper(controller, ArmKinematics())
    q = get_arm("panda").home
    sent = mapper(np.array(action), q)
    recovered = mapper.sent_to_action(sent, q)
    np.testing.assert_allclose(recovered, action, atol=0.03)  # one damped least-squares IK step is not exact
    halved = np.concatenate([q + 0.5 * (sent[:7] - q), sent[7:]])  # the guard halved the motion
    np.testing.assert_allclose(mapper.sent_to_action(halved, q)[:3], 0.5 * np.array(action[:3]), atol=0.03)


def test_a_policy_reading_a_camera_the_robot_lacks_is_refused_before_connecting(tmp_path, policy_dir, monkeypatch):
    import embodied.deploy.session as session
    from real_robot.robot import Robot

    def reads_two_cameras(path):
        policy = from_pretrained(path)
        policy.cameras = ["front", "wrist"]
        return policy

    monkeypatch.setattr(session, "from_pretrained", reads_two_cameras)
    monkeypatch.setattr(Robot, "connect", lambda self: pytest.fail("connected to a robot it cannot feed"))
    with pytest.raises(ValueError, match=r"reads cameras \['wrist'\] .* has \['front'\]"):
        deploy(tmp_path, policy_dir)


def test_end_effector_steps_stay_inside_the_default_guard_and_keep_their_direction():
    """The IK controller caps every joint's step at the guard's default limit at 20 Hz, scaling the whole step, so a
    deployed policy moves as it did in training (uncapped, the twin clipped 10% of a PickCube VLA's steps)."""
    from embodied.deploy.mapping import ActionMapper
    from real_robot.safety import SafetyLimits, joint_step_limit
    from sims.arms import get_arm
    from sims.mujoco.kinematics import ArmKinematics

    arm = get_arm("panda")
    guard_step = joint_step_limit(SafetyLimits(), 1 / 20, arm.dof, arm)  # [J] rad per command at 20 Hz
    capped = ActionMapper("ee_delta_pos", ArmKinematics(arm))
    free = ActionMapper("ee_delta_pos", ArmKinematics(arm))
    free.controller.max_joint_step = None
    rng = np.random.default_rng(0)
    largest_free = 0.0
    for _ in range(40):
        q = arm.home + rng.uniform(-0.4, 0.4, arm.dof)
        action = np.append(rng.choice([-1.0, 1.0], 3), 1.0)  # full speed along a diagonal
        step, free_step = capped(action, q)[:7] - q, free(action, q)[:7] - q
        largest_free = max(largest_free, np.abs(free_step).max())
        assert (np.abs(step) <= guard_step + 1e-9).all()
        np.testing.assert_allclose(step, free_step * (np.abs(step).max() / np.abs(free_step).max()), atol=1e-9)
    assert largest_free > 1.5 * guard_step.max()  # the uncapped steps do go past the guard's limit


def test_the_simulated_gripper_moves_at_the_guards_rate_and_squeezes_at_its_force():
    """The sim's fingers close at most the guard's default max_gripper_step per command and their servos stop at its
    max_gripper_force, so a policy trained in sim grasps on a guarded arm as it did in training."""
    from real_robot.safety import SafetyLimits
    from sims.mujoco.arm_model import FINGER_MAX_OPENING

    limits = SafetyLimits()
    env = make_env(task="PickCube", num_envs=2, autoreset=False)
    env.reset(seed=0)
    fingers = env.finger_actuators
    assert (env.model.actuator_forcerange[fingers] == [-limits.max_gripper_force, limits.max_gripper_force]).all()
    close = torch.tensor([[0.0, 0.0, 0.0, -1.0], [0.0, 0.0, 0.0, 1.0]])  # env 0 closes from open, env 1 stays open
    openings = []
    for _ in range(3):
        env.step(close)
        openings.append(env.ctrl[:, env.arm.dof] / FINGER_MAX_OPENING)  # the fingers' commanded opening
    np.testing.assert_allclose(openings, [[1 - limits.max_gripper_step, 1], [1 - 2 * limits.max_gripper_step, 1],
                                          [0, 1]], atol=1e-12)
    env.close()
