"""The loop of ``trainer="offpolicy"`` algorithms (SAC): step every env, store the steps in a replay buffer, take
``algo.utd_ratio`` critic updates per env-step on samples of it (the actor and the temperature after every
``max(1, round(utd_ratio))``-th: once per env-step for a whole ratio >= 1, as RLPD's code), log, evaluate, save.

One iteration is ``algo.rollout_steps`` steps of every env; ``experiment.eval_interval`` counts iterations. With
``algo.demo_episodes`` the task's scripted expert first plays that many episodes in simulation into a buffer of their
own (or ``data.paths`` names LeRobot datasets with rewards to read them from), and every batch takes
``algo.demo_ratio`` of its transitions from it (RLPD's symmetric sampling).

With ``dist=local|ray`` env workers take the iteration's steps with the weights it starts with
(``embodied/rollout/transition_collector.py``) and the learner stores and pays for them step by step.

Every ``experiment.checkpoint_interval`` iterations (and at the end, or after Ctrl-C) the replay buffer is flushed to
``<run>/replay`` and a checkpoint written to ``<run>/checkpoints``; ``resume=true`` continues exactly from the last one,
after a kill -9 too (the buffer is reopened as the checkpoint recorded it).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import time

import torch
from tqdm import tqdm

from embodied.algorithms import sac
from embodied.algorithms.calql import calql_regularizer
from embodied.config.schema import TrainConfig, validate
from embodied.data.compatibility import check_datasets
from embodied.data.dataset_replay import replay_from_datasets
from embodied.data.replay import ReplayBuffer, sample_mixture
from embodied.dist.collector import make_collector
from embodied.rollout.obs import select, step_of
from embodied.rollout.transition_collector import TransitionCollector
from embodied.runner.builders import build_env, build_policy
from embodied.runner.checkpoint import (load_checkpoint, needs_final_checkpoint, resume_latest, run_identity,
                                        save_checkpoint)
from embodied.runner.interrupt import GracefulStop
from embodied.runner.logger import RunLogger, StatMeans
from embodied.runner.run import Run, refuse_reused_folder
from embodied.runner.trainer import load_initial_weights
from policies.critics import QEnsemble

DEMO_SEED_OFFSET = 7919  # the expert's scenes: away from the training envs' (seed) and the evaluation's (eval_seed)


def expert_buffer(cfg: TrainConfig, policy, episodes: int) -> ReplayBuffer:
    """``episodes`` episodes of the task's scripted expert, played in simulation, as a replay buffer of their own
    (the observations the policy reads, the env's rewards, terminations and truncations): one env per episode, played
    until each has ended once (one that ends early starts another), then ``n_step`` steps more, so that the buffer's
    last sampled transitions are the episodes' final ones (a buffer samples only steps with n steps stored after)."""
    from sims.experts import WaypointExpert

    a = cfg.algo
    env = build_env(cfg, episodes, autoreset=True)
    expert = WaypointExpert(env)  # re-plans every env whose episode just started
    buffer = ReplayBuffer(env.max_episode_steps + a.n_step + 1, episodes, a.n_step, a.gamma,
                          device=str(policy.device))
    obs, _ = env.reset(seed=cfg.experiment.seed + DEMO_SEED_OFFSET)
    ended = torch.zeros(episodes, dtype=torch.bool)
    steps_after = 0  # steps stored since every env's first episode ended
    while steps_after < a.n_step:
        steps_after += int(bool(ended.all()))
        action = expert.act()
        next_obs, reward, terminated, truncated, info = env.step(action)
        final = info.get("final_obs")
        buffer.add(policy.cache_features(obs), action, reward, terminated, truncated,
                   None if final is None else policy.cache_features(final))
        ended |= (terminated | truncated).cpu()
        obs = next_obs
    env.close()
    return buffer


class OffPolicyTrainer(Run):
    """Owns the env, the actor (the policy), the Q ensemble with its target, the temperature and the replay buffer
    of one run; ``train()`` returns the final evaluation metrics."""

    resumable = True  # resume=true continues from the last checkpoint and the replay buffer flushed with it

    def __init__(self, cfg: TrainConfig):
        validate(cfg)
        super().__init__(cfg, cfg.experiment.output_dir)
        a = cfg.algo
        torch.set_num_threads(cfg.experiment.torch_threads)
        torch.manual_seed(cfg.experiment.seed)
        self.env = build_env(cfg, cfg.env.num_envs, autoreset=True)
        self.policy = build_policy(cfg, self.env, cfg.experiment.seed)
        if cfg.init_from:
            load_initial_weights(self.policy, cfg.init_from)
        action_dim = self.env.action_spec.dim
        self.critic = QEnsemble(self.policy.feature_dim, action_dim, list(a.critic_hidden), a.num_critics,
                                a.critic_layer_norm)
        self.critic.to(self.policy.device)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = torch.tensor(math.log(a.init_temperature), device=self.policy.device, requires_grad=True)
        self.target_entropy = -a.target_entropy_scale * action_dim if a.target_entropy is None else \
            float(a.target_entropy)
        # the policy's V head is not trained here, and an image encoder (pixel policies) is trained by the critics' loss
        encoder = self.policy.encoder_parameters()
        not_actor = {id(p) for p in [*self.policy.critic_parameters(), *encoder]}
        actor = [p for p in self.policy.parameters() if p.requires_grad and id(p) not in not_actor]
        self.actor_optimizer = torch.optim.Adam(actor, lr=a.learning_rate)
        self.critic_optimizer = torch.optim.Adam([*self.critic.parameters(), *encoder], lr=a.critic_learning_rate)
        self.temperature_optimizer = torch.optim.Adam([self.log_alpha], lr=a.critic_learning_rate)
        n = cfg.env.num_envs
        self.replay_dir = os.path.join(self.output_dir, "replay")
        if not cfg.resume:
            refuse_reused_folder(self.output_dir)
        self.buffer = ReplayBuffer(max(a.buffer_size // n, a.n_step + 1), n, a.n_step, a.gamma, self.replay_dir,
                                   flush_every=None, device=str(self.policy.device))  # flushed with each checkpoint
        self.generator = torch.Generator().manual_seed(cfg.experiment.seed)  # buffer samples, critic subsets
        self.demos = self._demonstrations()
        if self.demos is not None and hasattr(self.policy, "update_normalizer") and not cfg.init_from:
            self.policy.update_normalizer(self._stored_observations(self.demos))  # states random actions never reach
        # a pre-trained actor (pre-training here or init_from) acts from the first env-step, and the statistics its
        # inputs were normalised with stay fixed; a policy over a frozen base (residual_tanh) acts from the first env-step
        # too, its statistics settling on those steps
        self.pretrained = bool(a.pretrain_steps or cfg.init_from)
        self.acts_from_start = self.pretrained or self.policy.acts_before_training
        self.anchor_actor = None  # the frozen pre-trained actor of algo.pretrained_anchor_coef, once pre-training is done
        if a.pretrained_anchor_coef and not a.pretrain_steps:
            self.anchor_actor = self._frozen_copy()  # init_from's weights
        self.owed_updates = 0.0  # utd_ratio x env-steps not yet turned into updates
        self.resumed_extra: dict = {}  # the ``more`` that save_checkpoint wrote into the checkpoint resumed from
        # dist=local|ray: env workers step the envs, each iteration with the weights it starts with (the actor-learner
        # split of HIL-SERL, synchronised every algo.rollout_steps steps); a pre-trained actor acts from their first step
        # the collectors take no uniform random actions for a policy that acts from the start
        acting = dataclasses.replace(a, learning_starts=0) if self.acts_from_start else a
        self.workers = cfg.dist.backend != "single"
        if self.workers:
            self.rollout = make_collector(dataclasses.replace(cfg, algo=acting), self.env, self.policy)
            self.worker_metrics: dict = {}
        else:  # this process steps the envs itself, each action from the policy as the last update left it
            self.rollout = TransitionCollector(self.env, self.policy, acting, generator=self.generator)
            self.rollout.start(cfg.experiment.seed)
        if cfg.resume:
            path = resume_latest(self.output_dir, self._load_checkpoint)
            print(f"resumed from {path} at iteration {self.iteration}")

    def _demonstrations(self) -> ReplayBuffer | None:
        """The demonstration buffer: ``algo.demo_episodes`` of the scripted expert, or the episodes of the LeRobot
        datasets ``data.paths`` (checked against the env and policy first), or None."""
        cfg = self.cfg
        if cfg.algo.demo_episodes:
            return expert_buffer(cfg, self.policy, cfg.algo.demo_episodes)
        if not cfg.data.paths:
            return None
        check_datasets(list(cfg.data.paths), self.env, self.policy)
        return replay_from_datasets(list(cfg.data.paths), self.policy.observation_inputs(), cfg.algo.n_step,
                                    cfg.algo.gamma, device=str(self.policy.device))

    def save_checkpoint(self, more: dict | None = None) -> str:
        """Flush the replay buffer, then write everything ``resume=true`` needs to continue exactly from here (and
        ``more``, which a resumed run finds in ``resumed_extra``); returns the checkpoint's folder."""
        self.buffer.flush()
        more = more or {}
        extra = more | {
            "more_keys": sorted(more), "critic": self.critic.state_dict(),
            "target_critic": self.target_critic.state_dict(), "critic_optimizer": self.critic_optimizer.state_dict(),
            "log_alpha": self.log_alpha.detach().clone(),
            "temperature_optimizer": self.temperature_optimizer.state_dict(), "generator": self.generator.get_state(),
            "owed_updates": self.owed_updates, "buffer_steps": self.buffer.steps}
        if self.anchor_actor is not None:
            extra["anchor_actor"] = self.anchor_actor.state_dict()
        return save_checkpoint(os.path.join(self.output_dir, "checkpoints"), self.iteration, self.policy,
                               self.actor_optimizer, self.rollout, self.counters, self._identity(), extra=extra)

    def _identity(self) -> dict:
        """The settings a checkpoint's state depends on: ``run_identity``'s, the buffer's and the critics' shape."""
        a = self.cfg.algo
        return run_identity(self.cfg) | {"algo.buffer_size": a.buffer_size, "algo.n_step": a.n_step,
                                         "algo.gamma": a.gamma, "algo.num_critics": a.num_critics,
                                         "algo.critic_hidden": list(a.critic_hidden),
                                         "algo.critic_layer_norm": a.critic_layer_norm,
                                         # a frozen encoder's buffer holds keypoints, not images, and its critics'
                                         # optimiser no encoder weights
                                         "policy.vision.freeze": bool((self.cfg.policy.vision or {}).get("freeze"))}

    def _load_checkpoint(self, path: str) -> None:
        """Restore the run from the checkpoint at ``path`` and the replay buffer as that checkpoint recorded it."""
        self.iteration, self.counters, extra = load_checkpoint(path, self.policy, self.actor_optimizer, self.rollout,
                                                               self._identity())
        self.resumed_extra = {key: extra[key] for key in extra.get("more_keys", [])}  # save_checkpoint's ``more``
        self.critic.load_state_dict(extra["critic"])
        self.target_critic.load_state_dict(extra["target_critic"])
        self.critic_optimizer.load_state_dict(extra["critic_optimizer"])
        with torch.no_grad():
            self.log_alpha.copy_(extra["log_alpha"])
        self.temperature_optimizer.load_state_dict(extra["temperature_optimizer"])
        self.generator.set_state(extra["generator"])
        self.owed_updates = float(extra["owed_updates"])
        if "anchor_actor" in extra:
            self.anchor_actor = self._frozen_copy()
            self.anchor_actor.load_state_dict(extra["anchor_actor"])
        if extra["buffer_steps"]:  # a checkpoint before the first step (Ctrl-C at once) keeps the empty buffer
            self.buffer = ReplayBuffer.open(self.replay_dir, flush_every=None, device=str(self.policy.device),
                                            steps=int(extra["buffer_steps"]))

    @staticmethod
    def _stored_observations(buffer: ReplayBuffer) -> dict:
        """Every observation ``buffer`` holds, flat over steps and envs ([steps x N, ...] per key)."""
        steps = min(buffer.steps, buffer.capacity)
        return {key[len("obs/"):]: value[:steps].flatten(0, 1) for key, value in buffer.store.items()
                if key.startswith("obs/") and "/" not in key[len("obs/"):]}

    def pretrain(self, logger: RunLogger) -> None:
        """``algo.pretrain_steps`` updates on the demonstrations alone, the critics with Cal-QL's conservative term
        (and targets floored at the returns-to-go with ``algo.pretrain_return_floor``); logged under ``pretrain/``."""
        a = self.cfg.algo
        returns = self.demos.returns_to_go()  # [T, N]: Cal-QL's floor under Q of the policy's actions
        bar = tqdm(range(a.pretrain_steps), disable=not self.cfg.experiment.progress, desc="pre-training", unit="step")
        for step in bar:
            batch = self.demos.sample(a.batch_size, self.generator)
            batch["source"] = torch.ones_like(batch["env"])  # every row is a demonstration (for the BC term)
            stats = self.update(batch=batch, returns_to_go=returns[batch["slot"], batch["env"]])
            if (step + 1) % 100 == 0:
                logger.scalars("pretrain", stats, step + 1)
        self.counters["pretrain_steps"] = a.pretrain_steps
        if a.pretrained_anchor_coef:
            self.anchor_actor = self._frozen_copy()

    def _frozen_copy(self):
        """The policy as it is now, frozen: what ``algo.pretrained_anchor_coef`` pulls the actor towards."""
        return copy.deepcopy(self.policy).eval().requires_grad_(False)

    def update(self, step_actor: bool = True, batch: dict | None = None,
               returns_to_go: torch.Tensor | None = None) -> dict:
        """One gradient step of the critics, then (with ``step_actor``) of the actor and the temperature, then the
        target critics move. ``batch``: a given batch instead of a sample of the replay buffers; ``returns_to_go``
        [B]: the batch's returns-to-go, which switch on offline pre-training's terms (Cal-QL's gap, the targets'
        return floor, BC without the Q filter)."""
        with self.policy.reuse_encodings():  # a pixel policy encodes each image batch once per update
            return self._update(step_actor, batch, returns_to_go)

    def _update(self, step_actor: bool, batch: dict | None, returns_to_go: torch.Tensor | None) -> dict:
        """``update``'s body."""
        a, policy = self.cfg.algo, self.policy
        if batch is None and (self.demos is None or a.demo_ratio == 0):
            batch = self.buffer.sample(a.batch_size, self.generator)
        elif batch is None:
            batch = sample_mixture({"online": self.buffer, "demos": self.demos},
                                   {"online": 1 - a.demo_ratio, "demos": a.demo_ratio}, a.batch_size, self.generator)
        batch = batch | {"obs": policy.augment(batch["obs"]), "next_obs": policy.augment(batch["next_obs"])}
        alpha = self.log_alpha.exp().detach()
        target = sac.critic_target(policy, self.target_critic, batch, alpha, a.critic_subset, self.generator,
                                   a.backup_entropy)
        if returns_to_go is not None and a.pretrain_return_floor:
            target = torch.maximum(target, returns_to_go)  # MCAC: the demonstration's return is a value it reached
        q = self.critic(policy.features(batch["obs"]), batch["action"])  # [E, B]; trains an image encoder too
        critic_loss = sac.critic_loss(q, target)
        stats = {"critic_loss": critic_loss.item(), "q": q.mean().item()}
        if "source" in batch and batch["source"].unique().numel() == 2:  # RLPD's mixture: Q of each source apart
            stats |= {"q_online": q[:, batch["source"] == 0].mean().item(),
                      "q_demos": q[:, batch["source"] == 1].mean().item()}
        if returns_to_go is not None and a.cql_alpha:
            gap = calql_regularizer(policy, self.critic, batch, q, returns_to_go, a.cql_actions, self.generator)
            critic_loss = critic_loss + a.cql_alpha * gap
            stats["cql_gap"] = gap.item()
        self.critic_optimizer.zero_grad()
        critic_loss.backward()
        self.critic_optimizer.step()
        if step_actor:
            self.critic.requires_grad_(False)  # the actor's backward pass reaches the action, not the critic's weights
            actor_loss, logprob = sac.actor_loss(policy, self.critic, batch["obs"], alpha, a.actor_q)
            if a.bc_coef and "source" in batch:  # batches with demonstration rows
                demo = torch.nonzero(batch["source"] == 1).flatten()  # sample_mixture's index of "demos"
                bc = sac.q_filtered_bc_loss(policy, self.critic, select(batch["obs"], demo), batch["action"][demo],
                                            q_filter=returns_to_go is None)  # unfiltered in offline pre-training
                actor_loss = actor_loss + a.bc_coef * bc
                stats["bc_loss"] = bc.item()
            anchor = 0.0 if self.anchor_actor is None or returns_to_go is not None else sac.anchor_weight(
                a.pretrained_anchor_coef, a.pretrained_anchor_steps, self.counters["env_steps"], a.learning_starts)
            if anchor:  # the pre-trained actor's action as the target of the same scale-free pull, on every row
                with torch.no_grad():
                    pretrained_action = self.anchor_actor.deterministic_action(batch["obs"])[:, 0]  # [B, A]
                pull = sac.q_filtered_bc_loss(policy, self.critic, batch["obs"], pretrained_action, q_filter=False)
                actor_loss = actor_loss + anchor * pull
                stats |= {"anchor_loss": pull.item(), "anchor_weight": anchor}
            self.actor_optimizer.zero_grad()
            actor_loss.backward()
            self.actor_optimizer.step()
            self.critic.requires_grad_(True)
            temperature_loss = sac.temperature_loss(self.log_alpha, logprob, self.target_entropy)
            self.temperature_optimizer.zero_grad()
            temperature_loss.backward()
            self.temperature_optimizer.step()
            stats |= {"actor_loss": actor_loss.item(), "temperature": alpha.item(), "entropy": -logprob.mean().item()}
        sac.soft_update(self.target_critic, self.critic, a.tau)
        return stats

    def _local_steps(self):
        """``rollout_steps`` steps of this process's envs, each action from the policy as the previous step's updates
        left it; yields each step's transition (observations as the buffer stores them) and the observation acted on
        (as the policy caches it)."""
        for _ in range(self.cfg.algo.rollout_steps):
            obs = self.rollout.obs
            yield self.rollout.step(self.rollout.act(obs)), obs

    def _worker_steps(self):
        """``rollout_steps`` steps of every env worker's envs, all taken with the weights of this iteration's start
        (sent to the workers first); yields them step by step like ``_local_steps``."""
        batch, self.worker_metrics = self.rollout.collect()
        for t in range(batch["action"].shape[0]):
            obs = step_of(batch["obs"], t)
            yield (obs, batch["action"][t], batch["reward"][t], batch["terminated"][t], batch["truncated"][t],
                   step_of(batch["final_obs"], t)), obs

    def _collect_and_learn(self) -> tuple[dict, dict]:
        """``rollout_steps`` steps of every env, each followed by the updates it pays for; returns the mean update
        statistics and the episodes' metrics."""
        a, n = self.cfg.algo, self.cfg.env.num_envs
        means = StatMeans()
        for transition, obs in (self._worker_steps() if self.workers else self._local_steps()):
            self.buffer.add(*transition)
            if self.counters["env_steps"] < a.learning_starts and hasattr(self.policy, "update_normalizer") \
                    and not self.pretrained:
                self.policy.update_normalizer(obs)  # statistics settle on the random phase (and demos), then stay fixed
            self.counters["env_steps"] += n
            if self.counters["env_steps"] >= a.learning_starts and len(self.buffer):
                self.owed_updates += a.utd_ratio * n
                while self.owed_updates >= 1:
                    updates = self.counters.get("updates", 0) + 1
                    means.add(self.update(step_actor=sac.steps_actor(updates, a.utd_ratio, a.actor_warmup_updates)))
                    self.counters["updates"] = updates
                    self.owed_updates -= 1
        episodes = {k: v for k, v in self.worker_metrics.items() if k != "env_steps"} if self.workers else \
            self.rollout.stats.pop_summary()
        return means.take(), episodes

    def train(self) -> dict:
        """Run to ``experiment.total_env_steps``; returns the final evaluation metrics (``{"interrupted_at":
        iteration}`` after Ctrl-C, with a checkpoint and the policy saved as it is)."""
        cfg, x = self.cfg, self.cfg.experiment
        per_iteration = cfg.algo.rollout_steps * cfg.env.num_envs
        total_iters = max(1, x.total_env_steps // per_iteration)
        self._train_start, self.eval_seconds = time.perf_counter(), 0.0
        logger = RunLogger(self.output_dir)
        bar = tqdm(total=total_iters, initial=self.iteration, disable=not x.progress, desc=x.name, unit="it",
                   dynamic_ncols=True)
        last_success = None
        if self.cfg.algo.pretrain_steps and not self.counters.get("pretrain_steps"):
            self.pretrain(logger)
        if self.acts_from_start and self.counters["env_steps"] == 0:  # not again when a resumed run goes on
            self.run_eval(logger, video=False)  # the pre-trained (or base) policy's success, at 0 env-steps
        stop = GracefulStop(enabled=True)
        with stop:
            while self.iteration < total_iters and not stop.requested:
                start = time.perf_counter()
                stats, episodes = self._collect_and_learn()
                seconds = time.perf_counter() - start
                self.iteration += 1
                if self.out_of_time():
                    total_iters = self.iteration  # the last iteration: checkpointed below, evaluated once at the end
                steps = self.counters["env_steps"]
                rollout = episodes | {"env_steps_per_s": per_iteration / max(seconds, 1e-9)}
                logger.scalars("rollout", rollout, steps)
                logger.scalars("train", stats | {"iteration_time_s": seconds}, steps)
                last_success = rollout.get("success_once", last_success)
                if x.eval_interval and self.iteration % x.eval_interval == 0 and self.iteration < total_iters:
                    last_success = self.run_eval(logger, video=x.video)["success_once"]
                    if self.solved(last_success):
                        total_iters = self.iteration
                if x.checkpoint_interval and self.iteration % x.checkpoint_interval == 0:
                    self.save_checkpoint()
                known = {} if last_success is None else {"success": f"{last_success:.2f}"}
                bar.set_postfix(known | {"fps": f"{rollout['env_steps_per_s']:.0f}", "steps": steps})
                bar.update(1)
        bar.close()
        if needs_final_checkpoint(self.output_dir, self.iteration, stop.requested, x.checkpoint_interval):
            self.save_checkpoint()
        final = self.conclude(logger, stop.requested, sft_steps=0)
        if self.workers:
            self.rollout.close()
        self.env.close()
        return final
