"""``embodied-train robot=ur``: RL on a real arm from the CLI's config, driven through an autospec of the UR SDK
(ur_rtde) with a camera streaming a video file: a person resets each episode to TwinRL's proposals, a success
classifier is the reward, and settings a real arm cannot run are refused before anything connects."""

from unittest import mock

import numpy as np
import pytest
import torch

import embodied.runner.robot as robot_runner
from embodied.cli.train import compose_train_config
from embodied.data.reader import LeRobotDataset
from embodied.data.video import encode_video
from embodied.robot_rl.env import PersonReset
from embodied.runner.loops import make_trainer
from sims.arms import get_arm
from tests.test_robot_train import saved_classifier

torch.set_num_threads(1)
EPISODE_STEPS = 4


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


def ur_run_overrides(tmp_path, *extra: str) -> list[str]:
    """A pixel SAC run on a UR5e at 50 Hz: its front camera streams a red video, a classifier that never calls a
    frame solved is the reward, TwinRL mines the twin every 2 episodes."""
    frames = np.zeros((400, 32, 32, 3), np.uint8)
    frames[..., 0] = 200
    video = str(tmp_path / "front.mp4")
    encode_video(frames, video, fps=30)
    never = saved_classifier(tmp_path / "never_solved", -10.0)
    base = ["robot=ur", "robot.host=10.0.0.2",
            f"robot.cameras={{front: {{type: opencv, index: '{video}', width: 32, height: 32}}}}",
            "algo=sac", "policy=pixel_tanh", "policy.cameras=[front]", "env.image_size=[32,32]", "env.arm=ur5e",
            "env.num_envs=1", f"env.max_episode_steps={EPISODE_STEPS}", "robot_rl.control_hz=50",
            f"robot_rl.success={never}", "robot_rl.success_keys=false", "robot_rl.twinrl_every=2",
            "robot_rl.twinrl_evaluated=8", "robot_rl.twinrl_candidates=16", "experiment.eval_num_envs=4",
            "experiment.eval_episodes=4", "experiment.progress=false", "algo.learning_starts=6", "algo.batch_size=4",
            f"experiment.output_dir={tmp_path / 'run'}"]
    given = {override.partition("=")[0] for override in extra}  # an override of a key replaces the base's
    return [override for override in base if override.partition("=")[0] not in given] + list(extra)


def test_a_ur5e_trains_with_a_person_resetting_it_to_twinrls_proposals(tmp_path, ur_sdk, monkeypatch):
    control, _ = ur_sdk
    prompts, mined = [], []
    monkeypatch.setattr(robot_runner, "PersonReset", lambda describe: PersonReset(
        ask=prompts.append, clock=lambda: 0.0, describe=describe))
    real_mine = robot_runner.mine_failures
    monkeypatch.setattr(robot_runner, "mine_failures", lambda *args: mined.append(real_mine(*args)) or mined[-1])
    run = make_trainer(compose_train_config(ur_run_overrides(tmp_path, f"experiment.total_env_steps="
                                                                       f"{4 * EPISODE_STEPS}")))
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


class ScriptedKeys:
    """A terminal's key reader that returns ``typed[i]`` at its i-th read ('' after the script)."""

    def __init__(self, typed: list[str]):
        self.typed, self.reads, self.opened, self.closed = list(typed), 0, False, False

    def open(self):
        self.opened = True

    def close(self):
        self.closed = True

    def read(self, timeout: float = 0.0) -> str:
        self.reads += 1
        return self.typed.pop(0) if self.typed else ""


def test_a_key_press_overrides_the_success_classifier_for_one_step(tmp_path, ur_sdk, monkeypatch):
    """The classifier never calls a frame solved; 's' pressed during episode 1's second step ends it with reward 1,
    'f' typed with other keys is 'not solved' (as the classifier says), and the terminal is restored."""
    keys = ScriptedKeys(["", "", "xs", "", "f"])  # reads: episode 1's reset, step 1, step 2 (solved), ...
    monkeypatch.setattr(robot_runner, "KeyReader", lambda fd: keys)
    monkeypatch.setattr(robot_runner, "PersonReset", lambda describe: PersonReset(ask=lambda _: None,
                                                                                   describe=describe))
    run = make_trainer(compose_train_config(ur_run_overrides(
        tmp_path, "robot_rl.success_keys=true", "robot_rl.twinrl_every=0",
        f"experiment.total_env_steps={2 + EPISODE_STEPS}")))
    run.train()
    rewards = run.trainer.buffer.store["reward"][:2 + EPISODE_STEPS, 0].tolist()
    assert rewards == [0.0, 1.0] + [0.0] * EPISODE_STEPS  # episode 1 ended at the key; episode 2 ran to its limit
    assert run.trainer.counters["robot_episodes"] == 2 and keys.opened and keys.closed


@pytest.mark.parametrize("overrides, message", [
    (["robot_rl.success=twin"], "robot=ur has no task check"),
    (["robot_rl.person=scripted", "robot_rl.person_episodes=1"], "robot_rl.person=scripted is the sim twin's expert"),
    (["env.arm=panda"], "the robot is a ur5e but .* env.arm=panda: set env.arm=ur5e"),
    (["policy=tanh_mlp", "policy.cameras=[]"], r"policy.obs_keys=\['state', 'privileged'\] reads the simulator's task"),
    (["robot_rl.control_hz=0"], "robot_rl.control_hz must be > 0"),
], ids=["success", "person", "arm", "task_state", "unpaced"])
def test_what_a_real_arm_cannot_run_is_refused_before_it_connects(tmp_path, ur_sdk, overrides, message):
    import rtde_control

    with pytest.raises(ValueError, match=message):
        make_trainer(compose_train_config(ur_run_overrides(tmp_path, *overrides)))
    rtde_control.RTDEControlInterface.assert_not_called()
