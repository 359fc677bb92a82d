"""LIBERO suites as a ``BatchedEnv`` (env.backend=libero): LeRobot's LIBERO observations, the suites' fixed states.

Reset id r of a suite with T tasks starts task ``r % T`` from its fixed initial state ``(r // T) % S`` (S: the
task's number of fixed states, 50 in the five standard suites), so an evaluation of 10 x T episodes runs every task
from its states 0..9, as LeRobot's evaluation does. The seed changes
nothing: LIBERO's initial states are fixed files. After each reset the arm holds still with its gripper open for 10
settle steps that are not part of the episode; the episode then runs at most the suite's step limit and ends on
success (reward 1 on success, else 0).

Observations are those of LeRobot's LIBERO env after its processor: ``state`` is 8-D (tool position, tool
axis-angle, finger positions), ``rgb`` holds ``image`` (agentview) and ``image2`` (wrist) turned 180 degrees, and
the 7-D action is robosuite's OSC pose delta in [-1, 1] with the gripper last (-1 open, +1 closed).
``privileged`` holds the positions of the task's objects of interest (robosuite's ``obj_of_interest``, zero
when one is a region), for scripted experts and state policies.

The suites run in this process and this venv, on the project's MuJoCo: robosuite steps one env at a time, so
worker processes pay off only with many cores, and one venv keeps the policy's observations free of copies. Each env
slot holds one robosuite env, rebuilt (0.5-1 s) when its next episode is of another task: in evaluation waves of
``num_envs`` a multiple of T a slot keeps its task; with autoreset, episodes end at different times and slots change
task.
"""

from __future__ import annotations

import numpy as np
import torch

from sims.api import BACKENDS, ActionSpec, BatchedEnv, ObservationSpec, StepResult
from sims.libero.suites import (ACTION_NAMES, CAMERAS, SETTLE_ACTION, SETTLE_STEPS, STATE_DIM,
                                LiberoTask, lerobot_state, load_suite, suite_max_steps, upright)

OBJECTS_OF_INTEREST = 2  # privileged holds this many object positions (LIBERO tasks name one or two)


def _blank_sensor(camera):
    """A stand-in for robosuite camera observable ``camera``'s sensor that draws nothing."""
    image = np.zeros(camera._data_shape, np.uint8)

    def blank(obs_cache: dict) -> np.ndarray:
        return image

    blank.__modality__ = camera.modality  # robosuite's @sensor mark
    return blank


def make_robosuite_env(task: LiberoTask, cameras: tuple, image_size: tuple):
    """The robosuite env of ``task`` that a slot holds: it renders exactly ``cameras`` (ours, at ``image_size``),
    none: no GL at all; soft resets; episode ends are the batched env's."""
    from libero.libero.envs.env_wrapper import ControlEnv

    height, width = image_size
    return ControlEnv(bddl_file_name=task.bddl_file, use_camera_obs=bool(cameras), has_offscreen_renderer=bool(cameras),
                      camera_names=[CAMERAS[c] for c in cameras], camera_heights=height, camera_widths=width,
                      ignore_done=True, hard_reset=False)


@BACKENDS.register("libero")
class LiberoEnv(BatchedEnv):
    """A LIBERO or LIBERO-PRO suite (``task="libero_spatial"``, or ``"libero_goal/3"`` for one task) on N env
    slots through the batched env contract; see the module docstring and ``sims.api``."""

    def __init__(self, task: str = "libero_spatial", num_envs: int = 1, controller: str = "ee_delta_pose",
                 reward_mode: str = "sparse", max_episode_steps: int | None = None, cameras=(), image_size=(256, 256),
                 autoreset: bool = True, terminate_on_success: bool = True, num_threads: int = 0,
                 domain: str = "sim", arm: str = "panda"):
        if controller != "ee_delta_pose":
            raise ValueError(f"backend=libero acts through robosuite's OSC pose delta (env.controller=ee_delta_pose), "
                             f"not {controller!r}: use env=libero")
        if reward_mode != "sparse":
            raise ValueError(f"backend=libero rewards success only (env.reward_mode=sparse), not {reward_mode!r}: "
                             "use env=libero")
        if arm != "panda" or domain != "sim":
            raise ValueError(f"backend=libero runs LIBERO's own Panda in its own scenes, not env.arm={arm!r} / "
                             f"env.domain={domain!r}")
        if num_threads > 1:
            raise ValueError(f"backend=libero steps its envs in this process; env.num_threads={num_threads} must be "
                             "0 or 1")
        unknown = [c for c in cameras if c not in CAMERAS]
        if unknown:
            raise ValueError(f"backend=libero has cameras {sorted(CAMERAS)} (agentview, wrist), not {unknown}")
        self.tasks: list[LiberoTask] = load_suite(task)
        self.cameras = tuple(cameras)
        self.image_size = tuple(int(s) for s in image_size)
        self.control_hz = 20.0
        observation_spec = ObservationSpec(STATE_DIM, 3 * OBJECTS_OF_INTEREST, self.cameras, *self.image_size)
        action_spec = ActionSpec(len(ACTION_NAMES), -1.0, 1.0, ACTION_NAMES)
        super().__init__(num_envs, action_spec, observation_spec,
                         max_episode_steps or suite_max_steps(self.tasks[0].suite),
                         terminate_on_success=terminate_on_success, autoreset=autoreset)
        self._slot_task = np.full(num_envs, -1, dtype=np.int64)
        self._slot_env: list = [None] * num_envs
        self._state = np.zeros((num_envs, STATE_DIM), dtype=np.float32)
        self._objects = np.zeros((num_envs, 3 * OBJECTS_OF_INTEREST), dtype=np.float32)
        self._rgb = {c: np.zeros((num_envs, *self.image_size, 3), dtype=np.uint8) for c in self.cameras}
        self._success = np.zeros(num_envs, dtype=bool)

    # ----------------------------------------------------------------- episodes
    def episode_task(self, reset_ids) -> list[LiberoTask]:
        """The task each reset id starts (id r: task r % T)."""
        return [self.tasks[int(r) % len(self.tasks)] for r in np.asarray(reset_ids).reshape(-1)]

    def _init_state(self, reset_id: int) -> tuple[int, np.ndarray]:
        """The task index and fixed initial state of reset id r: task r % T, its state (r // T) % S."""
        task = int(reset_id) % len(self.tasks)
        states = self.tasks[task].init_states
        return task, states[(int(reset_id) // len(self.tasks)) % len(states)]

    def _switch_slot(self, slot: int, task: int):
        """The robosuite env of ``slot``, rebuilt for ``task`` when the slot ran another task (0.5-1 s; keeping
        envs of other tasks around would hold 0.3 GB each, 0.9 GB with cameras)."""
        if self._slot_task[slot] != task:
            old, self._slot_env[slot], self._slot_task[slot] = self._slot_env[slot], None, -1
            if old is not None:
                old.close()
            self._slot_env[slot] = make_robosuite_env(self.tasks[task], self.cameras, self.image_size)
            self._slot_task[slot] = task
        return self._slot_env[slot]

    def _place(self, slot: int, task: int, snapshot: dict) -> dict:
        """Put ``slot`` in a MuJoCo state of ``task`` (``snapshot``: ``sim``, and to resume mid-episode the Panda
        gripper's command, the step count and the solver's warm start); returns robosuite's observation of it.

        A new episode starts with the gripper's command at 0, as after a hard reset: the soft reset keeps the last
        episode's, which would change how the fingers settle (the command ramps 0.25 per step).
        """
        env = self._switch_slot(slot, task)
        env.reset()  # soft: the sim's data are zeroed, the model is kept
        raw = env.set_init_state(snapshot["sim"])
        gripper = env.env.robots[0].gripper
        gripper.current_action = np.array(snapshot.get("gripper", np.zeros(gripper.dof)), dtype=np.float64)
        if "timestep" in snapshot:  # mid-episode: continue as the uninterrupted episode would
            env.env.timestep = int(snapshot["timestep"])
            env.env.sim.data._data.qacc_warmstart[:] = snapshot["warmstart"]  # the solver's start under contacts
            env.env.robots[0].controller.new_update = True  # the next goal starts from this state
        return raw

    def _settle(self, slot: int) -> dict:
        """LeRobot's settle steps (objects drop onto the table), rendering only for the last observation: the
        cameras' sensors draw nothing before it, and their sampling clocks run on as if they had."""
        env = self._slot_env[slot]
        cameras = [env.env._observables[f"{CAMERAS[c]}_image"] for c in self.cameras]
        sensors = [camera._sensor for camera in cameras]
        for camera in cameras:
            camera._sensor = _blank_sensor(camera)
        try:
            for _ in range(SETTLE_STEPS - 1):
                env.step(SETTLE_ACTION)
        finally:
            for camera, sensor in zip(cameras, sensors):
                camera._sensor = sensor
        raw, _, _, _ = env.step(SETTLE_ACTION)
        env.env.timestep = 0
        return raw

    def _store(self, slot: int, raw: dict) -> None:
        self._state[slot] = lerobot_state(raw)
        names = self._slot_env[slot].obj_of_interest[:OBJECTS_OF_INTEREST]
        positions = [raw.get(f"{name}_pos", np.zeros(3)) for name in names]
        positions += [np.zeros(3)] * (OBJECTS_OF_INTEREST - len(positions))
        self._objects[slot] = np.concatenate(positions)
        for camera, images in self._rgb.items():
            images[slot] = upright(raw[f"{CAMERAS[camera]}_image"])

    # ----------------------------------------------------------------- BatchedEnv hooks
    def _reset_worlds(self, env_ids, rngs) -> None:
        for slot in env_ids:
            task, state = self._init_state(self.reset_ids[slot])
            self._place(slot, task, {"sim": state})
            self._store(slot, self._settle(slot))
            self._success[slot] = False

    def _advance(self, actions: np.ndarray, env_ids: np.ndarray) -> None:
        for slot, action in zip(env_ids, actions):
            raw, _, success, _ = self._slot_env[slot].step(action.astype(np.float64))
            self._store(slot, raw)
            self._success[slot] = bool(success)

    def _observe(self) -> dict:
        obs = {"state": self._state.copy(), "privileged": self._objects.copy(),
               "instruction": [self.tasks[t].instruction for t in self._slot_task]}
        if self.cameras:
            obs["rgb"] = {camera: images.copy() for camera, images in self._rgb.items()}
        return obs

    def _evaluate(self) -> StepResult:
        return StepResult(self._success.astype(np.float32), self._success.copy(), np.zeros(self.num_envs, bool))

    def _get_world_state(self) -> dict:
        if any(env is None for env in self._slot_env):
            raise RuntimeError("call reset() before get_state(): the env has no episode yet")
        worlds = [{"sim": env.get_sim_state(), "gripper": env.env.robots[0].gripper.current_action,
                   "timestep": np.int64(env.env.timestep), "warmstart": env.env.sim.data._data.qacc_warmstart}
                  for env in self._slot_env]
        observed = {"task": self._slot_task, "success": self._success, "state": self._state, "objects": self._objects}
        observed |= {f"rgb_{c}": images for c, images in self._rgb.items()}
        return {"worlds": [{k: torch.from_numpy(np.array(v)) for k, v in w.items()} for w in worlds],
                "task_names": [self.tasks[t].name for t in self._slot_task]} | {
            key: torch.from_numpy(value.copy()) for key, value in observed.items()}

    def _set_world_state(self, state: dict) -> None:
        names = [self.tasks[t].name if 0 <= t < len(self.tasks) else None for t in state["task"].tolist()]
        if len(state["worlds"]) != self.num_envs or names != state["task_names"]:
            raise ValueError(f"the snapshot holds {len(state['worlds'])} envs of tasks {state['task_names']}, this env "
                             f"has {self.num_envs} of {self.tasks[0].suite}: restore it with the env.task and "
                             "env.num_envs it was taken with")
        for slot, (task, world) in enumerate(zip(state["task"].tolist(), state["worlds"])):
            self._place(slot, task, {key: value.numpy() for key, value in world.items()})
        for key, target in [("success", self._success), ("state", self._state), ("objects", self._objects)] + [
                (f"rgb_{c}", images) for c, images in self._rgb.items()]:
            target[:] = state[key].numpy()  # the observation as the step that led here returned it

    def close(self) -> None:
        """Close every robosuite env (their renderers included)."""
        for env in self._slot_env:
            if env is not None:
                env.close()
        self._slot_env = [None] * self.num_envs
        self._slot_task[:] = -1
