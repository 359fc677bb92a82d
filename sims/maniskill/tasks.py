"""The ManiSkill3 tasks the adapter exposes: environment id and language instruction per task name."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ManiSkillTask:
    """A ManiSkill3 task: its registered id and the instruction our language-conditioned policies read."""

    env_id: str
    instruction: str


TASKS = {
    "PickCube": ManiSkillTask("PickCube-v1", "pick up the red cube and move it to the green goal"),
    "PushCube": ManiSkillTask("PushCube-v1", "push the cube to the goal region"),
    "StackCube": ManiSkillTask("StackCube-v1", "stack the red cube on the green cube"),
    "PegInsertionSide": ManiSkillTask("PegInsertionSide-v1", "insert the peg into the hole from the side"),
    "PushT": ManiSkillTask("PushT-v1", "push the T-shaped block onto the T-shaped goal"),
}

# Our controller names -> ManiSkill control modes (ManiSkill's gripper command is -1 closed, +1 open, like ours).
CONTROL_MODES = {
    "joint_delta": "pd_joint_delta_pos",
    "ee_delta_pos": "pd_ee_delta_pos",
    "ee_delta_pose": "pd_ee_delta_pose",
}


def resolve(task: str, controller: str) -> tuple[ManiSkillTask, str]:
    """The task entry and ManiSkill control mode for our names, or a ValueError naming the choices."""
    if task not in TASKS:
        raise ValueError(f"unknown ManiSkill task {task!r}; available with backend=maniskill: {sorted(TASKS)}")
    if controller not in CONTROL_MODES:
        raise ValueError(f"controller {controller!r} has no ManiSkill control mode; use one of {sorted(CONTROL_MODES)}")
    return TASKS[task], CONTROL_MODES[controller]
