"""Training on a robot (``embodied-train robot=<name> algo=sac``): SAC through the actor-learner loop on the robot
behind the safety guard (``embodied.robot_rl``), every step recorded, a checkpoint at each episode's end.

The learner is an ``OffPolicyTrainer`` (policy, critics, replay buffer, checkpoints; its simulated env gives the specs
and the final evaluation). Success comes from the twin's task check or a saved success classifier; a person's device
may take over; TwinRL's failure mining may pick the next resets; ``robot_rl.eval_every`` evaluates the policy in
simulation on fixed scenes during the run. Each ended episode prints one line and writes ``robot/*`` tensorboard
scalars. Ctrl-C is an e-stop: the arm holds and disconnects, the ended episodes stay saved, and
``resume=true`` goes on from the last.
"""

from __future__ import annotations

import dataclasses
import logging
import os

import numpy as np

from embodied.config.schema import TrainConfig
from embodied.deploy.mapping import ActionMapper, refuse_mismatch, robot_kinematics
from embodied.deploy.recorder import EpisodeRecorder
from embodied.deploy.session import make_observer, refuse_unfed_policy, robot_cameras
from embodied.deploy.rate import period_stats
from embodied.robot_rl.actor_learner import EPISODES, ActorLearnerReport, run_actor_learner
from embodied.robot_rl.env import NonFiniteAction, PersonReset, RobotEnv, ask_on_terminal, command_period
from embodied.robot_rl.intervention import Intervention
from embodied.robot_rl.success import KeyOverride, SuccessClassifier, classifier_success
from embodied.robot_rl.twinrl import mine_failures
from embodied.rollout.evaluate import evaluate
from embodied.runner.builders import build_env
from embodied.runner.logger import RunLogger
from embodied.runner.offpolicy import OffPolicyTrainer
from policies.base import from_pretrained
from real_robot import make_robot
from real_robot.errors import SafetyStop
from real_robot.safety import SafetyGuard, as_limits
from real_robot.teleop import make_device
from real_robot.terminal import KeyReader

log = logging.getLogger("embodied-train")
MINING_SEED_OFFSET = 104_729  # TwinRL's mining scenes: away from the run's own seeds and the evaluation's
SUCCESS_KEYS_FD = 0  # stdin: the terminal where a person confirms or overrides the success classifier
OWN_SUCCESS_WINDOW = 20  # unassisted episodes in the rolling success rate each episode's line shows


class RobotRLRun:
    """One training run on the robot of ``cfg.robot``; ``train()`` returns the final evaluation's metrics."""

    resumable = True

    def __init__(self, cfg: TrainConfig):
        # a robot's reward is its success source's verdict, and an episode ends at success: the simulated env's expert
        # demonstrations (algo.demo_episodes) and the final evaluation are scored the same way, or one critic would
        # learn from a dense reward on the demonstrations beside the robot's sparse one
        if (cfg.env.reward_mode, cfg.env.terminate_on_success) != ("sparse", True):
            log.info(f"robot run: the simulated env's demonstrations and evaluation are scored as the robot is "
                     f"(success reward, episodes end at success): env.reward_mode={cfg.env.reward_mode} -> sparse, "
                     f"env.terminate_on_success={cfg.env.terminate_on_success} -> true")
        cfg.env.reward_mode, cfg.env.terminate_on_success = "sparse", True
        self.cfg = cfg
        self.trainer = OffPolicyTrainer(cfg)  # validates cfg, robot settings included; resume=true loads here
        try:
            self._check_before_connecting()
        except BaseException:
            self.trainer.env.close()
            raise
        self.summary_path: str | None = None
        self._own: list[bool] = []  # the policy's own (unassisted) episode outcomes
        self._mining_env = None  # the simulated env TwinRL's failure mining evaluates in, once it runs
        self._keys: KeyReader | None = None  # the terminal a person overrides the success classifier on
        self._proposals: dict[int, str] = {}  # the last mining round's reset ids -> the object poses a person sets
        self._eval_env = None  # the simulated env of robot_rl.eval_every's evaluations, once one runs

    def _check_before_connecting(self) -> None:
        """Build the robot, the guard's limits, the person's device and the success source, refusing what cannot
        work (a policy built for another arm, controller or camera image size; cameras the policy or the classifier
        reads but the robot lacks or delivers at another size; a record folder another run holds)."""
        cfg, r = self.cfg, self.cfg.robot_rl
        self.robot = make_robot(dict(cfg.robot))
        # the arm, controller, camera image sizes, action and proprioception sizes the learner's policy was built for,
        # and those the start (init_from) was trained with: its weights load whenever the shapes agree
        mapper = ActionMapper(cfg.env.controller, robot_kinematics(self.robot))
        for policy in [self.trainer.policy] + ([from_pretrained(cfg.init_from)] if cfg.init_from else []):
            refuse_mismatch(policy, cfg.env.controller, mapper, self.robot)
        self.limits = as_limits(r.safety)
        self.device = make_device({"type": r.person}) if r.person_episodes else None
        refuse_unfed_policy(self.trainer.policy, self.robot)
        self.classifier = None
        if r.success != "twin":
            if not os.path.isfile(os.path.join(r.success, "config.json")):
                raise FileNotFoundError(f"robot_rl.success={r.success!r} is not a success classifier's folder "
                                        "(SuccessClassifier.save_pretrained writes one), nor 'twin'")
            self.classifier = SuccessClassifier.from_pretrained(r.success)
            camera, size = self.classifier.camera, list(self.classifier.image_size)
            frames = self.robot.observation_features.get(f"images.{camera}")
            if frames is None:
                raise ValueError(f"the success classifier reads camera {camera!r} that this robot does not have (it "
                                 f"has {robot_cameras(self.robot)}): add it, e.g. robot.cameras=[{camera}] on the sim "
                                 f"twin, robot.cameras='{{{camera}: {{type: opencv, index: /dev/video0}}}}' on an arm")
            if list(frames[:2]) != size:
                raise ValueError(f"the success classifier was trained on {camera} images of {size[0]}x{size[1]} and "
                                 f"the robot's are {frames[0]}x{frames[1]}: set the camera's height and width")
        self.record = r.record or os.path.join(self.output_dir, "robot_data")
        if not cfg.resume and os.path.isfile(os.path.join(self.record, "meta", "info.json")):
            raise FileExistsError(f"{self.record} already holds a robot dataset: resume=true appends to it, or set "
                                  "robot_rl.record=<another folder>")

    @property
    def output_dir(self) -> str:
        """The run's folder (checkpoints, buffers, tensorboard, the final policy)."""
        return self.trainer.output_dir

    def _robot_env(self, robot) -> RobotEnv:
        """The connected ``robot`` behind the guard as a one-world env: the twin's task check or the success
        classifier as success, the person's device when configured, every step recorded."""
        cfg, r = self.cfg, self.cfg.robot_rl
        kinematics = robot_kinematics(robot)
        guard = SafetyGuard(robot, self.limits, control_dt=command_period(robot, r.control_hz or None),
                            forward_kinematics=kinematics.tool_position)
        if robot.robot_type == "sim_twin":
            instruction = robot.policy_observation()["instruction"][0]
        else:  # a real arm's is its task's, as the learner's simulated env gives it
            instruction = self.trainer.env.reset(seed=cfg.experiment.seed)[0]["instruction"][0]
        rate = r.control_hz or robot.control_hz  # an unpaced twin's frames are its simulated rate's
        observe = make_observer(robot, rate, list(getattr(self.trainer.policy, "cameras", [])), instruction,
                                kinematics)
        recorder = EpisodeRecorder(self.record, rate, f"embodied_train_{robot.arm.name}", append=cfg.resume)
        success = (lambda robot_obs: robot.task_success) if self.classifier is None else \
            classifier_success(self.classifier)
        keyboard = self.device is not None and r.person == "keyboard"  # whose s and f move the arm
        if self.classifier is not None and r.success_keys and not keyboard:
            self._keys = KeyReader(SUCCESS_KEYS_FD)
            self._keys.open()
            success = KeyOverride(success, self._success_key)
        env = RobotEnv(robot, guard, ActionMapper(cfg.env.controller, kinematics), observe, success,
                       self.trainer.env.max_episode_steps, instruction, control_hz=r.control_hz or None,
                       recorder=recorder, person_reset=PersonReset(ask=lambda message: self._ask_person(message, guard),
                                                                   describe=lambda i: self._proposals.get(i, "")))
        if self.device is not None:
            self.device.connect()
            env.intervention = Intervention(self.device, cfg.env.controller, lambda step, robot_obs: (
                env.episodes <= r.person_episodes and step >= r.person_after_step))
        return env

    def _ask_person(self, message: str, guard: SafetyGuard) -> None:
        """The reset prompt, with the terminal in its own mode (echo, Enter) while the person answers; a stop
        requested meanwhile (Ctrl-C, a failing learner) ends the run at once, the arm held."""
        if self._keys is not None:
            self._keys.close()
        try:
            answered = ask_on_terminal(message, stopped=lambda: guard.stop_reason is not None)
        finally:
            if self._keys is not None:
                self._keys.open()
        if not answered:
            guard.safe_stop(guard.stop_reason or "stopped while a person reset the scene")

    def _success_key(self) -> str | None:
        """The last of the keys s (solved) and f (not yet) typed since the previous verdict, or None."""
        pressed = [key for key in (self._keys.read(0.0) or "") if key in "sf"]
        return pressed[-1] if pressed else None

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
            log.info(f"training on {self.robot.robot_type} ({self.cfg.env.task}): {remaining} robot steps from "
                     f"episode {trainer.counters.get(EPISODES, 0) + 1}")
            if self._keys is not None:
                log.info(f"success: the classifier on camera {self.classifier.camera}; a key overrides it for a "
                         "step: s solved, f not yet")
            every = self.cfg.robot_rl.twinrl_every
            if every and remaining > 0:  # this round's rest (a resumed run's round is part done), then full rounds
                self._mine_failures(env, logger, every - trainer.counters.get(EPISODES, 0) % every)
            run_actor_learner(trainer, env, max(remaining, 0), seed=x.seed + trainer.counters.get(EPISODES, 0),
                              on_episode=lambda report: self._episode_ended(report, env, logger))
        except (SafetyStop, NonFiniteAction, ValueError, OSError) as stop:  # e-stop, robot fault, diverged policy
            stopped = stop
            log.info(f"stopped safely ({type(stop).__name__}: {stop}): the arm holds; episodes up to "
                     f"{trainer.counters.get(EPISODES, 0)} are saved and resume=true goes on from there")
        finally:
            try:
                if env is not None:
                    env.guard.restore_sigint()
            finally:
                try:
                    if self.robot.is_connected:
                        self.robot.disconnect()
                finally:
                    if self._keys is not None:
                        self._keys.close()  # the terminal back in its own mode
                    if self.device is not None:
                        self.device.disconnect()
        for simulated in (self._mining_env, self._eval_env):
            if simulated is not None:
                simulated.close()
        final = trainer.conclude(logger, stopped is not None, sft_steps=0)
        self.summary_path = trainer.summary_path
        trainer.env.close()
        return final

    def _mine_failures(self, env: RobotEnv, logger: RunLogger, count: int) -> None:
        """TwinRL's failure mining with the learner's policy; its ``count`` proposals become the next resets (the
        twin's, or the scenes a person is asked for)."""
        cfg, r = self.cfg, self.cfg.robot_rl
        if self._mining_env is None:  # the twin: the simulator in robot_rl.twin_domain, a model of the cell
            twin = dataclasses.replace(cfg, env=dataclasses.replace(cfg.env, domain=r.twin_domain))
            self._mining_env = build_env(twin, cfg.experiment.eval_num_envs, autoreset=False)
        episodes = self.trainer.counters.get(EPISODES, 0)
        seed = cfg.experiment.seed + MINING_SEED_OFFSET + episodes  # fresh scenes each round
        mined = mine_failures(self.trainer.policy, self._mining_env, seed, r.twinrl_evaluated, r.twinrl_candidates,
                              count)
        env.queue_resets(seed, mined.reset_ids)
        self._proposals = mined.descriptions()  # what a person resetting a real arm is asked to set up
        logger.scalars("twinrl", {"twin_success": mined.success_rate,
                                  "proposed_failure_probability": float(mined.failure_probability.mean())},
                       self.trainer.counters["env_steps"])
        log.info(f"twinrl: the policy solves {mined.success_rate:.2f} of {r.twinrl_evaluated} twin scenes; the next "
                 f"{len(mined.reset_ids)} resets are failure-prone ones (mean P(fail) "
                 f"{mined.failure_probability.mean():.2f})")

    def _episode_ended(self, report: ActorLearnerReport, env: RobotEnv, logger: RunLogger) -> None:
        """One line, the ``robot/*`` scalars and the mean of the learner's updates since the last episode ended
        (``train/*``) per saved episode; an evaluation every ``eval_every`` and TwinRL's
        mining every ``twinrl_every`` (in the learner's thread: the robot finishes the episode it is in, then holds at
        its end until the learner has saved it)."""
        success, assisted = report.episode_successes[-1], report.episode_assisted[-1]
        if not assisted:
            self._own.append(success)
        own = float(np.mean(self._own[-OWN_SUCCESS_WINDOW:])) if self._own else float("nan")
        periods = env.loop_periods_ms  # (a new list of the whole run's periods each time it is read)
        timing = period_stats(periods) if periods else {}
        counters = self.trainer.counters
        scalars = {"success": float(success), "assisted": float(assisted), "own_success_last_20": own,
                   "intervention_rate": env.intervention_rate, "updates": counters.get("updates", 0)} | timing
        logger.scalars("robot", scalars, counters["env_steps"])
        logger.scalars("train", report.update_means.take(), counters["env_steps"])  # the episode's updates, averaged
        loop = f"; loop p50/p99 {timing['period_p50_ms']:.1f}/{timing['period_p99_ms']:.1f} ms" if timing else ""
        log.info(f"episode {counters[EPISODES]}: {'success' if success else 'failure'}"
                 f"{' (person helped)' if assisted else ''}; own success over the last {OWN_SUCCESS_WINDOW} "
                 f"unassisted {own:.2f}; person drove {100 * env.intervention_rate:.1f}% of steps; "
                 f"{counters['env_steps']} steps, {counters.get('updates', 0)} updates{loop}")
        if self.cfg.robot_rl.eval_every and counters[EPISODES] % self.cfg.robot_rl.eval_every == 0:
            self._evaluate(logger)
        if self.cfg.robot_rl.twinrl_every and counters[EPISODES] % self.cfg.robot_rl.twinrl_every == 0 and \
                counters["env_steps"] < self.cfg.experiment.total_env_steps:  # none for resets the run will not take
            self._mine_failures(env, logger, self.cfg.robot_rl.twinrl_every)

    def _evaluate(self, logger: RunLogger) -> None:
        """The learner's policy in simulation (env.domain: on the sim twin, the robot's) over the evaluation's fixed
        scenes: ``robot/eval_success``, the success of uniform resets whatever resets the robot ran."""
        x = self.cfg.experiment
        if self._eval_env is None:
            self._eval_env = build_env(self.cfg, x.eval_num_envs, autoreset=False)
        rate = evaluate(self.trainer.policy, self._eval_env, x.eval_episodes, x.eval_seed)[0]["success_once"]
        logger.scalars("robot", {"eval_success": rate}, self.trainer.counters["env_steps"])
        log.info(f"evaluation after episode {self.trainer.counters[EPISODES]}: the policy solves {rate:.3f} of "
                 f"{x.eval_episodes} scenes in simulation ({self.cfg.env.domain})")
