"""``embodied-train robot=ur``: RL on a real arm from the CLI's config, driven through an autospec of the UR SDK
(ur_rtde) with a camera streaming a video file: a person resets each episode to TwinRL's proposals, a success
classifier is the reward and a key overrides it, and settings a real arm cannot run are refused before anything
connects."""

import signal
from unittest import mock

import numpy as np
import pytest
import torch

import embodied.runner.robot as robot_runner
from embodied.cli.train import compose_train_config
from embodied.data.reader import LeRobotDataset
from embodied.data.video import encode_video
from embodied.runner.builders import build_env, build_policy
from embodied.runner.loops import make_trainer
from sims.arms import get_arm
from tests.test_robot_train import saved_classifier

torch.set_num_threads(1)
EPISODE_STEPS = 4
PIXEL_SAC = ["algo=sac", "policy=pixel_tanh", "policy.cameras=[front]", "env.image_size=[32,32]", "env.num_envs=1",
             f"env.max_episode_steps={EPISODE_STEPS}"]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    """The camera's video (red frames), classifiers that never / always call a frame solved, and untrained pixel
    starts (init_from) for the UR5e and the Panda."""
    root = tmp_path_factory.mktemp("real_arm")
    frames = np.zeros((400, 32, 32, 3), np.uint8)
    frames[..., 0] = 200
    encode_video(frames, str(root / "front.mp4"), fps=30)
    out = {"video": str(root / "front.mp4"), "never": saved_classifier(root / "never", -10.0),
           "always": saved_classifier(root / "always", 10.0),
           "classifier_64": saved_classifier(root / "classifier_64", 0.0, (64, 64))}
    for arm in ("ur5e", "panda"):
        cfg = compose_train_config([*PIXEL_SAC, f"env.arm={arm}"])
        env = build_env(cfg, 1, autoreset=True)
        build_policy(cfg, env, seed=0).save_pretrained(str(root / f"start_{arm}"))
        env.close()
        out[f"start_{arm}"] = str(root / f"start_{arm}")
    return out


@pytest.fixture
def ur_sdk(monkeypatch):
    """(control, receive): autospecs of ur_rtde's interfaces, the arm at the UR5e's ready pose."""
    rtde_control = pytest.importorskip("rtde_control")
    rtde_receive = pytest.importorskip("rtde_receive")
    control = mock.create_autospec(rtde_control.RTDEControlInterface, instance=True)
    receive = mock.create_autospec(rtde_receive.RTDEReceiveInterface, instance=True)
    receive.getActualQ.return_value = list(get_arm("ur5e").home)
    receive.isConnected.return_value = True
    control.servoJ.return_value = True
    monkeypatch.setattr(rtde_control, "RTDEControlInterface", mock.Mock(return_value=control))
    monkeypatch.setattr(rtde_receive, "RTDEReceiveInterface", mock.Mock(return_value=receive))
    return control, receive


def ur_run(tmp_path, files: dict, *extra: str):
    """The robot run ``embodied-train`` builds for a pixel SAC run on a UR5e at 50 Hz from an untrained start: its
    front camera streams the video, the never-solved classifier is the reward (keys off), TwinRL mines the twin every
    2 episodes; an override of a key in ``extra`` replaces the base's."""
    base = ["robot=ur", "robot.host=10.0.0.2",
            f"robot.cameras={{front: {{type: opencv, index: '{files['video']}', width: 32, height: 32}}}}",
            *PIXEL_SAC, "env.arm=ur5e", f"init_from={files['start_ur5e']}", "robot_rl.control_hz=50",
            f"robot_rl.success={files['never']}", "robot_rl.success_keys=false", "robot_rl.twinrl_every=2",
            "robot_rl.twinrl_evaluated=8", "robot_rl.twinrl_candidates=16", "experiment.eval_num_envs=4",
            "experiment.eval_episodes=4", "experiment.progress=false", "algo.learning_starts=6", "algo.batch_size=4",
            f"experiment.output_dir={tmp_path / 'run'}"]
    given = {override.partition("=")[0] for override in extra}
    overrides = [override for override in base if override.partition("=")[0] not in given] + list(extra)
    return make_trainer(compose_train_config(overrides))


def test_a_ur5e_trains_with_a_person_resetting_it_to_twinrls_proposals(tmp_path, files, ur_sdk, monkeypatch):
    control, _ = ur_sdk
    prompts, mined = [], []
    monkeypatch.setattr(robot_runner, "ask_on_terminal", lambda message, stopped: prompts.append(message) or True)
    real_mine = robot_runner.mine_failures
    monkeypatch.setattr(robot_runner, "mine_failures", lambda *args: mined.append(real_mine(*args)) or mined[-1])
    run = ur_run(tmp_path, files, f"experiment.total_env_steps={4 * EPISODE_STEPS}")
    control.servoJ.assert_not_called()  # nothing moves before train()
    run.train()

    assert run.trainer.counters["robot_episodes"] == 4 and len(mined) == 2  # before episodes 1 and 3, not after 4
    proposed = [text for result in mined for text in result.descriptions().values()]
    assert len(prompts) == 4 and len(set(proposed)) == 4
    for episode, (prompt, poses) in enumerate(zip(prompts, proposed), 1):  # each reset asks for a proposal's poses
        assert prompt.startswith(f"episode {episode}: reset the scene to: {poses}; then press Enter")
        assert poses.startswith("target 1 at x ") and poses.endswith(" cm")  # Reach: one target, no cubes
    ur = get_arm("ur5e")
    targets = np.array([call.args[0] for call in control.servoJ.call_args_list])
    assert targets.shape == (4 * EPISODE_STEPS, 6)  # one servoJ per robot step, six joints
    assert (targets >= ur.joint_low).all() and (targets <= ur.joint_high).all()
    assert control.servoStop.call_count >= 4 and control.stopScript.called  # held between episodes, then released
    assert float(run.trainer.buffer.store["reward"][:4 * EPISODE_STEPS].abs().sum()) == 0.0  # the classifier's 0s
    data = LeRobotDataset(str(tmp_path / "run" / "robot_data"))
    assert len(data.episodes) == 4 and len(data) == 4 * EPISODE_STEPS
    frame = np.asarray(data[0]["observation.images.front"], np.float64)  # the camera's red frames, recorded
    assert frame.shape == (32, 32, 3) and frame[..., 0].mean() > 5 * frame[..., 2].mean() + 0.1 * frame.max()


def test_ctrl_c_while_the_person_resets_stops_the_run_with_the_arm_held(tmp_path, files, ur_sdk, monkeypatch):
    """Ctrl-C at the second reset prompt ends the wait at once (no Enter needed): the arm holds and disconnects, the
    first episode stays saved."""
    control, _ = ur_sdk
    prompts = []

    def person(message, stopped):
        prompts.append(message)
        if len(prompts) == 1:
            return True
        signal.getsignal(signal.SIGINT)(signal.SIGINT, None)  # what Ctrl-C runs: the guard's e-stop request
        return not stopped()  # ask_on_terminal returns False at once when stopped

    monkeypatch.setattr(robot_runner, "ask_on_terminal", person)
    run = ur_run(tmp_path, files, "robot_rl.twinrl_every=0", f"experiment.total_env_steps={4 * EPISODE_STEPS}")
    final = run.train()
    assert "interrupted_at" in final and len(prompts) == 2 and run.trainer.counters["robot_episodes"] == 1
    assert control.servoJ.call_count == EPISODE_STEPS and control.disconnect.called  # nothing moved after the stop
    assert len(LeRobotDataset(str(tmp_path / "run" / "robot_data")).episodes) == 1


def test_the_robot_pixels_preset_trains_on_the_arm_the_command_line_names():
    cfg = compose_train_config(["experiment=robot_pixels", "robot=ur", "robot.host=10.0.0.2",
                                "robot.cameras={front: {type: opencv, index: 0}}"])
    assert dict(cfg.robot) == {"type": "ur", "arm": "ur5e", "host": "10.0.0.2", "control_hz": 125.0, "speed": 0.5,
                               "acceleration": 0.5, "lookahead_time": 0.1, "gain": 300.0,
                               "cameras": {"front": {"type": "opencv", "index": 0}}}  # no sim twin keys left over
    assert compose_train_config(["experiment=robot_pixels"]).robot["type"] == "sim_twin"


def test_a_start_trained_for_another_arm_is_refused_though_its_weights_would_load(tmp_path, files):
    """An xArm 7 and the Panda both have 7 joints: the Panda's pixel start loads into an xArm 7 learner, and only
    what it was trained with tells them apart."""
    with pytest.raises(ValueError, match="trained for the panda arm and this robot is modelled as xarm7"):
        ur_run(tmp_path, files, "robot=xarm", "robot.host=192.168.1.200", "robot.arm=xarm7", "env.arm=xarm7",
               f"init_from={files['start_panda']}")


class ScriptedKeys:
    """A terminal's key reader that returns ``typed[i]`` at its i-th read ('' after the script)."""

    def __init__(self, typed: list[str]):
        self.typed, self.is_open, self.opened = list(typed), False, 0

    def open(self):
        self.is_open, self.opened = True, self.opened + 1

    def close(self):
        self.is_open = False

    def read(self, timeout: float = 0.0) -> str:
        return self.typed.pop(0) if self.typed else ""


@pytest.mark.parametrize("classifier, typed, rewards", [
    ("never", ["", "", "xs"], [0.0, 1.0, 0.0]),  # reads: episode 1's reset, step 1, step 2 ('s': solved, it ends)...
    ("always", ["", "f"], [0.0, 1.0, 1.0]),  # 'f' at step 1: not yet; the classifier's verdict from step 2 on
], ids=["s", "f"])
def test_a_key_press_overrides_the_success_classifier_for_one_step(tmp_path, files, ur_sdk, monkeypatch, classifier,
                                                                    typed, rewards):
    """The person's key is that step's verdict; the terminal is back in its own mode for the reset prompts and at the
    end."""
    keys = ScriptedKeys(typed)
    monkeypatch.setattr(robot_runner, "KeyReader", lambda fd: keys)
    open_at_prompts = []
    monkeypatch.setattr(robot_runner, "ask_on_terminal", lambda message, stopped: open_at_prompts.append(
        keys.is_open) or True)
    run = ur_run(tmp_path, files, f"robot_rl.success={files[classifier]}", "robot_rl.success_keys=true",
                 "robot_rl.twinrl_every=0", "experiment.total_env_steps=3")
    run.train()
    assert run.trainer.buffer.store["reward"][:3, 0].tolist() == rewards
    assert open_at_prompts == [False, False]  # the two episodes' reset prompts
    assert keys.opened == 3 and not keys.is_open  # opened, then again after each of the two prompts; closed at the end


@pytest.mark.parametrize("overrides, message", [
    (["init_from="], "a real arm learns from a pre-trained policy, never from random actions"),
    (["robot_rl.success=twin"], "robot=ur has no task check"),
    (["robot_rl.person=scripted", "robot_rl.person_episodes=1"], "robot_rl.person=scripted is the sim twin's expert"),
    (["env.arm=panda", "init_from={start_panda}"], "trained for the panda arm and this robot is modelled as ur5e"),
    (["robot.cameras={{front: {{type: opencv, index: '{video}', width: 64, height: 64}}}}"],
     "it saw front images of 32x32 and the robot's are 64x64"),
    (["robot_rl.success={classifier_64}"], "classifier was trained on front images of 64x64 and the robot's are 32x32"),
    (["policy=tanh_mlp", "policy.cameras=[]"], r"policy.obs_keys=\['state', 'privileged'\] reads the simulator's task"),
    (["robot_rl.control_hz=0"], "robot_rl.control_hz must be > 0"),
], ids=["random_start", "success", "person", "arm", "image_size", "classifier_size", "task_state", "unpaced"])
def test_what_a_real_arm_cannot_run_is_refused_before_it_connects(tmp_path, files, ur_sdk, overrides, message):
    import rtde_control

    with pytest.raises(ValueError, match=message):
        ur_run(tmp_path, files, *[override.format(**files) for override in overrides])
    rtde_control.RTDEControlInterface.assert_not_called()
