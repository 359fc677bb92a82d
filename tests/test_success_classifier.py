"""Success on hardware (embodied.robot_rl.success): a classifier trained from demos' final frames and labelled
failures, recorded through RobotEnv on the PickCube twin; a key press overrides it."""

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from embodied.deploy.recorder import EpisodeRecorder
from embodied.robot_rl.intervention import Intervention, after_step
from embodied.robot_rl.success import (KeyOverride, SuccessClassifier, classifier_success, labelled_frames,
                                       train_success_classifier)
from real_robot.sim_twin import SimTwinRobot
from real_robot.teleop.scripted import ScriptedDevice
from tests.test_robot_env import make_env

torch.set_num_threads(1)
STEPS = 45  # the expert lifts the cube within 21-32 steps and holds it after


def record(robot, root: str, episodes: range, expert: bool) -> None:
    """PickCube episodes of ``STEPS`` steps: the expert (taking over from the start) or a policy that stays put."""
    intervention = None
    if expert:
        device = ScriptedDevice()
        device.connect()
        intervention = Intervention(device, "ee_delta_pos", after_step(0))
    env = make_env(robot, max_episode_steps=STEPS, terminate_on_success=False, intervention=intervention,
                   recorder=EpisodeRecorder(root, 20.0, "sim_twin_panda"))
    for episode in episodes:
        env.reset(seed=0, reset_ids=[episode])
        for _ in range(STEPS):
            env.step(torch.zeros(1, 4))
    env.close()


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("success")
    robot = SimTwinRobot(task="PickCube", cameras=("front",), seed=0)
    robot.connect()
    try:
        record(robot, str(root / "demos"), range(8), expert=True)
        record(robot, str(root / "failures"), range(8, 10), expert=False)
        record(robot, str(root / "heldout_demos"), range(10, 16), expert=True)
        record(robot, str(root / "heldout_failures"), range(16, 17), expert=False)
    finally:
        robot.disconnect()
    return root


def test_the_classifier_tells_solved_from_unsolved_on_held_out_episodes(datasets, tmp_path):
    images, labels = labelled_frames([str(datasets / "demos")], [str(datasets / "failures")], "front")
    # RobotEnv's recordings carry the twin's verdict on every frame: the expert solves PickCube by step 21-32 of 45
    assert images.shape == (10 * STEPS, 64, 64, 3) and 8 * 10 <= labels.sum() <= 8 * 25
    model = train_success_classifier(images, labels, "front", steps=300)
    model.save_pretrained(str(tmp_path / "clf"))
    model = SuccessClassifier.from_pretrained(str(tmp_path / "clf"))
    forged = {f"encoder.{k}": v for k, v in model.encoder.state_dict().items()} | model.state_dict()
    save_file({k: v.contiguous() for k, v in forged.items()}, str(tmp_path / "clf" / "model.safetensors"))
    with pytest.raises(ValueError, match="not a success classifier"):
        SuccessClassifier.from_pretrained(str(tmp_path / "clf"))  # weights replacing the shipped encoder
    test_x, test_y = labelled_frames([str(datasets / "heldout_demos")], [str(datasets / "heldout_failures")],
                                     "front")
    with torch.no_grad():
        predicted = (torch.sigmoid(model(torch.as_tensor(test_x))) >= 0.5).numpy()
    solved, unsolved = predicted[test_y == 1], predicted[test_y == 0]
    assert solved.mean() >= 0.8 and (~unsolved).mean() >= 0.8, (solved.mean(), (~unsolved).mean())
    source = classifier_success(model)
    assert source({"images.front": test_x[test_y == 1][-1]}) and not source({"images.front": test_x[0]})


def test_a_key_confirms_or_overrides_the_source():
    keys = iter([None, "s", "f", "x"])
    source = KeyOverride(lambda robot_obs: robot_obs["solved"], read_key=lambda: next(keys))
    assert [source({"solved": False}), source({"solved": False}), source({"solved": True}),
            source({"solved": True})] == [False, True, False, True]
    assert source.overrides == 2


def test_labels_need_both_classes_and_the_camera(datasets):
    with pytest.raises(ValueError, match="no camera 'wrist'"):
        labelled_frames([str(datasets / "demos")], [], "wrist")
    images, labels = labelled_frames([], [str(datasets / "failures")], "front")
    with pytest.raises(ValueError, match="both solved and unsolved"):
        train_success_classifier(images, labels, "front")


def test_demos_without_verdicts_are_labelled_by_their_first_and_last_frames(tmp_path):
    """A teleoperated demo (no success column): its first 30% unsolved, its last 5 frames solved, the rest left out."""
    recorder = EpisodeRecorder(str(tmp_path / "teleop"), 20.0, "sim_twin_panda")
    images = np.random.default_rng(0).integers(0, 255, (12, 64, 64, 3), dtype=np.uint8)
    for image in images:
        recorder.add(np.zeros(19), {"images.front": image}, np.zeros(4), np.zeros(8), np.zeros(4), "pick")
    recorder.end_episode()
    frames, labels = labelled_frames([str(tmp_path / "teleop")], [], "front")
    assert labels.tolist() == [0, 0, 0] + [1] * 5 and frames.shape == (8, 64, 64, 3)
