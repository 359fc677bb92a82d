"""A robot as an RL environment: one world behind the safety guard, on the batched env API.

The policy acts in the controller space it was trained with (``ActionMapper``), every command passes the
``SafetyGuard``, and the observation is the simulator's own layout (``ObservationBuilder``, or the sim twin's own
observation). The twin resets its scene itself; on a real arm a person resets it, prompted in the terminal and
timed, while the arm holds. Success comes from a callable on the robot observation (the twin's task check, a
classifier or a key press); the reward is that success (hardware has no dense reward). A person may take over
(``Intervention``): their command replaces the policy's action and passes the same guard; ``info`` flags those steps
(``intervened``) and carries the action every step actually executed (``executed_action``), so a learner stores
what the arm did. Every step can be recorded to a LeRobot dataset (with a ``success`` column, the verdict on each
frame's observation, and an ``intervention`` one when a person can take over), one episode saved per reset.
"""

from __future__ import annotations

import os
import time
from typing import Callable

import numpy as np
import torch

from embodied.deploy.rate import FixedRate
from embodied.robot_rl.intervention import Intervention
from real_robot.terminal import KeyReader
from sims.api import ActionSpec, BatchedEnv, ObservationSpec, StepResult

SuccessSource = Callable[[dict], bool]  # robot observation -> whether the task is solved now


class NonFiniteAction(RuntimeError):
    """A NaN or infinite action reached the robot env: the guard held the arm instead, and the run stops."""


def ask_on_terminal(message: str, stopped: Callable[[], bool] = lambda: False, fd: int = 0) -> bool:
    """Show ``message`` and wait for Enter on ``fd`` (stdin), ignoring what was typed before it appeared (an early
    Enter must not start an episode on a scene nobody reset); False, unanswered, as soon as ``stopped()``. EOFError
    when the input has ended (nobody can answer)."""
    if os.isatty(fd):
        import termios

        termios.tcflush(fd, termios.TCIFLUSH)
    print(message, end="", flush=True)
    typed_in = KeyReader(fd)  # not opened: the terminal stays in its own mode (echo, Enter)
    while not stopped():
        typed = typed_in.read(0.1)
        if typed is None:
            raise EOFError("the terminal's input ended: a person must answer the reset prompt")
        if "\n" in typed or "\r" in typed:
            return True
    return False


class PersonReset:
    """Between episodes on a real arm: hold, ask a person to reset the scene, and return the seconds it took.

    ``describe``: reset id -> the object poses to set up (TwinRL's proposals), "" for any scene; None: any scene.
    """

    def __init__(self, ask: Callable[[str], object] = ask_on_terminal, clock: Callable[[], float] = time.monotonic,
                 describe: Callable[[int], str] | None = None):
        self.ask, self.clock, self.describe = ask, clock, describe

    def __call__(self, robot, episode: int, reset_id: int = 0) -> float:
        """Ask for the scene of ``episode`` (counted from 1) while the robot holds; the seconds the person took."""
        robot.hold()
        start = self.clock()
        poses = self.describe(reset_id) if self.describe else ""  # "": a scene of the person's choosing
        target = f" to: {poses}" if poses else ""
        self.ask(f"episode {episode}: reset the scene{target}; then press Enter (the robot holds) ")
        return self.clock() - start


def command_period(robot, control_hz: float | None) -> float:
    """Seconds between two commands: the twin's own (its simulated time per command, whatever the loop's rate), or
    a real arm's 1 / ``control_hz``, which it must have."""
    twin_hz = getattr(robot, "control_hz", None) if robot.robot_type == "sim_twin" else None
    if twin_hz is None and control_hz is None:
        raise ValueError(f"a {robot.robot_type} robot needs control_hz: the loop's rate is its command period")
    return 1.0 / (twin_hz or control_hz)


def check_guard_period(robot, guard, control_hz: float | None) -> None:
    """ValueError unless the guard limits velocity over the robot's real command period (``command_period``)."""
    period = command_period(robot, control_hz)
    if abs(guard.control_dt - period) > 1e-9:
        raise ValueError(f"the safety guard's control_dt is {guard.control_dt:g} s but the robot is commanded every "
                         f"{period:g} s: build the guard with control_dt={period:g}")


class RobotEnv(BatchedEnv):
    """A connected robot behind ``guard`` as a batched env of one world (see the module docstring).

    ``observe``: robot observation -> the policy's observation (a batch of one, torch); ``control_hz``: hold each
    step to this rate (a real arm must set it; the twin may run as fast as commands return, on its own simulated
    clock); ``recorder``: an ``EpisodeRecorder`` or None.
    """

    def __init__(self, robot, guard, mapper, observe: Callable[[dict], dict], success: SuccessSource,
                 max_episode_steps: int, instruction: str = "", person_reset: PersonReset | None = None,
                 control_hz: float | None = None, recorder=None, terminate_on_success: bool = True,
                 intervention: Intervention | None = None):
        if not robot.is_connected:
            raise ValueError(f"RobotEnv needs a connected robot: call {type(robot).__name__}.connect() first")
        if guard.robot is not robot:
            raise ValueError("the safety guard must wrap the robot the env drives")
        if control_hz is not None and not control_hz > 0:
            raise ValueError(f"control_hz must be > 0 or None, got {control_hz}")
        check_guard_period(robot, guard, control_hz)
        self.robot, self.guard, self.mapper, self.observe, self.success = robot, guard, mapper, observe, success
        self.instruction, self.control_hz, self.recorder = instruction, control_hz, recorder
        self.intervention = intervention
        self.steps_taken = self.intervened_steps = 0
        self.periods_ms: list[float] = []  # control-loop periods of the ended episodes (at control_hz)
        self._queued_resets: list[tuple[int, int]] = []  # (seed, reset id) of the next episodes
        self._seed_of_queued: dict[int, int] = {}  # reset id -> its seed, for a queued id about to start
        self.person_reset = person_reset or PersonReset()
        self.reset_seconds: list[float] = []  # how long each person reset took (the twin's take no time)
        self.episodes = 0
        self._robot_obs = guard.observe()
        self._obs = self._numpy(observe(self._robot_obs))
        first = self._obs
        cameras = tuple(first.get("rgb", {}))
        height, width = first["rgb"][cameras[0]].shape[1:3] if cameras else (0, 0)
        observation_spec = ObservationSpec(state_dim=first["state"].shape[1],
                                           privileged_dim=first["privileged"].shape[1], cameras=cameras,
                                           image_height=height, image_width=width)
        spec = mapper.controller.action_spec
        super().__init__(1, ActionSpec(spec.dim, spec.low, spec.high, spec.names), observation_spec,
                         max_episode_steps, terminate_on_success=terminate_on_success, autoreset=True)
        self._engaged = self._solved = False
        self._gripper: float | None = None  # the opening last sent; an episode starts from the measured one
        self._rate: FixedRate | None = None
        self._executed = np.zeros((1, 1, self.action_spec.dim), np.float32)  # this chunk's executed actions
        self._intervened = np.zeros((1, 1), bool)
        self._chunk_step = 0

    def queue_resets(self, seed: int, reset_ids) -> None:
        """Start the next episodes from the scenes of (``seed``, each reset id) (TwinRL's proposals), then from fresh
        ids of the env's own seed again."""
        self._queued_resets.extend((int(seed), int(i)) for i in reset_ids)

    def next_reset_ids(self, count: int) -> np.ndarray:
        """Queued reset ids first, then fresh ones."""
        queued = [self._queued_resets.pop(0) for _ in range(min(count, len(self._queued_resets)))]
        self._seed_of_queued.update({reset_id: seed for seed, reset_id in queued})
        ids = np.array([reset_id for _, reset_id in queued], np.int64)
        return np.concatenate([ids, super().next_reset_ids(count - len(ids))])

    @property
    def loop_periods_ms(self) -> list[float]:
        """The control loop's measured periods so far, the open episode's included (runs at ``control_hz`` only)."""
        rate = self._rate  # read once: the actor thread may end the episode meanwhile
        return self.periods_ms + (rate.periods_ms if rate is not None else [])

    @property
    def intervention_rate(self) -> float:
        """The fraction of steps so far in which a person had control (0 before any step)."""
        return self.intervened_steps / max(self.steps_taken, 1)

    def step(self, action):
        """``BatchedEnv.step``; ``info`` adds ``executed_action`` [1, A] and ``intervened`` [1]."""
        obs, reward, terminated, truncated, info = super().step(action)
        info["executed_action"], info["intervened"] = info["executed_action"][:, 0], info["intervened"][:, 0]
        return obs, reward, terminated, truncated, info

    # ------------------------------------------------------------------------------------ backend hooks
    def _reset_worlds(self, env_ids: np.ndarray, rngs: list[np.random.Generator]) -> None:
        self._end_episode()
        reset_id = int(self.reset_ids[env_ids[0]])
        seed = self._seed_of_queued.pop(reset_id, self._seed)
        if not self.robot.reset_scene(seed, reset_id):  # the twin: the scene of (seed, reset id)
            self.reset_seconds.append(self.person_reset(self.robot, self.episodes + 1, reset_id))
        self.episodes += 1
        if self.intervention is not None:
            self.intervention.start_episode()
        if hasattr(self.observe, "reset"):
            self.observe.reset()  # velocities and the step counter restart
        self.guard.engage()  # gripper force cap and watchdog for the new episode
        self._engaged = True
        self._gripper = None
        self._rate = FixedRate(self.control_hz) if self.control_hz else None
        self._read()
        self._solved = bool(self.success(self._robot_obs))  # the verdict on the observation a frame shows

    def _advance(self, actions: np.ndarray, env_ids: np.ndarray) -> None:
        action, q = actions[0], self._robot_obs["joint_positions"]
        if self._gripper is None:
            self._gripper = float(self._robot_obs["gripper"][0])
        person = None if self.intervention is None else self.intervention.action(self.robot, self._robot_obs,
                                                                                  int(self._elapsed[0]))
        command = action if person is None else np.clip(person, self.action_spec.low, self.action_spec.high)
        sent = self.guard.step(self.mapper(command, q, self._gripper), self._robot_obs)  # a non-finite one: held
        if not np.isfinite(command).all():  # a diverged policy (or device) ends the run, as in embodied-deploy
            raise NonFiniteAction(f"{'the person' if person is not None else 'the policy'} produced a non-finite "
                                  f"action {np.asarray(command).tolist()}; the arm holds")
        self._gripper = float(sent[-1])
        executed = self.mapper.sent_to_action(sent, q)
        self._executed[0, self._chunk_step], self._intervened[0, self._chunk_step] = executed, person is not None
        self._chunk_step += 1
        self.steps_taken += 1
        self.intervened_steps += person is not None
        if self.recorder is not None:  # the frame: the observation acted on, and the verdict on it
            flags = {"success": self._solved}
            if self.intervention is not None:
                flags["intervention"] = person is not None
            self.recorder.add(self._obs["state"][0], self._robot_obs, executed, sent, command, self.instruction,
                              flags)
        if self._rate is not None:
            self._rate.wait()
        self._read()

    def _observe(self) -> dict:
        return dict(self._obs)  # a copy: the base class adds "elapsed" to it

    def _evaluate(self) -> StepResult:
        self._solved = solved = bool(self.success(self._robot_obs))
        return StepResult(reward=np.array([float(solved)], np.float32), success=np.array([solved]),
                          failed=np.zeros(1, bool))

    # --------------------------------------------------------------------------------------- internals
    def _run_chunk(self, actions: np.ndarray):
        horizon = actions.shape[1]
        self._executed = np.zeros((1, horizon, self.action_spec.dim), np.float32)
        self._intervened = np.zeros((1, horizon), bool)
        self._chunk_step = 0
        obs, rewards, terminated, truncated, info = super()._run_chunk(actions)
        if not self.autoreset and bool((terminated | truncated).any()):
            self._end_episode()  # hold the arm and save the episode now: the next reset may be a while
        info["executed_action"] = torch.from_numpy(self._executed)  # [1, T, A]; zeros after the episode ended
        info["intervened"] = torch.from_numpy(self._intervened)  # [1, T]
        return obs, rewards, terminated, truncated, info

    def _read(self) -> None:
        self._robot_obs = self.guard.observe()
        self._obs = self._numpy(self.observe(self._robot_obs))

    def _numpy(self, obs: dict) -> dict:
        """The policy observation as the backend hooks return it: numpy, with an empty task state on hardware."""
        out = {"state": obs["state"].numpy(), "instruction": list(obs.get("instruction") or [self.instruction])}
        privileged = obs.get("privileged")
        out["privileged"] = privileged.numpy() if privileged is not None else np.zeros((1, 0), np.float32)
        if "rgb" in obs:
            out["rgb"] = {camera: image.numpy() for camera, image in obs["rgb"].items()}
        return out

    def _end_episode(self) -> None:
        """Hold the arm, then save the open episode's frames (between episodes, and on close)."""
        if self._rate is not None:
            self.periods_ms += self._rate.periods_ms
            self._rate = None
        try:
            if self._engaged:
                self.guard.disengage()  # first: a failing save must not leave the watchdog and the arm running
                self._engaged = False
        finally:
            if self.recorder is not None:
                self.recorder.end_episode()

    def close(self) -> None:
        """Hold and save the open episode; the robot stays connected (its owner disconnects it). Stepping again
        needs a reset."""
        self._needs_reset = True
        self._end_episode()
