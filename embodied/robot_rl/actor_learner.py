"""Robot RL with the robot loop and the learner apart (HIL-SERL's actor-learner, in one process).

The actor thread steps the ``RobotEnv`` (which holds the control rate) with its own copy of the policy and hands
each transition to the learner through a queue; within an episode it never waits for an update. The learner (the
calling thread) stores the transitions in the off-policy trainer's replay buffer, steps where a person had control
also in a buffer of interventions that batches sample as demonstrations (``algo.demo_ratio``), pays the
``algo.utd_ratio`` updates it owes while no transition waits, and posts new weights, which the actor takes between
two steps.

Crash safety: at each episode's end the learner flushes both buffers and writes a checkpoint (the two newest are
kept), and the actor starts its next step only once that is on disk (one update at most after the episode ended), so
a kill -9 loses at most the open episode: a trainer built with ``resume=true`` and the same output folder continues
from the last ended episode (buffers, weights, optimizers, counters, the random phase's progress).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import queue
import shutil
import threading
from dataclasses import dataclass, field
from typing import Callable

import torch

from embodied.algorithms import sac
from embodied.data.replay import ReplayBuffer, sample_mixture
from embodied.deploy.rate import period_stats
from embodied.rollout.transition_collector import TransitionCollector
from embodied.runner.checkpoint import complete_checkpoints
from embodied.runner.logger import StatMeans

KEPT_CHECKPOINTS = 2  # the buffers can go back one flush: a damaged newest checkpoint falls back to the one before
EPISODES = "robot_episodes"  # the counter of the ended episodes the checkpoints hold


class WeightMailbox:
    """The newest posted weights and their version; posting and taking swap a reference under a lock."""

    def __init__(self):
        self._lock = threading.Lock()
        self._version, self._state = 0, None

    def post(self, policy: torch.nn.Module) -> int:
        """Publish a copy of ``policy``'s weights; returns their version."""
        state = {key: value.detach().clone() for key, value in policy.state_dict().items()}
        with self._lock:
            self._version += 1
            self._state = state
            return self._version

    def take(self, newer_than: int) -> tuple[int, dict | None]:
        """(version, weights) when weights newer than ``newer_than`` were posted, else (newer_than, None)."""
        with self._lock:
            return (self._version, self._state) if self._version > newer_than else (newer_than, None)


@dataclass
class Transition:
    """One robot step as the learner stores it: the action the arm executed, and whether a person chose it."""

    obs: dict
    action: torch.Tensor  # [1, A]
    reward: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    final_obs: dict
    intervened: bool
    success: bool

    @property
    def ended(self) -> bool:
        """Whether the step ended its episode."""
        return bool((self.terminated | self.truncated)[0])


@dataclass
class ActorLearnerReport:
    """What one run of ``run_actor_learner`` did."""

    env_steps: int = 0
    updates: int = 0
    weight_versions_taken: list = field(default_factory=list)  # the version the actor acted with, per step
    episode_successes: list = field(default_factory=list)
    episode_assisted: list = field(default_factory=list)  # whether a person drove any step of each episode
    intervention_rate: float = 0.0
    timing: dict = field(default_factory=dict)  # the robot loop's period p50 / p99 / jitter (ms)
    update_means: StatMeans = field(default_factory=StatMeans)  # the updates' statistics (critic loss, Q, ...)


@dataclass
class ActorLink:
    """What the actor and the learner share: transitions to the learner, the number of ended episodes on disk back
    to the actor, the newest weights, and the stop signal."""

    transitions: queue.Queue = field(default_factory=queue.Queue)
    saved_episodes: queue.Queue = field(default_factory=queue.Queue)
    mailbox: WeightMailbox = field(default_factory=WeightMailbox)
    stop: threading.Event = field(default_factory=threading.Event)

    def wait_until_saved(self) -> bool:
        """Block the actor until the learner has checkpointed the episode that just ended (True) or the run stops
        (False)."""
        while not self.stop.is_set():
            try:
                self.saved_episodes.get(timeout=0.05)
                return True
            except queue.Empty:
                continue
        return False


class PooledDemos:
    """The run's demonstrations: offline ones (a replay buffer, or None) and the person's intervention steps, sampled
    as one pool (each transition equally likely)."""

    def __init__(self, offline: ReplayBuffer | None, interventions: ReplayBuffer):
        self.offline, self.interventions = offline, interventions

    def __len__(self) -> int:
        return (len(self.offline) * self.offline.num_envs if self.offline is not None else 0) + len(self.interventions)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> dict:
        """``batch_size`` transitions, from each part in proportion to its sampleable transitions."""
        sizes = {"offline": len(self) - len(self.interventions), "interventions": len(self.interventions)}
        parts = {name: buffer for name, buffer in (("offline", self.offline), ("interventions", self.interventions))
                 if sizes[name]}
        batch = sample_mixture(parts, {name: float(sizes[name]) for name in parts}, batch_size, generator)
        batch.pop("source")
        return batch


def _act_on_robot(env, policy, acting, link: ActorLink, steps: int, seed: int, steps_before: int, versions: list,
                  generator: torch.Generator) -> None:
    """The actor thread's body: up to ``steps`` robot steps of a ``TransitionCollector`` (``acting``: the algorithm
    settings it acts by, uniform random actions until the run's ``learning_starts``, of which ``steps_before`` a
    resumed run has taken), until ``link.stop`` is set; every transition, then None (or the exception), to the
    learner, waiting at each episode's end until the learner has saved it (and mined the next resets, with TwinRL)
    before the next reset; the env is closed before the None."""
    try:
        with torch.no_grad():
            collector = TransitionCollector(env, policy, acting, generator=generator)
            collector.env_steps = steps_before
            if steps > 0:
                collector.start(seed)
            version = 0
            for step in range(steps):
                if link.stop.is_set():
                    break
                version, weights = link.mailbox.take(version)
                if weights is not None:
                    policy.load_state_dict(weights)
                versions.append(version)
                transition = collector.step(collector.act(collector.obs))  # the action the arm executed
                info = collector.info
                item = Transition(*transition, bool(info["intervened"][0]), bool(info["success"][0]))
                link.transitions.put(item)
                if item.ended:
                    if not link.wait_until_saved():
                        break  # the learner stopped: no next scene
                    if step < steps - 1:  # the next scene after the learner's mining, and none the run will not use
                        collector.start(None)  # the twin's reset, or a person's on a real arm
        env.close()  # the arm holds (the open episode saved) while the learner pays the updates it still owes
        link.transitions.put(None)
    except BaseException as error:  # a safety stop or a broken policy: the learner re-raises it
        link.transitions.put(error)


def run_actor_learner(trainer, env, env_steps: int, publish_every: int = 1, seed: int = 0,
                      on_episode: Callable[[ActorLearnerReport], None] | None = None) -> ActorLearnerReport:
    """Train ``trainer`` (an ``OffPolicyTrainer``: its policy, critics, buffer, ``update`` and checkpoints) on
    ``env_steps`` steps of the robot ``env``; returns the report. Intervention steps join the run's demonstrations
    (its offline ones, if any: ``PooledDemos``), cut into segments so that no n-step return crosses a step the
    policy chose. A trainer built with ``resume=true`` goes on from its last checkpoint. ``on_episode(report)`` runs
    in the learner after each episode is saved, before the actor resets ``env`` for the next one (``env.autoreset``
    is off during the run: the next scene may be one that ``on_episode`` mined). However the learner ends (an
    exception, Ctrl-C), the actor stops and the arm holds before this returns or raises."""
    algo = trainer.cfg.algo
    interventions = _intervention_buffer(trainer)
    demos = PooledDemos(trainer.demos, interventions)  # offline ones first (algo.demo_episodes, data.paths), if any
    trainer.demos = demos if len(demos) else None  # sampled once there is one
    env.episodes = trainer.counters.get(EPISODES, 0)  # the person's prompts go on counting
    link, report = ActorLink(), ActorLearnerReport()
    actor_policy = copy.deepcopy(trainer.policy).requires_grad_(False)
    acting = dataclasses.replace(algo, learning_starts=0) if trainer.acts_from_start else algo  # as the trainer's
    actor = threading.Thread(target=_act_on_robot, daemon=True, name="robot-actor",
                             args=(env, actor_policy, acting, link, env_steps, seed, trainer.counters["env_steps"],
                                   report.weight_versions_taken, torch.Generator().manual_seed(seed)))
    autoreset, env.autoreset = env.autoreset, False  # the actor resets the env itself, after the learner
    actor.start()
    try:
        _learn(trainer, link, interventions, demos, publish_every, report, on_episode)
    except BaseException as error:
        env.guard.request_stop(f"the learner stopped ({type(error).__name__})")  # ends a reset prompt waiting too
        raise
    finally:
        link.stop.set()
        actor.join()
        env.close()  # the open episode saved, the arm held
        env.autoreset = autoreset
    report.intervention_rate, report.timing = env.intervention_rate, period_stats(env.loop_periods_ms)
    return report


def _intervention_buffer(trainer) -> ReplayBuffer:
    """The run's durable buffer of intervention steps: reopened as the last checkpoint left it, or a new one."""
    algo = trainer.cfg.algo
    directory, device = os.path.join(trainer.output_dir, "interventions"), str(trainer.policy.device)
    steps = int(trainer.resumed_extra.get("intervention_steps", 0))
    if steps:
        return ReplayBuffer.open(directory, flush_every=None, device=device, steps=steps)
    return ReplayBuffer(max(algo.buffer_size, algo.n_step + 1), 1, algo.n_step, algo.gamma, directory,
                        flush_every=None, device=device)


def _learn(trainer, link: ActorLink, interventions: ReplayBuffer, demos: PooledDemos, publish_every: int,
           report: ActorLearnerReport, on_episode: Callable[[ActorLearnerReport], None] | None) -> None:
    """The learner's loop over the actor's transitions until the actor is done: everything waiting is stored before
    the next update; re-raises the actor's exception."""
    algo = trainer.cfg.algo
    pending, assisted, actor_done = None, False, False
    while not actor_done:
        item = link.transitions.get()
        while True:
            if item is None:
                actor_done = True
                break
            if isinstance(item, BaseException):
                raise item
            pending, assisted = _store(trainer, interventions, demos, pending, assisted, item, report)
            if item.ended:
                _save_episode(trainer, interventions)
                if on_episode is not None:  # before the actor goes on: TwinRL's mining picks its next reset
                    on_episode(report)
                link.saved_episodes.put(trainer.counters[EPISODES])
            try:
                item = link.transitions.get_nowait()
            except queue.Empty:
                break
        while trainer.owed_updates >= 1 and (actor_done or link.transitions.empty()):
            report.updates += 1
            trainer.counters["updates"] = trainer.counters.get("updates", 0) + 1
            step_actor = sac.steps_actor(trainer.counters["updates"], algo.utd_ratio, algo.actor_warmup_updates)
            report.update_means.add(trainer.update(step_actor=step_actor))
            trainer.owed_updates -= 1
            if report.updates % publish_every == 0:
                link.mailbox.post(trainer.policy)


def _store(trainer, interventions: ReplayBuffer, demos: PooledDemos, pending: Transition | None, assisted: bool,
           item: Transition, report: ActorLearnerReport) -> tuple[Transition | None, bool]:
    """Store one transition (and an intervention step in ``interventions``), count it and the updates it pays for;
    returns the intervention step held until its successor is known and whether a person drove this episode."""
    algo = trainer.cfg.algo
    trainer.buffer.add(item.obs, item.action, item.reward, item.terminated, item.truncated, item.final_obs)
    pending = _store_intervention(interventions, pending, item)
    if trainer.demos is None and len(demos):
        trainer.demos = demos  # batches take algo.demo_ratio from here on
    if trainer.counters["env_steps"] < algo.learning_starts and hasattr(trainer.policy, "update_normalizer") \
            and not trainer.pretrained:
        trainer.policy.update_normalizer(item.obs)  # as the trainer: statistics settle on the random phase
    trainer.counters["env_steps"] += 1
    report.env_steps += 1
    assisted |= item.intervened
    if item.ended:
        report.episode_successes.append(item.success)
        report.episode_assisted.append(assisted)
        assisted = False
        trainer.counters[EPISODES] = trainer.counters.get(EPISODES, 0) + 1
    if trainer.counters["env_steps"] >= algo.learning_starts and len(trainer.buffer):
        trainer.owed_updates += algo.utd_ratio
    return pending, assisted


def _save_episode(trainer, interventions: ReplayBuffer) -> None:
    """Make everything up to the episode that just ended durable: both buffers flushed, a checkpoint written, all
    but the newest ``KEPT_CHECKPOINTS`` removed."""
    interventions.flush()
    trainer.iteration = trainer.counters[EPISODES]
    trainer.save_checkpoint({"intervention_steps": interventions.steps})
    for old in complete_checkpoints(os.path.join(trainer.output_dir, "checkpoints"))[KEPT_CHECKPOINTS:]:
        shutil.rmtree(old)


def _store_intervention(demos: ReplayBuffer, pending: Transition | None, item: Transition):
    """Store the previous intervention step in ``demos``, truncated at ``item``'s observation when ``item`` (the next
    step) is not one; an intervention step that ends its episode is stored at once (before the episode's checkpoint).
    Returns ``item`` when it is an intervention step still open (held until its successor is known; one the run
    stops after is left out)."""
    if pending is not None:
        cut = torch.tensor([not item.intervened])
        demos.add(pending.obs, pending.action, pending.reward, pending.terminated, cut, item.obs)
    if not item.intervened:
        return None
    if item.ended:
        demos.add(item.obs, item.action, item.reward, item.terminated, item.truncated, item.final_obs)
        return None
    return item
