"""The safety guard's limits and each of its paths, asserting the values it sends: a limit that cannot be set
unsafe, the workspace box, the gripper rate limit, the joint margin, the step limit, and the watchdog."""

import math
import threading
import time

import numpy as np
import pytest

from real_robot.safety import SafetyGuard, SafetyLimits, as_limits

POSITIVE = ("max_relative_target", "max_joint_velocity", "max_gripper_step", "max_gripper_force", "watchdog_s")


@pytest.mark.parametrize("key", POSITIVE)
@pytest.mark.parametrize("value", [-1.0, 0.0, math.nan, math.inf, -math.inf])
def test_a_limit_that_is_not_positive_and_finite_is_refused(key, value):
    with pytest.raises(ValueError, match=f"safety.{key} must be a finite number > 0"):
        SafetyLimits(**{key: value})


@pytest.mark.parametrize("limits, message", [
    ({"workspace_low": (0.5, -0.4, 0.0)}, "workspace_low must be below safety.workspace_high on every axis"),
    ({"workspace_low": (0.0, 0.0, 0.3), "workspace_high": (0.1, 0.1, 0.3)}, "below"),  # an empty box
    ({"workspace_high": (0.3, 0.4)}, "workspace_high must be three finite numbers"),
    ({"workspace_low": (0.0, math.nan, 0.0)}, "workspace_low must be three finite numbers"),
    ({"max_gripper_step": 1.5}, "max_gripper_step must be <= 1"),
    ({"joint_margin": -0.01}, r"joint_margin must be in \[0, 0.5\)"),
    ({"max_relative_target": True}, "max_relative_target must be a finite number"),
])
def test_an_inverted_or_malformed_workspace_and_out_of_range_settings_are_refused(limits, message):
    with pytest.raises(ValueError, match=message):
        SafetyLimits(**limits)


def test_unknown_safety_keys_are_refused_with_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown safety keys \['bogus'\].*'max_relative_target'"):
        as_limits({"bogus": 1, "watchdog_s": 1.0})
    assert as_limits({"watchdog_s": 1.0}).watchdog_s == 1.0


@pytest.mark.parametrize("command", ["deploy", "teleop"])
def test_the_clis_refuse_an_unsafe_limit_in_one_line_before_anything_is_built(command):
    from hydra import compose, initialize_config_dir

    from embodied.cli.train import _config_path
    from embodied.config.strict import to_typed
    from embodied.deploy.config import DeployConfig
    from embodied.teleop.config import TeleopConfig

    import embodied.cli.deploy  # noqa: F401 - registers the schemas the YAML files name
    import embodied.cli.teleop  # noqa: F401

    schema = {"deploy": DeployConfig, "teleop": TeleopConfig}[command]
    with initialize_config_dir(config_dir=_config_path(), version_base=None):
        cfg = compose(command, overrides=["safety.max_relative_target=-1"])  # the documented form, no '+'
    with pytest.raises(SystemExit, match=f"embodied-{command}: safety.max_relative_target must be a finite number"):
        to_typed(cfg, schema, f"embodied-{command}")


class FakeArm:
    """A connected 3-joint arm that records what it is sent and every hold."""

    robot_type = "fake"
    is_connected = True

    def __init__(self, q=(0.0, 0.0, 0.0), gripper=1.0):
        self.joint_low, self.joint_high = np.array([-1.0, -1.0, -1.0]), np.array([1.0, 1.0, 1.0])
        self.q, self.gripper = np.array(q, dtype=np.float64), gripper
        self.sent, self.holds = [], 0

    def get_observation(self):
        return {"joint_positions": self.q.copy(), "gripper": np.array([self.gripper])}

    def send_action(self, action):
        self.sent.append(np.array(action))
        return np.array(action)

    def hold(self):
        self.holds += 1


def test_a_target_whose_tool_leaves_the_workspace_is_not_sent_and_the_arm_holds():
    arm = FakeArm(q=(0.1, 0.2, 0.3), gripper=0.4)
    tool = lambda q: np.array([q[0], q[1], 0.5])  # noqa: E731 - the tool follows joints 0 and 1
    guard = SafetyGuard(arm, SafetyLimits(workspace_low=(-0.15, -0.15, 0.0), workspace_high=(0.15, 0.25, 1.0)),
                        control_dt=0.05, forward_kinematics=tool)
    sent = guard.step(np.array([0.14, 0.2, 0.3, 0.4]))  # inside the box: sent as asked
    np.testing.assert_allclose(sent, [0.14, 0.2, 0.3, 0.4])
    sent = guard.step(np.array([0.2, 0.2, 0.3, 0.4]))  # x = 0.175 after the step limit: outside
    np.testing.assert_allclose(sent, [0.1, 0.2, 0.3, 0.4])  # what the arm keeps: its current position
    assert len(arm.sent) == 1 and arm.holds == 1 and guard.counters["workspace_rejected"] == 1


def test_the_gripper_moves_at_most_max_gripper_step_per_command_from_the_last_command():
    arm = FakeArm(gripper=1.0)
    guard = SafetyGuard(arm, SafetyLimits(max_gripper_step=0.3), control_dt=0.05)
    hold_joints = np.zeros(3)
    assert guard.step(np.append(hold_joints, 0.0))[-1] == pytest.approx(0.7)  # asked to close fully
    assert guard.step(np.append(hold_joints, 0.0))[-1] == pytest.approx(0.4)  # from 0.7 commanded, not measured 1.0
    assert guard.step(np.append(hold_joints, 1.0))[-1] == pytest.approx(0.7)  # opening is limited too
    assert guard.step(np.append(hold_joints, 0.8))[-1] == pytest.approx(0.8)  # inside the step: as asked
    assert guard.counters["gripper_limited"] == 3


def test_joint_targets_stop_joint_margin_inside_the_robots_limits():
    arm = FakeArm(q=(0.97, -0.97, 0.0))
    guard = SafetyGuard(arm, SafetyLimits(joint_margin=0.05), control_dt=0.05)
    sent = guard.step(np.array([5.0, -5.0, 0.0, 1.0]))
    np.testing.assert_allclose(sent[:3], [0.95, -0.95, 0.0])  # limit 1.0 minus the margin, either side
    assert guard.counters["joint_clamped"] == 1


def test_a_one_radian_jump_becomes_the_smaller_of_the_two_step_limits_on_every_joint():
    arm = FakeArm()
    guard = SafetyGuard(arm, SafetyLimits(max_relative_target=0.1, max_joint_velocity=1.0), control_dt=0.05)
    sent = guard.step(np.array([1.0, -1.0, 0.02, 1.0]))  # velocity limit: 1 rad/s * 0.05 s = 0.05 rad
    np.testing.assert_allclose(sent, [0.05, -0.05, 0.02, 1.0])
    guard = SafetyGuard(FakeArm(), SafetyLimits(max_relative_target=0.03, max_joint_velocity=1.0), control_dt=0.05)
    np.testing.assert_allclose(guard.step(np.array([1.0, -1.0, 0.02, 1.0])), [0.03, -0.03, 0.02, 1.0])


def test_the_watchdog_stays_quiet_while_commands_keep_arriving_and_holds_once_they_stop():
    arm = FakeArm()
    guard = SafetyGuard(arm, SafetyLimits(watchdog_s=0.2), control_dt=0.05)
    guard.start_watchdog()
    try:
        for _ in range(20):  # 20 commands 0.05 s apart: 1 s of control, five watchdog periods
            guard.step(np.zeros(4))
            time.sleep(0.05)
        quiet_holds = arm.holds
        time.sleep(0.5)  # the policy stalls
    finally:
        guard.stop_watchdog()
    assert quiet_holds == 0 and guard.counters["watchdog_holds"] >= 1 and arm.holds >= 1
    assert not any(t.name == "safety-watchdog" for t in threading.enumerate())


def test_each_joint_moves_no_faster_than_its_arms_published_velocity_limit():
    from types import SimpleNamespace

    arm = FakeArm()
    arm.arm = SimpleNamespace(velocity_limits=(0.4, 2.0, 2.0))  # joint 1 slower than the configured 1.5 rad/s
    guard = SafetyGuard(arm, SafetyLimits(max_relative_target=1.0, max_joint_velocity=1.5), control_dt=0.05)
    np.testing.assert_allclose(guard.step(np.array([1.0, 1.0, -1.0, 1.0])), [0.02, 0.075, -0.075, 1.0])


def test_action_features_declare_the_flat_layout_send_action_takes_and_returns():
    from real_robot import make_robot

    with make_robot({"type": "sim_twin", "task": "Reach", "cameras": [], "arm": "xarm6"}) as robot:
        features = robot.action_features
        assert list(features) == ["joint_positions", "gripper"] and features["joint_positions"] == (6,)
        width = sum(shape[0] for shape in features.values())
        q = robot.get_observation()["joint_positions"]
        sent = robot.send_action(np.append(q, 2.0))  # gripper beyond [0, 1]
        assert sent.shape == (width,) and sent[-1] == 1.0
        with pytest.raises(ValueError, match=r"shape \(7,\)"):
            robot.send_action(np.zeros(8))
