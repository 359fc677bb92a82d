"""Hardware layer: drivers against SDK-level fakes (autospec of the real SDK classes where they install), the
Robot guards, and the safety guard's fault handling on the sim twin."""

import os
import signal
import sys
import time
import types
from unittest import mock

import numpy as np
import pytest

from real_robot import make_robot
from real_robot.errors import DeviceAlreadyConnectedError, DeviceNotConnectedError, SafetyStop
from real_robot.safety import SafetyGuard, SafetyLimits


# ------------------------------------------------------------------------------------------------ drivers
def test_ur_driver_streams_servoj_through_the_real_sdk_interface(monkeypatch):
    import rtde_control
    import rtde_receive

    control = mock.create_autospec(rtde_control.RTDEControlInterface, instance=True)
    receive = mock.create_autospec(rtde_receive.RTDEReceiveInterface, instance=True)
    receive.getActualQ.return_value = [0.0, -1.0, 1.0, 0.0, 0.5, 0.0]
    receive.isConnected.return_value = True
    control.servoJ.return_value = True
    monkeypatch.setattr(rtde_control, "RTDEControlInterface", mock.Mock(return_value=control))
    monkeypatch.setattr(rtde_receive, "RTDEReceiveInterface", mock.Mock(return_value=receive))
    robot = make_robot({"type": "ur", "host": "10.0.0.2", "control_hz": 125})
    assert robot.action_features == {"joint_positions": (6,), "gripper": (1,)}  # declared before connecting
    with robot:
        obs = robot.get_observation()
        assert obs["joint_positions"].tolist() == [0.0, -1.0, 1.0, 0.0, 0.5, 0.0]
        sent = robot.send_action(np.array([0.1, -1.0, 1.0, 0.0, 9.0, 0.0, 0.5]))  # joint 5 beyond +-2 pi
        assert sent[4] == pytest.approx(2 * np.pi)
        control.servoJ.assert_called_once()
        args = control.servoJ.call_args.args
        assert args[0][4] == pytest.approx(2 * np.pi) and args[3] == pytest.approx(1 / 125)
        receive.isConnected.return_value = False
        with pytest.raises(ConnectionError, match="lost"):
            robot.get_observation()
    control.servoStop.assert_called()
    control.disconnect.assert_called_once()


def test_xarm_driver_uses_servo_mode_and_the_gripper(monkeypatch):
    from xarm import wrapper

    arm = mock.create_autospec(wrapper.XArmAPI, instance=True)
    for name in ("motion_enable", "set_mode", "set_state", "set_gripper_enable", "set_gripper_speed",
                 "set_servo_angle_j", "set_gripper_position", "clean_error"):
        getattr(arm, name).return_value = 0
    arm.get_servo_angle.return_value = (0, [0.1] * 7)
    arm.axis = 7
    arm.get_gripper_position.return_value = (0, 425.0)
    monkeypatch.setattr(wrapper, "XArmAPI", mock.Mock(return_value=arm))
    with make_robot({"type": "xarm", "host": "192.168.1.200"}) as robot:
        arm.set_mode.assert_called_with(1)
        assert robot.get_observation()["gripper"][0] == pytest.approx(0.5)
        robot.send_action(np.array([0.2] * 7 + [1.0]))
        arm.set_servo_angle_j.assert_called_with([0.2] * 7, is_radian=True)
        arm.set_gripper_position.assert_called_with(850.0, wait=False)
        arm.set_servo_angle_j.return_value = 31  # controller error mid-episode
        with pytest.raises(RuntimeError, match="error code 31"):
            robot.send_action(np.array([0.2] * 7 + [1.0]))
    arm.disconnect.assert_called_once()


class FakeFranky(types.ModuleType):
    """Mirrors franky's documented Python API (Robot, Gripper, JointMotion); franky does not install here."""

    def __init__(self):
        super().__init__("franky")
        self.moves, self.stops, self.gripper_moves, self.grasps = [], [], [], []
        fake = self

        class JointMotion:
            def __init__(self, target):
                self.target = list(target)

        class Robot:
            def __init__(self, fci_ip):
                self.relative_dynamics_factor = 1.0
                self.current_joint_state = types.SimpleNamespace(position=np.zeros(7))

            def recover_from_errors(self):
                return True

            def move(self, motion, asynchronous=False):
                fake.moves.append((motion.target, asynchronous))

            def stop(self):
                fake.stops.append(True)

        class Gripper:
            def __init__(self, fci_ip, speed=0.04, force=20.0):
                self.width = 0.08

            def move_async(self, width, speed):
                fake.gripper_moves.append((width, speed))

            def grasp_async(self, width, speed, force, epsilon_inner=0.005, epsilon_outer=0.005):
                fake.grasps.append((width, speed, force))

        self.JointMotion, self.Robot, self.Gripper = JointMotion, Robot, Gripper


def test_franka_driver_with_a_franky_fake(monkeypatch):
    fake = FakeFranky()
    monkeypatch.setitem(sys.modules, "franky", fake)
    with make_robot({"type": "franka", "host": "172.16.0.2", "relative_dynamics_factor": 0.05}) as robot:
        assert robot.robot.relative_dynamics_factor == 0.05
        robot.send_action(np.array([0.1, 0, 0, -2.0, 0, 2.0, 0.8, 0.0]))
        assert fake.moves[-1] == ([0.1, 0, 0, -2.0, 0, 2.0, 0.8], True)
        assert fake.gripper_moves[-1][0] == pytest.approx(0.0)
        robot.send_action(np.array([0.1, 0, 0, -2.0, 0, 2.0, 0.8, 1.0]))  # open: a plain move
        assert fake.gripper_moves[-1][0] == pytest.approx(0.08) and not fake.grasps
        assert robot.limit_gripper_force(12.0) == 12.0  # the guard's cap lowers the configured 20 N
        robot.send_action(np.array([0.1, 0, 0, -2.0, 0, 2.0, 0.8, 0.2]))  # close: a force-capped grasp
        assert fake.grasps[-1] == (pytest.approx(0.016), 0.05, 12.0)
    assert fake.stops


def test_missing_sdk_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "franky", None)  # import franky -> ImportError
    with pytest.raises(ImportError, match=r"embodied-vla\[real\]"):
        make_robot({"type": "franka", "host": "x"}).connect()
    with pytest.raises(KeyError, match="sim_twin"):
        make_robot({"type": "kuka"})


# ---------------------------------------------------------------------------------------- sim twin, guard
@pytest.fixture
def twin():
    robot = make_robot({"type": "sim_twin", "task": "Reach", "cameras": ()})
    robot.connect()
    yield robot
    robot.disconnect()


def guard_for(robot, **limits):
    return SafetyGuard(robot, SafetyLimits(**limits), control_dt=0.05)


def test_robot_guards_wrong_state():
    robot = make_robot({"type": "sim_twin", "task": "Reach", "cameras": ()})
    with pytest.raises(DeviceNotConnectedError, match="connect"):
        robot.get_observation()
    robot.connect()
    with pytest.raises(DeviceAlreadyConnectedError):
        robot.connect()
    robot.disconnect()
    robot.disconnect()  # idempotent


def test_nan_action_holds_and_is_counted(twin):
    guard = guard_for(twin)
    before = twin.get_observation()["joint_positions"]
    sent = guard.step(np.full(8, np.nan))
    assert guard.counters["nan_rejected"] == 1
    np.testing.assert_allclose(sent[:7], before)
    assert np.abs(twin.get_observation()["joint_positions"] - before).max() < 0.02


def test_one_radian_jump_is_limited_per_step(twin):
    guard = guard_for(twin, max_relative_target=0.1, max_joint_velocity=1.0)  # 1 rad/s * 0.05 s = 0.05 rad
    q = twin.get_observation()["joint_positions"]
    target = np.concatenate([q + np.array([1.0, 0, 0, 0, 0, 0, 0]), [1.0]])
    sent = guard.step(target)
    assert sent[0] - q[0] == pytest.approx(0.05) and guard.counters["step_limited"] == 1
    beyond = np.concatenate([np.full(7, 10.0), [1.0]])
    guard.step(beyond)
    assert guard.counters["joint_clamped"] == 1


def test_watchdog_holds_a_stalled_policy(twin):
    guard = guard_for(twin, watchdog_s=0.1)
    guard.start_watchdog()
    guard.step(np.concatenate([twin.get_observation()["joint_positions"], [1.0]]))
    time.sleep(0.35)  # the policy stalls past the deadline
    guard.stop_watchdog()
    assert guard.counters["watchdog_holds"] >= 1


def test_sdk_exception_mid_episode_ends_in_a_safe_stop(twin):
    guard = guard_for(twin)
    guard.step(np.concatenate([twin.get_observation()["joint_positions"], [1.0]]))
    with mock.patch.object(twin, "_write_targets", side_effect=RuntimeError("socket closed")):
        with pytest.raises(SafetyStop, match="socket closed"):
            guard.step(np.concatenate([twin.get_observation()["joint_positions"], [1.0]]))
    assert not twin.is_connected and guard.counters["sdk_errors"] == 1


def test_camera_that_stops_delivering_frames_stops_safely():
    robot = make_robot({"type": "sim_twin", "task": "Reach", "cameras": ("front",), "image_size": (32, 32),
                        "camera_fail_after": 3})
    robot.connect()
    guard = guard_for(robot)
    hold_here = np.concatenate([robot.get_observation()["joint_positions"], [1.0]])
    with pytest.raises(SafetyStop, match="no frame"):
        for _ in range(10):
            guard.step(hold_here)
    assert not robot.is_connected


def test_gripper_force_is_capped_in_the_driver_and_closing_stops_at_the_limit(twin):
    guard = guard_for(twin, max_gripper_force=10.0)
    assert twin.observation_features["gripper_force"] == (1,)
    guard.engage()
    guard.stop_watchdog()
    assert guard.gripper_force_cap == 10.0
    np.testing.assert_allclose(twin.env.batch.expand("actuator_forcerange")[0, twin.env.finger_actuators],
                               [[-10, 10], [-10, 10]])
    q = twin.get_observation()["joint_positions"]
    with mock.patch.object(twin, "_read_gripper_force", return_value=9.8):  # squeezing at the limit
        opening = twin.get_observation()["gripper"][0]
        sent = guard.step(np.concatenate([q, [0.0]]))
        assert sent[-1] == pytest.approx(opening) and guard.counters["gripper_force_limited"] == 1
        assert guard.step(np.concatenate([q, [1.0]]))[-1] == pytest.approx(1.0)  # opening is always allowed
    sent = guard.step(np.concatenate([q, [0.6]]))  # force below the limit: closing allowed (step-limited)
    assert sent[-1] == pytest.approx(0.6) and guard.counters["gripper_force_limited"] == 1


def test_a_robot_whose_gripper_cannot_be_capped_is_reported(caplog):
    robot = make_robot({"type": "sim_twin", "task": "Reach", "cameras": ()})
    with robot, mock.patch.object(robot, "_limit_gripper_force", return_value=None):
        guard = guard_for(robot)
        guard.engage()
        guard.stop_watchdog()
    assert guard.gripper_force_cap is None and "cannot cap its gripper force" in caplog.text


def test_a_key_is_an_estop(twin):
    from real_robot.estop import KeyEStop

    guard = guard_for(twin)
    read_end, write_end = os.pipe()
    try:
        with KeyEStop(guard.request_stop, keys=" q", fd=read_end) as estop:
            os.write(write_end, b"xq")  # x is not a stop key
            deadline = time.monotonic() + 2.0
            while estop.triggered is None and time.monotonic() < deadline:
                time.sleep(0.01)
        assert estop.triggered == "q"
        with pytest.raises(SafetyStop, match="key 'q'"):
            guard.step(np.concatenate([np.zeros(7), [1.0]]))
    finally:
        os.close(read_end)
        os.close(write_end)
    assert guard.counters["estop"] == 1 and not twin.is_connected


def test_opencv_camera_reads_rgb_frames_until_the_stream_ends(tmp_path):
    from embodied.data.video import encode_video
    from real_robot.camera import CameraTimeout, make_camera

    frames = np.zeros((5, 48, 64, 3), np.uint8)
    frames[..., 0] = 200  # red: a BGR/RGB mix-up would show up as blue
    path = str(tmp_path / "stream.mp4")
    encode_video(frames, path, fps=30)
    camera = make_camera({"type": "opencv", "index": path, "width": 32, "height": 24, "timeout_s": 0.2})
    with pytest.raises(DeviceNotConnectedError):
        camera.read()
    camera.connect()
    for _ in range(5):
        frame = camera.read()
        assert frame.shape == (24, 32, 3) and frame.dtype == np.uint8
        assert frame[..., 0].mean() > 150 and frame[..., 2].mean() < 50
    with pytest.raises(CameraTimeout, match="no frame within 0.2 s"):
        camera.read()  # the stream ended: a camera that stops delivering frames
    camera.disconnect()
    with pytest.raises(ConnectionError, match="cannot open camera"):
        make_camera({"type": "opencv", "index": str(tmp_path / "missing.mp4")}).connect()


def test_sigint_is_an_estop(twin):
    guard = guard_for(twin)
    guard.install_sigint()
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)
        with pytest.raises(SafetyStop, match="SIGINT"):
            guard.step(np.concatenate([np.zeros(7), [1.0]]))
    finally:
        guard.restore_sigint()
    assert guard.counters["estop"] == 1 and not twin.is_connected
