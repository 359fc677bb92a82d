"""Robot RL with the robot loop and the learner apart (HIL-SERL's actor-learner, in one process).

The actor thread steps the ``RobotEnv`` (which holds the control rate) with its own copy of the policy and hands
each transition to the learner through a queue; it never waits for an update. The learner (the calling thread)
stores the transitions in the off-policy trainer's replay buffer, steps where a person had control also in a buffer
of interventions that batches sample as demonstrations (``algo.demo_ratio``), pays the ``algo.utd_ratio`` updates
it owes, and posts new weights, which the actor takes between two steps.
"""

from __future__ import annotations

import copy
import dataclasses
import queue
import threading
from dataclasses import dataclass, field

import torch

from embodied.algorithms import sac
from embodied.data.replay import ReplayBuffer
from embodied.deploy.rate import period_stats
from embodied.rollout.transition_collector import TransitionCollector


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


def _act_on_robot(env, policy, acting, mailbox: WeightMailbox, steps: int, seed: int, out: queue.Queue,
                  stop: threading.Event, versions: list, generator: torch.Generator) -> None:
    """The actor thread's body: up to ``steps`` robot steps of a ``TransitionCollector`` (``acting``: the algorithm
    settings it acts by, uniform random actions for its first ``learning_starts``), until ``stop`` is set; every
    transition, then None (or the exception), to ``out``."""
    try:
        with torch.no_grad():
            collector = TransitionCollector(env, policy, acting, generator=generator)
            collector.start(seed)
            version = 0
            for _ in range(steps):
                if stop.is_set():
                    break
                version, weights = mailbox.take(version)
                if weights is not None:
                    policy.load_state_dict(weights)
                versions.append(version)
                transition = collector.step(collector.act(collector.obs))  # the action the arm executed
                info = collector.info
                out.put(Transition(*transition, bool(info["intervened"][0]), bool(info["success"][0])))
        out.put(None)
    except BaseException as error:  # a safety stop or a broken policy: the learner re-raises it
        out.put(error)


def run_actor_learner(trainer, env, env_steps: int, publish_every: int = 1, seed: int = 0) -> ActorLearnerReport:
    """Train ``trainer`` (an ``OffPolicyTrainer``: its policy, critics, buffer and ``update``) on ``env_steps``
    steps of the robot ``env``; returns the report. Intervention steps become the run's demonstrations (sampled once
    there is one), cut into segments so that no n-step return crosses a step the policy chose. However the learner
    ends (an exception, Ctrl-C), the actor stops and the arm holds before this returns or raises."""
    algo = trainer.cfg.algo
    if trainer.demos is not None:
        raise ValueError("run_actor_learner stores the person's intervention steps as the run's demonstrations; this "
                         "run already has offline ones (algo.demo_episodes or data.paths): drop them")
    interventions = ReplayBuffer(max(algo.buffer_size, algo.n_step + 1), 1, algo.n_step, algo.gamma,
                                 device=str(trainer.policy.device))
    mailbox, transitions, stop, report = WeightMailbox(), queue.Queue(), threading.Event(), ActorLearnerReport()
    actor_policy = copy.deepcopy(trainer.policy).requires_grad_(False)
    acting = dataclasses.replace(algo, learning_starts=0) if trainer.acts_from_start else algo  # as the trainer's
    actor = threading.Thread(target=_act_on_robot, daemon=True, name="robot-actor",
                             args=(env, actor_policy, acting, mailbox, env_steps, seed, transitions, stop,
                                   report.weight_versions_taken, torch.Generator().manual_seed(seed)))
    actor.start()
    try:
        _learn(trainer, transitions, interventions, mailbox, publish_every, report)
    finally:
        stop.set()
        actor.join()
        env.close()  # the open episode saved, the arm held
    report.intervention_rate, report.timing = env.intervention_rate, period_stats(env.loop_periods_ms)
    return report


def _learn(trainer, transitions: queue.Queue, interventions: ReplayBuffer, mailbox: WeightMailbox,
           publish_every: int, report: ActorLearnerReport) -> None:
    """The learner's loop over the actor's transitions until the actor is done; re-raises the actor's exception."""
    algo = trainer.cfg.algo
    per_actor_step = sac.critic_updates_per_actor_update(algo.utd_ratio)
    owed, pending_intervention, assisted = 0.0, None, False
    while True:
        item = transitions.get()
        if item is None:
            break
        if isinstance(item, BaseException):
            raise item
        trainer.buffer.add(item.obs, item.action, item.reward, item.terminated, item.truncated, item.final_obs)
        pending_intervention = _store_intervention(interventions, pending_intervention, item)
        if trainer.demos is None and len(interventions):
            trainer.demos = interventions  # batches take algo.demo_ratio from here on
        if trainer.counters["env_steps"] < algo.learning_starts and hasattr(trainer.policy, "update_normalizer") \
                and not trainer.pretrained:
            trainer.policy.update_normalizer(item.obs)  # as the trainer: statistics settle on the random phase
        trainer.counters["env_steps"] += 1
        report.env_steps += 1
        assisted |= item.intervened
        if bool((item.terminated | item.truncated)[0]):
            report.episode_successes.append(item.success)
            report.episode_assisted.append(assisted)
            assisted = False
        if trainer.counters["env_steps"] >= algo.learning_starts and len(trainer.buffer):
            owed += algo.utd_ratio
            while owed >= 1:
                report.updates += 1
                trainer.counters["updates"] = trainer.counters.get("updates", 0) + 1
                trainer.update(step_actor=trainer.counters["updates"] % per_actor_step == 0)
                owed -= 1
                if report.updates % publish_every == 0:
                    mailbox.post(trainer.policy)
    _store_intervention(interventions, pending_intervention, None)


def _store_intervention(demos: ReplayBuffer, pending: Transition | None, item: Transition | None):
    """Store the previous intervention step in ``demos``, truncated at ``item``'s observation when ``item`` (the next
    step) is not one; returns ``item`` when it is an intervention step (held until its successor is known)."""
    if pending is not None:
        if bool((pending.terminated | pending.truncated)[0]):  # its episode ended there
            demos.add(pending.obs, pending.action, pending.reward, pending.terminated, pending.truncated,
                      pending.final_obs)
        elif item is not None:  # (a step the run stopped after has no known next observation: left out)
            cut = torch.tensor([not item.intervened])
            demos.add(pending.obs, pending.action, pending.reward, pending.terminated, cut, item.obs)
    return item if item is not None and item.intervened else None

