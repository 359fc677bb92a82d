"""A scripted pick-and-place for LIBERO tasks that pick their first object of interest and drop it over the second
(libero_object: "pick up the X and place it in the basket"), acting from the observation alone."""

from __future__ import annotations

import numpy as np
import torch

# (offset of the tool target from the object (o) or the goal (g) at episode start, gripper, steps at most)
PHASES = (
    ("o", (0.0, 0.0, 0.12), -1.0, 60),  # above the object, open
    ("o", (0.0, 0.0, 0.0), -1.0, 40),  # down to it
    ("o", None, 1.0, 15),  # close where the tool is
    ("o", (0.0, 0.0, 0.25), 1.0, 40),  # lift
    ("g", (0.0, 0.0, 0.25), 1.0, 60),  # over the goal
    ("g", (0.0, 0.0, 0.12), 1.0, 30),  # lower
    ("g", None, -1.0, 20),  # open where the tool is
)
REACHED = 0.01  # m: a moving phase ends when the tool is this close to its target
GAIN = 1 / 0.03  # action per metre of error (OSC's full-scale delta is 0.05 m per step)


class LiberoPickPlaceExpert:
    """Per env: move over the first object of interest, grasp it, carry it over the second one and let go.

    Reads ``state[:, :3]`` (tool position) and ``privileged`` (the two objects' positions, ``sims.libero.env``);
    call ``act(obs)`` after every reset or step: envs at elapsed step 0 start over.
    """

    def __init__(self, num_envs: int):
        self.phase = np.zeros(num_envs, dtype=np.int64)
        self.phase_steps = np.zeros(num_envs, dtype=np.int64)
        self.anchor = np.zeros((num_envs, 2, 3))  # object and goal positions at the episode's start
        self.hold = np.zeros((num_envs, 3))  # where the tool was when a gripper phase began

    def act(self, obs: dict) -> torch.Tensor:
        """Actions [N, 7] for the observations ``obs`` of a libero env."""
        tool = obs["state"][:, :3].cpu().numpy().astype(np.float64)
        objects = obs["privileged"].cpu().numpy().astype(np.float64).reshape(-1, 2, 3)
        fresh = obs["elapsed"].cpu().numpy() == 0
        self.anchor[fresh], self.phase[fresh], self.phase_steps[fresh] = objects[fresh], 0, 0
        actions = np.zeros((tool.shape[0], 7))
        for i in range(tool.shape[0]):
            actions[i] = self._act_one(i, tool[i])
        return torch.as_tensor(actions, dtype=torch.float32)

    def _act_one(self, i: int, tool: np.ndarray) -> np.ndarray:
        phase = min(self.phase[i], len(PHASES) - 1)
        frame, offset, gripper, limit = PHASES[phase]
        if offset is None:
            if self.phase_steps[i] == 0:
                self.hold[i] = tool
            target = self.hold[i]
            done = self.phase_steps[i] + 1 >= limit
        else:
            target = self.anchor[i, 0 if frame == "o" else 1] + offset
            done = np.linalg.norm(target - tool) < REACHED or self.phase_steps[i] + 1 >= limit
        self.phase_steps[i] += 1
        if done:
            self.phase[i], self.phase_steps[i] = phase + 1, 0
        move = np.clip((target - tool) * GAIN, -1.0, 1.0)
        return np.concatenate([move, np.zeros(3), [gripper]])
