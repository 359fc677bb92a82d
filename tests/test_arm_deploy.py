"""Deployment on 6- and 7-joint arms: the drivers receive their arm's joint targets inside its limits, and a policy
that does not fit the robot (arm, controller, sizes) is refused before anything connects."""

from unittest import mock

import numpy as np
import pytest
import torch

from embodied.config.schema import TrainConfig
from embodied.deploy.config import DeployConfig
from embodied.deploy.session import run_deployment
from embodied.runner.builders import build_env, build_policy
from real_robot.robot import Robot
from sims.arms import get_arm

torch.set_num_threads(1)


def saved_policy(tmp_path, arm: str, controller: str = "ee_delta_pos") -> str:
    """An untrained proprioception-only MLP built by the trainer's own builder for ``arm`` (saves trained_with)."""
    cfg = TrainConfig()
    cfg.env.arm, cfg.env.controller, cfg.env.num_envs = arm, controller, 2
    cfg.policy.obs_keys, cfg.policy.hidden = ["state"], [16]
    policy = build_policy(cfg, build_env(cfg, 2, autoreset=True), seed=0)
    path = str(tmp_path / f"{arm}_{controller}")
    policy.save_pretrained(path)
    return path


def deploy(policy_path: str, robot: dict, **overrides):
    cfg = DeployConfig(policy_path=policy_path, robot=robot, max_steps=6, stop_on_success=False, estop_keys="",
                       **overrides)
    return run_deployment(cfg)[-1]


def test_a_ur5e_policy_streams_six_joint_servoj_targets_inside_the_ur5e_limits(tmp_path, monkeypatch):
    import rtde_control
    import rtde_receive

    ur = get_arm("ur5e")
    control = mock.create_autospec(rtde_control.RTDEControlInterface, instance=True)
    receive = mock.create_autospec(rtde_receive.RTDEReceiveInterface, instance=True)
    receive.getActualQ.return_value = list(ur.home)
    receive.isConnected.return_value = True
    control.servoJ.return_value = True
    monkeypatch.setattr(rtde_control, "RTDEControlInterface", mock.Mock(return_value=control))
    monkeypatch.setattr(rtde_receive, "RTDEReceiveInterface", mock.Mock(return_value=receive))
    for controller in ("ee_delta_pos", "joint_delta"):
        control.servoJ.reset_mock()
        report = deploy(saved_policy(tmp_path, "ur5e", controller), {"type": "ur", "host": "10.0.0.2"})
        assert report.steps == 6 and control.servoJ.call_count == 6, report.outcome
        for call in control.servoJ.call_args_list:
            target = np.array(call.args[0])
            assert target.shape == (6,)
            assert (target >= ur.joint_low + 0.02 - 1e-9).all() and (target <= ur.joint_high - 0.02 + 1e-9).all()
            assert np.abs(target - ur.home).max() <= 0.075 + 1e-9  # the guard's step limit from where the arm is


def test_an_xarm6_policy_drives_six_servo_angles(tmp_path, monkeypatch):
    from xarm import wrapper

    xarm6 = get_arm("xarm6")
    arm = mock.create_autospec(wrapper.XArmAPI, instance=True)
    for name in ("motion_enable", "set_mode", "set_state", "set_gripper_enable", "set_gripper_speed",
                 "set_servo_angle_j", "set_gripper_position", "clean_error"):
        getattr(arm, name).return_value = 0
    arm.get_servo_angle.return_value = (0, list(xarm6.home) + [0.0])  # the SDK reports 7 angles on a 6-axis arm
    arm.axis = 6
    arm.get_gripper_position.return_value = (0, 850.0)
    monkeypatch.setattr(wrapper, "XArmAPI", mock.Mock(return_value=arm))
    report = deploy(saved_policy(tmp_path, "xarm6"), {"type": "xarm", "host": "192.168.1.200", "arm": "xarm6"})
    assert report.steps == 6 and arm.set_servo_angle_j.call_count == 7  # 6 commands, then the hold at episode end
    for call in arm.set_servo_angle_j.call_args_list:
        target = np.array(call.args[0])
        assert target.shape == (6,) and (target >= xarm6.joint_low).all() and (target <= xarm6.joint_high).all()
    with pytest.raises(ValueError, match="robot=xarm drives UFACTORY xArms"):
        deploy(saved_policy(tmp_path, "xarm6"), {"type": "xarm", "host": "x", "arm": "ur5e"})
    with pytest.raises(ValueError, match=r"has 6 axes; robot.arm=xarm7 has 7: set robot.arm=xarm6"):
        deploy(saved_policy(tmp_path, "xarm7"), {"type": "xarm", "host": "x"})  # the default model on an xArm 6


@pytest.mark.parametrize("robot, message", [
    ({"type": "ur", "host": "x", "arm": "panda"}, "robot=ur drives Universal Robots arms"),
    ({"type": "franka", "host": "x", "arm": "ur5e"}, "robot=franka drives the Panda"),
])
def test_a_driver_refuses_an_arm_model_of_another_make(robot, message):
    from real_robot import make_robot

    with pytest.raises(ValueError, match=message):
        make_robot(robot)


@pytest.mark.parametrize("trained, robot, overrides, message", [
    ("panda", {"arm": "ur5e"}, {}, "trained for the panda arm and this robot is modelled as ur5e"),
    ("ur5e", {"arm": "xarm6"}, {}, "trained for the ur5e arm and this robot is modelled as xarm6"),  # 6 joints too
    ("panda", {}, {"controller": "joint_delta"}, "trained with env.controller=ee_delta_pos and deployment drives "
                                                 "controller=joint_delta"),
])
def test_a_policy_that_does_not_fit_the_robot_is_refused_before_connecting(tmp_path, monkeypatch, trained, robot,
                                                                           overrides, message):
    path = saved_policy(tmp_path, trained)
    monkeypatch.setattr(Robot, "connect", lambda self: pytest.fail("connected to a robot the policy does not fit"))
    with pytest.raises(ValueError, match=message):
        deploy(path, {"type": "sim_twin", "task": "Reach", "cameras": []} | robot, **overrides)


def test_sizes_are_checked_for_policies_saved_without_what_they_were_trained_with(tmp_path, monkeypatch):
    path = saved_policy(tmp_path, "panda", "joint_delta")  # 8-D actions
    import json

    config_path = f"{path}/config.json"
    config = json.load(open(config_path))
    del config["trained_with"]  # a policy saved by an older version
    json.dump(config, open(config_path, "w"))
    monkeypatch.setattr(Robot, "connect", lambda self: pytest.fail("connected"))
    with pytest.raises(ValueError, match=r"commands 8-D actions but controller=joint_delta on the ur5e arm \(6 joints\) "
                                         r"takes 7-D"):
        deploy(path, {"type": "sim_twin", "task": "Reach", "cameras": [], "arm": "ur5e"}, controller="joint_delta")


def test_deployment_drives_the_policys_own_controller_by_default(tmp_path):
    report = deploy(saved_policy(tmp_path, "ur5e", "joint_delta"), {"type": "sim_twin", "task": "Reach", "cameras": [],
                                                                    "arm": "ur5e"})
    assert report.steps == 6 and report.outcome == "timeout"


def test_a_vla_reading_seven_joint_proprioception_is_refused_on_a_six_joint_arm(tmp_path, monkeypatch):
    from policies import make_policy

    vla = make_policy("vla", state_dim=19, action_dim=4, chunk_size=1, cameras=["front"],
                      vision={"name": "tiny"}, language={"name": "tiny"},
                      fusion={"hidden_size": 32, "layers": 1, "heads": 2, "intermediate_size": 64})
    vla.set_stats(torch.zeros(19), torch.ones(19), -torch.ones(4), torch.ones(4))
    vla.save_pretrained(str(tmp_path / "vla"))
    monkeypatch.setattr(Robot, "connect", lambda self: pytest.fail("connected"))
    with pytest.raises(ValueError, match="reads 19-D proprioception; the ur5e arm gives 17-D"):
        deploy(str(tmp_path / "vla"), {"type": "sim_twin", "task": "Reach", "cameras": ["front"], "arm": "ur5e"})


def test_an_sdk_that_cannot_reach_the_robot_is_one_connection_error_naming_the_host(tmp_path, monkeypatch):
    import rtde_control

    monkeypatch.setattr(rtde_control, "RTDEControlInterface", mock.Mock(side_effect=RuntimeError("read: End of file")))
    with pytest.raises(ConnectionError, match=r"could not connect to the ur robot at 10\.0\.0\.9 \(RuntimeError: "
                                              r"read: End of file\): check robot.host"):
        deploy(saved_policy(tmp_path, "ur5e"), {"type": "ur", "host": "10.0.0.9"})
