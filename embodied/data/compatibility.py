"""Check a dataset against the env and policy that will train on it, before anything trains: the features the
policy reads, their shapes, the action space (controller) the actions were recorded in, and the recording rate.

Each mismatch is one line naming the dataset, the feature, both values and the fix.
"""

from __future__ import annotations

from embodied.data import lerobot_format as fmt
from embodied.data.batches import IMAGE_PREFIX
from embodied.data.demos import env_features
from policies.base import CAMERA_INPUT

FEATURE_OF_INPUT = {"state": "observation.state", "privileged": "observation.environment_state"}


def feature_of_input(name: str) -> str:
    """Dataset feature of a policy input: ``state``, ``privileged`` or ``rgb/<camera>``."""
    if name.startswith(CAMERA_INPUT):
        return IMAGE_PREFIX + name[len(CAMERA_INPUT):]
    return FEATURE_OF_INPUT[name]


def missing_feature_fix(name: str) -> str:
    """How to get a feature a dataset lacks (or to stop needing it)."""
    if name.startswith(IMAGE_PREFIX):
        camera = name[len(IMAGE_PREFIX):]
        return f"record that camera (embodied-record-demos --cameras {camera}) or leave it out of policy.cameras"
    if name == "observation.environment_state":
        return "train on proprioception only (policy.obs_keys=[state]) or record with embodied-record-demos"
    if name == "action":
        return "a dataset without actions cannot train a policy: record one with embodied-record-demos"
    return "record the dataset with this env (embodied-record-demos --task <task>)"


def controller_with_actions(names: list) -> str | None:
    """The MuJoCo controller whose action names are ``names`` (None if none is)."""
    from sims.mujoco.controllers import CONTROLLERS

    return next((c for c, make in CONTROLLERS.items() if list(make().action_spec.names) == list(names)), None)


def action_problems(path: str, recorded: dict, expected: dict) -> list[str]:
    """The action space: same size and, where the dataset names its dimensions, the same names."""
    names, wanted = recorded.get("names"), expected["names"]
    same_shape = list(recorded["shape"]) == list(expected["shape"])
    if same_shape and (not names or list(names) == list(wanted)):
        return []
    controller = controller_with_actions(names) if names else None
    fix = (f"set env.controller={controller}" if controller else
           "train in the env and controller the dataset was recorded with")
    return [f"{path}: action is {list(recorded['shape'])}-D {names or ''} but the env's controller takes "
            f"{list(expected['shape'])}-D {list(wanted)}: {fix}"]


def arm_of(robot_type: str | None) -> str | None:
    """The arm model a dataset of ours names at the end of its ``robot_type`` (``embodied_sim_ur5e``), or None."""
    from sims.arms import ARMS

    if not robot_type or not robot_type.startswith("embodied_"):
        return None
    return next((name for name in ARMS.names() if robot_type.endswith(f"_{name}")), None)


def dataset_problems(path: str, env, policy) -> list[str]:
    """Every mismatch between the dataset at ``path`` and what ``env`` and ``policy`` expect, one line each."""
    info = fmt.load_info(path)
    features, expected = info["features"], env_features(env)
    problems = []
    needed = ["action", *[feature_of_input(name) for name in policy.observation_inputs()]]
    for name in needed:
        if name not in features:
            problems.append(f"{path}: no feature {name!r}, which the policy needs: {missing_feature_fix(name)}")
        elif name == "action":
            problems += action_problems(path, features[name], expected[name])
        elif name in expected and list(features[name]["shape"]) != list(expected[name]["shape"]):
            problems.append(f"{path}: {name} has shape {list(features[name]['shape'])} but the env gives "
                            f"{list(expected[name]['shape'])}: record the dataset in this env and "
                            f"{'image size (env.image_size)' if name.startswith(IMAGE_PREFIX) else 'task'}, "
                            "or train in the one it was recorded in")
    recorded_arm = arm_of(info.get("robot_type"))
    env_arm = getattr(getattr(env, "arm", None), "name", None)
    if recorded_arm and env_arm and recorded_arm != env_arm:
        problems.append(f"{path}: recorded with the {recorded_arm} arm (robot_type {info['robot_type']!r}) but "
                        f"env.arm={env_arm}: train with env.arm={recorded_arm}, or record with this arm")
    control_hz = getattr(env, "control_hz", None)
    if control_hz and abs(float(info["fps"]) - float(control_hz)) > 1e-6:
        problems.append(f"{path}: recorded at {float(info['fps']):g} fps but the env steps at {float(control_hz):g} "
                        f"Hz, so its per-step actions would play {float(control_hz) / float(info['fps']):.2f}x as "
                        f"fast: record at the env's rate (embodied-teleop fps={float(control_hz):g}, "
                        "embodied-record-demos records at it)")
    return problems


def check_datasets(paths: list[str], env, policy) -> None:
    """Raise ValueError listing every mismatch of the datasets with the env and policy (nothing trained yet)."""
    problems = []
    for path in dict.fromkeys(paths):
        try:
            problems += dataset_problems(path, env, policy)
        except FileNotFoundError:
            problems.append(f"{path}: no LeRobot dataset there (no meta/info.json); record one with "
                            "embodied-record-demos")
    if problems:
        raise ValueError("dataset does not fit this env and policy:\n  " + "\n  ".join(problems))
