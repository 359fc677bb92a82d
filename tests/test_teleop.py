"""Teleoperation: devices against SDK-level fakes, the episode loop end to end on the sim twin (read back, videos,
SFT on the recording), re-record, safety stops, resume checks, and a SIGKILL in the middle of an episode."""

import json
import os
import signal
import subprocess
import sys
import time
from unittest import mock

import numpy as np
import pytest
import torch

from embodied.algorithms.sft import SFTConfig
from embodied.config.schema import TrainConfig
from embodied.data.reader import LeRobotDataset
from embodied.data.video import decode_video
from embodied.runner.sft import SFTTrainer
from embodied.teleop.config import TeleopConfig
from embodied.teleop.session import TeleopSession
from real_robot.teleop import TeleopCommand, TeleopDevice, make_device, register_device


# ------------------------------------------------------------------------------------------------ devices
def test_command_is_clipped_and_validated():
    command = TeleopCommand(translation=[2.0, -0.5, 0.0], gripper=-3.0)
    assert command.translation.tolist() == [1.0, -0.5, 0.0] and command.gripper == -1.0
    with pytest.raises(ValueError, match="unknown teleop events"):
        TeleopCommand(events=frozenset({"explode"}))
    with pytest.raises(KeyError, match="spacemouse"):
        make_device({"type": "theremin"})
    with pytest.raises(ValueError, match="speed must be in"):
        make_device({"type": "scripted", "speed": 2.0})


def test_keyboard_terminal_backend_reads_keys_from_a_pipe():
    read_end, write_end = os.pipe()
    device = make_device({"type": "keyboard", "backend": "terminal", "fd": read_end, "speed": 0.5, "hold_s": 0.2})
    try:
        with device:
            os.write(write_end, b"wa ")  # +x, +y, toggle the gripper (starts open)
            command = device.read()
            assert command.translation.tolist() == [0.5, 0.5, 0.0] and command.gripper == -1.0
            assert not command.events
            os.write(write_end, b"f\n")
            command = device.read()
            assert command.translation[2] == -0.5 and command.events == {"finish"}
            os.write(write_end, b"b")
            assert device.read().events == {"rerecord"}
            time.sleep(0.25)  # past hold_s: the keys are released
            assert device.read().translation.tolist() == [0.0, 0.0, 0.0]
            os.write(write_end, b"\x1b")
            assert device.read().events == {"stop"}
    finally:
        os.close(read_end)
        os.close(write_end)


def test_keyboard_pynput_backend_tracks_held_keys(monkeypatch):
    """pynput needs an X server (absent here), so a fake mirroring its documented Listener API stands in."""
    import types

    class Listener:
        def __init__(self, on_press=None, on_release=None):
            self.on_press, self.on_release, self.running = on_press, on_release, False
            listeners.append(self)

        def start(self):
            self.running = True

        def stop(self):
            self.running = False

    listeners = []
    keyboard = types.SimpleNamespace(Listener=Listener)
    monkeypatch.setitem(sys.modules, "pynput", types.SimpleNamespace(keyboard=keyboard))
    monkeypatch.setitem(sys.modules, "pynput.keyboard", keyboard)
    char = lambda c: types.SimpleNamespace(char=c)  # noqa: E731 - pynput KeyCode
    special = lambda name: types.SimpleNamespace(char=None, name=name)  # noqa: E731 - pynput Key
    with make_device({"type": "keyboard", "backend": "pynput"}) as device:
        listener = listeners[0]
        assert listener.running
        listener.on_press(char("W"))
        listener.on_press(char("r"))
        assert device.read().translation.tolist() == [1.0, 0.0, 1.0]
        assert device.read().translation.tolist() == [1.0, 0.0, 1.0]  # held: still moving
        listener.on_release(char("r"))
        listener.on_press(special("enter"))
        command = device.read()
        assert command.translation.tolist() == [1.0, 0.0, 0.0] and command.events == {"finish"}
    assert not listener.running


def test_spacemouse_through_the_real_pyspacemouse_interface(monkeypatch):
    import pyspacemouse
    from pyspacemouse.device import SpaceMouseDevice
    from pyspacemouse.types import SpaceMouseState

    mouse = mock.create_autospec(SpaceMouseDevice, instance=True)
    opened = mock.Mock(return_value=mouse)
    monkeypatch.setattr(pyspacemouse, "open", opened)
    mouse.read.side_effect = [SpaceMouseState(x=0.8, y=0.02, z=-0.4, yaw=0.5, buttons=[1, 0]),
                              SpaceMouseState(x=0.0, buttons=[1, 0]),  # still held: no second toggle
                              SpaceMouseState(x=0.0, buttons=[0, 1])]
    with make_device({"type": "spacemouse", "speed": 0.5}) as device:
        assert opened.call_args.kwargs["axis_convention"] == pyspacemouse.AxisConvention.HID_Z_UP
        first = device.read()
        np.testing.assert_allclose(first.translation, [0.4, 0.0, -0.2])  # y inside the dead zone
        assert first.rotation[2] == pytest.approx(0.25) and first.gripper == -1.0
        assert device.read().gripper == -1.0
        assert device.read().events == {"finish"}
    mouse.close.assert_called_once()


def test_gamepad_through_the_real_pygame_joystick_interface(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    import pygame

    joystick = mock.create_autospec(pygame.joystick.JoystickType, instance=True)
    axes = {0: -0.6, 1: -0.9, 4: 0.05}  # stick left and forward; right stick inside the dead zone
    joystick.get_axis.side_effect = lambda i: axes.get(i, 0.0)
    buttons = {0: 1}
    joystick.get_button.side_effect = lambda i: buttons.get(i, 0)
    monkeypatch.setattr(pygame.joystick, "get_count", lambda: 1)
    monkeypatch.setattr(pygame.joystick, "Joystick", mock.Mock(return_value=joystick))
    with make_device({"type": "gamepad", "speed": 1.0}) as device:
        command = device.read()
        np.testing.assert_allclose(command.translation, [0.9, 0.6, 0.0])
        assert command.gripper == -1.0 and not command.events
        buttons.clear()
        buttons[7] = 1  # Start
        assert device.read().events == {"finish"}
    joystick.init.assert_called_once()
    monkeypatch.setattr(pygame.joystick, "get_count", lambda: 0)
    with pytest.raises(ConnectionError, match="gamepad 0 not found"):
        make_device({"type": "gamepad"}).connect()


def test_scripted_replay_validates_its_file(tmp_path):
    path = str(tmp_path / "commands.npy")
    np.save(path, np.array([[1.0, 0, 0, 1.0], [0, 0, -1.0, -1.0]]))
    with make_device({"type": "scripted", "path": path}) as device:
        device.start_episode()
        assert device.read().translation[0] == 1.0
        last = device.read()
        assert last.gripper == -1.0 and last.events == {"finish"}
    np.save(path, np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"expected \[T, 4\]"):
        make_device({"type": "scripted", "path": path})
    np.save(path, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError):  # pickled objects are refused (allow_pickle=False)
        make_device({"type": "scripted", "path": path})


# ------------------------------------------------------------------------------------------- sessions
def teleop_config(root, **overrides) -> TeleopConfig:
    robot = {"type": "sim_twin", "task": "PickCube", "cameras": ["front", "wrist"], "image_size": [32, 32]}
    robot |= overrides.pop("robot", {})
    return TeleopConfig(dataset=str(root), robot=robot, device=overrides.pop("device", {"type": "scripted"}),
                        **({"episodes": 3, "view": "none"} | overrides))


def test_scripted_teleop_records_a_dataset_that_sft_learns_from(tmp_path):
    root = tmp_path / "teleop"
    summaries = TeleopSession(teleop_config(root), stream=open(os.devnull, "w")).run()
    assert [s.outcome for s in summaries] == ["finish"] * 3  # the expert solved PickCube every time
    dataset = LeRobotDataset(str(root))
    assert dataset.fps == 20.0 and len(dataset.episodes) == 3
    assert [e["length"] for e in dataset.episodes] == [s.frames for s in summaries]
    assert len(dataset) == sum(s.frames for s in summaries)
    for episode in dataset.episodes:
        for camera in ("front", "wrist"):
            key = f"observation.images.{camera}"
            path = os.path.join(str(root), dataset.info["video_path"].format(
                video_key=key, chunk_index=episode[f"videos/{key}/chunk_index"],
                file_index=episode[f"videos/{key}/file_index"]))
            assert decode_video(path).shape == (episode["length"], 32, 32, 3)
    assert dataset[5]["observation.images.wrist"].shape == (32, 32, 3)
    sent, state = dataset.columns["action.joint_targets"], dataset.columns["observation.state"]
    max_step = min(0.1, 1.5 / dataset.fps)  # the guard's per-step limit: max_joint_velocity * dt at 20 Hz
    assert np.abs(sent[:, :7] - state[:, :7]).max() <= max_step + 1e-5  # recorded after the guard's step limit

    cfg = TrainConfig()
    cfg.env.task, cfg.policy.obs_keys = "PickCube", ["state"]  # robots have no privileged state
    cfg.algo = SFTConfig(sft_steps=150, sft_eval_interval=0, batch_size=64)
    cfg.data.paths = [str(root)]
    cfg.experiment.output_dir, cfg.experiment.progress = str(tmp_path / "sft"), False
    cfg.experiment.eval_episodes, cfg.experiment.eval_num_envs = 4, 4
    trainer = SFTTrainer(cfg)
    torch.manual_seed(0)
    batch = next(trainer.data)
    with torch.no_grad():
        before = trainer.policy.sft_loss(batch).item()
    trainer.train()
    with torch.no_grad():
        after = trainer.policy.sft_loss(batch).item()
    assert before - after > 2.0, (before, after)  # Gaussian NLL per frame: measured 4.02 -> -0.30


@register_device("rerecord_first")
class RerecordFirstEpisode(TeleopDevice):
    """Moves up; asks to re-record the first episode at its 4th frame, finishes every later one at frame 6."""

    def __init__(self, speed: float = 1.0):
        super().__init__(speed)
        self.episode, self.frame = -1, 0

    def start_episode(self, robot=None):
        self.episode, self.frame = self.episode + 1, 0

    def _read(self, robot_obs):
        self.frame += 1
        events = {"rerecord"} if self.episode == 0 and self.frame == 4 else {"finish"} if self.frame == 6 else set()
        return TeleopCommand(translation=[0, 0, 0.5], events=frozenset(events))


def test_rerecord_discards_the_episode_and_records_it_again(tmp_path):
    import cv2

    root, preview = tmp_path / "teleop", tmp_path / "preview.png"
    cfg = teleop_config(root, episodes=2, device={"type": "rerecord_first"}, instructions=["lift the arm"],
                        view="preview", preview_path=str(preview), preview_every_s=0.0)
    summaries = TeleopSession(cfg, stream=open(os.devnull, "w")).run()
    assert [(s.outcome, s.index) for s in summaries] == [("rerecord", None), ("finish", 0), ("finish", 1)]
    dataset = LeRobotDataset(str(root))
    assert [e["length"] for e in dataset.episodes] == [6, 6] and dataset.task_names == {0: "lift the arm"}
    assert dataset.columns["action"][:, 2].min() > 0  # the recorded action moved the tool up
    assert cv2.imread(str(preview)).shape == (32, 64, 3)  # headless live view: both cameras side by side


def test_a_safety_stop_keeps_the_frames_before_it(tmp_path):
    root = tmp_path / "teleop"
    summaries = TeleopSession(teleop_config(root, robot={"camera_fail_after": 10}),
                              stream=open(os.devnull, "w")).run()
    assert summaries[-1].outcome.startswith("safety_stop") and "no frame" in summaries[-1].outcome
    assert len(LeRobotDataset(str(root))) == summaries[-1].frames == 9  # the first read was the feature probe


def test_resume_checks_fps_and_features(tmp_path):
    root = tmp_path / "teleop"
    TeleopSession(teleop_config(root, episodes=1), stream=open(os.devnull, "w")).run()
    with pytest.raises(FileExistsError, match="--resume"):
        TeleopSession(teleop_config(root, episodes=1), stream=open(os.devnull, "w")).run()
    with pytest.raises(ValueError, match="recorded at 20.0 fps"):
        TeleopSession(teleop_config(root, episodes=1, fps=15.0, resume=True), stream=open(os.devnull, "w")).run()
    with pytest.raises(ValueError, match="has features"):
        TeleopSession(teleop_config(root, episodes=1, resume=True, robot={"image_size": [16, 16]}),
                      stream=open(os.devnull, "w")).run()
    TeleopSession(teleop_config(root, episodes=1, resume=True), stream=open(os.devnull, "w")).run()
    assert len(LeRobotDataset(str(root)).episodes) == 2


def test_sigkill_mid_episode_loses_only_that_episode(tmp_path):
    root = tmp_path / "teleop"
    command = [sys.executable, "-m", "embodied.cli.teleop", f"dataset={root}", "device=scripted", "episodes=100",
               "robot.image_size=[32,32]", "view=none", f"hydra.run.dir={tmp_path / 'hydra'}"]
    env = os.environ | {"OMP_NUM_THREADS": "1", "MUJOCO_GL": "egl"}
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=env)
    info_path = root / "meta" / "info.json"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if info_path.exists() and json.loads(info_path.read_text())["total_episodes"] >= 2:
                break
            time.sleep(0.02)
        time.sleep(0.5)  # well inside the next episode
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        process.kill()
    dataset = LeRobotDataset(str(root))
    saved = len(dataset.episodes)
    assert 2 <= saved < 100
    assert len(dataset) == sum(e["length"] for e in dataset.episodes)
    for index in range(0, len(dataset), 7):
        assert dataset[index]["observation.images.front"].shape == (32, 32, 3)  # every video decodes
    resumed = subprocess.run(command[:-4] + ["episodes=1", "--resume", "robot.image_size=[32,32]", "view=none",
                                             f"hydra.run.dir={tmp_path / 'hydra'}"],
                             capture_output=True, text=True, env=env, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert len(LeRobotDataset(str(root)).episodes) == saved + 1
