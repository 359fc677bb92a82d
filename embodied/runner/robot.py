"""Training on a robot (``embodied-train robot=<name> algo=sac``): SAC through the actor-learner loop on the robot
behind the safety guard (``embodied.robot_rl``), every step recorded, a checkpoint at each episode's end.

The learner is an ``OffPolicyTrainer`` (policy, critics, replay buffer, checkpoints; its simulated env gives the specs
and the final evaluation). Each ended episode prints one line and writes ``robot/*`` tensorboard scalars. Ctrl-C is
an e-stop: the arm holds and disconnects, the ended episodes stay saved, and ``resume=true`` goes on from the last.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from embodied.config.schema import TrainConfig
from embodied.deploy.mapping import ActionMapper, robot_kinematics
from embodied.deploy.recorder import EpisodeRecorder
from embodied.deploy.session import make_observer
from embodied.deploy.rate import period_stats
from embodied.robot_rl.actor_learner import EPISODES, ActorLearnerReport, run_actor_learner
from embodied.robot_rl.env import RobotEnv
from embodied.robot_rl.intervention import Intervention
from embodied.runner.logger import RunLogger
from embodied.runner.offpolicy import OffPolicyTrainer
from real_robot import make_robot
from real_robot.errors import SafetyStop
from real_robot.robot import IMAGE_PREFIX
from real_robot.safety import SafetyGuard, as_limits
from real_robot.teleop import make_device

log = logging.getLogger("embodied-train")
OWN_SUCCESS_WINDOW = 20  # unassisted episodes in the rolling success rate each episode's line shows


class RobotRLRun:
    """One training run on the robot of ``cfg.robot``; ``train()`` returns the final evaluation's metrics."""

    resumable = True

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.trainer = OffPolicyTrainer(cfg)  # validates cfg, robot settings included; resume=true loads here
        self.robot = make_robot(dict(cfg.robot))
        policy_cameras = list(getattr(self.trainer.policy, "cameras", []))
        has = [key[len(IMAGE_PREFIX):] for key in self.robot.observation_features if key.startswith(IMAGE_PREFIX)]
        missing = [camera for camera in policy_cameras if camera not in has]
        if missing:  # before connecting: the arm never moves for a policy it cannot feed
            raise ValueError(f"the policy reads cameras {missing} that this {self.robot.robot_type} robot does not "
                             f"have (it has {has}): add them, e.g. robot.cameras=[{','.join(missing)}] on the twin")
        if self.robot.robot_type != "sim_twin":
            raise ValueError(f"robot={self.robot.robot_type}: training on a real arm needs a success source that reads "
                             "its cameras (embodied.robot_rl.success); the CLI runs the sim twin only for now")
        self.summary_path: str | None = None
        self._own: list[bool] = []  # the policy's own (unassisted) episode outcomes

    @property
    def output_dir(self) -> str:
        return self.trainer.output_dir

    def _robot_env(self, robot) -> RobotEnv:
        """The connected ``robot`` behind the guard as a one-world env: the twin's task check as success, the
        person's device when configured, every step recorded."""
        cfg, r = self.cfg, self.cfg.robot_rl
        kinematics = robot_kinematics(robot)
        guard = SafetyGuard(robot, as_limits(r.safety), control_dt=1.0 / robot.control_hz,
                            forward_kinematics=kinematics.tool_position)
        instruction = robot.policy_observation()["instruction"][0]
        observe = make_observer(robot, r.control_hz or robot.control_hz,
                                list(getattr(self.trainer.policy, "cameras", [])), instruction, kinematics)
        record = r.record or os.path.join(self.output_dir, "robot_data")
        recorder = EpisodeRecorder(record, r.control_hz or robot.control_hz, f"embodied_train_{robot.arm.name}",
                                   append=cfg.resume)
        env = RobotEnv(robot, guard, ActionMapper(cfg.env.controller, kinematics), observe,
                       lambda robot_obs: robot.task_success, self.trainer.env.max_episode_steps, instruction,
                       control_hz=r.control_hz or None, recorder=recorder)
        if r.person_episodes:
            device = make_device({"type": r.person})
            device.connect()
            env.intervention = Intervention(device, cfg.env.controller, lambda step, robot_obs: (
                env.episodes <= r.person_episodes and step >= r.person_after_step))
        return env

    def train(self) -> dict:
        """Train for ``experiment.total_env_steps`` robot steps in all (a resumed run counts its earlier ones), then
        evaluate the policy in simulation and save it; ``{"interrupted_at": episode}`` after an e-stop."""
        trainer, x = self.trainer, self.cfg.experiment
        logger = RunLogger(self.output_dir)
        remaining = x.total_env_steps - trainer.counters["env_steps"]
        stopped = None
        self.robot.connect()
        env = None
        try:
            env = self._robot_env(self.robot)
            env.guard.install_sigint()  # Ctrl-C: the arm holds and disconnects, the ended episodes stay saved
            log.info(f"training on {self.robot.robot_type} ({self.cfg.robot.get('task', '')}): {remaining} robot "
                     f"steps from episode {trainer.counters.get(EPISODES, 0) + 1}")
            run_actor_learner(trainer, env, max(remaining, 0), seed=x.seed + trainer.counters.get(EPISODES, 0),
                              on_episode=lambda report: self._episode_ended(report, env, logger))
        except SafetyStop as stop:
            stopped = stop
            log.info(f"stopped safely ({stop}): the arm holds; episodes up to {trainer.counters.get(EPISODES, 0)} "
                     "are saved and resume=true goes on from there")
        finally:
            if env is not None:
                env.guard.restore_sigint()
                if env.intervention is not None:
                    env.intervention.device.disconnect()
            if self.robot.is_connected:
                self.robot.disconnect()
        final = trainer.conclude(logger, stopped is not None, sft_steps=0)
        self.summary_path = trainer.summary_path
        trainer.env.close()
        return final

    def _episode_ended(self, report: ActorLearnerReport, env: RobotEnv, logger: RunLogger) -> None:
        """One line and the ``robot/*`` scalars per saved episode."""
        success, assisted = report.episode_successes[-1], report.episode_assisted[-1]
        if not assisted:
            self._own.append(success)
        own = float(np.mean(self._own[-OWN_SUCCESS_WINDOW:])) if self._own else float("nan")
        timing = period_stats(env.loop_periods_ms) if env.loop_periods_ms else {}
        counters = self.trainer.counters
        scalars = {"success": float(success), "assisted": float(assisted), "own_success_last_20": own,
                   "intervention_rate": env.intervention_rate, "updates": counters.get("updates", 0)} | timing
        logger.scalars("robot", scalars, counters["env_steps"])
        loop = f"; loop p50/p99 {timing['period_p50_ms']:.1f}/{timing['period_p99_ms']:.1f} ms" if timing else ""
        log.info(f"episode {counters[EPISODES]}: {'success' if success else 'failure'}"
                 f"{' (person helped)' if assisted else ''}; own success over the last {OWN_SUCCESS_WINDOW} "
                 f"unassisted {own:.2f}; person drove {100 * env.intervention_rate:.1f}% of steps; "
                 f"{counters['env_steps']} steps, {counters.get('updates', 0)} updates{loop}")
