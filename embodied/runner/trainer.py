"""The training loop behind ``embodied-train``: collect, update, log, evaluate, checkpoint, resume."""

from __future__ import annotations

import copy
import os
import time

import torch
from tqdm import tqdm

from embodied.algorithms.registry import COLLECTORS, get_loss
from embodied.config.schema import TrainConfig, validate
from embodied.data.batches import DemoStream
from embodied.data.compatibility import check_datasets
from embodied.dist.collector import make_collector
from embodied.dist.data_parallel import init_from_env, min_over_ranks, sync_from_rank0
from embodied.rollout.merge import sub_seed
from embodied.runner.builders import build_env, build_policy, load_teacher
from embodied.runner.checkpoint import (load_checkpoint, needs_final_checkpoint, resume_latest, run_identity,
                                        save_checkpoint)
from embodied.runner.interrupt import GracefulStop
from embodied.runner.logger import RunLogger
from embodied.runner.run import Run, refuse_reused_folder
from embodied.runner.sft_steps import sft_stage
from embodied.runner.update import set_annealed_lr, update_policy
from policies.base import from_pretrained


def load_initial_weights(policy, path: str) -> None:
    """``init_from``: copy the weights of a saved policy of the same type and shape into ``policy``."""
    if not os.path.isdir(path):
        raise FileNotFoundError(f"init_from={path!r} does not exist: pass a directory written by save_pretrained")
    source = from_pretrained(path)
    if source.policy_type != policy.policy_type:
        raise ValueError(f"init_from={path!r} holds a {source.policy_type!r} policy, this run trains "
                         f"{policy.policy_type!r}")
    policy.load_state_dict(policy.initial_state_from(source.state_dict()))


def explained_variance(predicted: torch.Tensor, target: torch.Tensor) -> float:
    """1 - Var(target - predicted) / Var(target) (nan when the target is constant)."""
    var = target.var()
    return float("nan") if var == 0 else float(1 - (target - predicted).var() / var)


class Trainer(Run):
    """The RL loop (``trainer="rl"`` algorithms): owns env, policy, optimizer and collector for one run;
    ``train()`` returns the final eval metrics."""

    resumable = True  # resume=true continues a run from its checkpoints

    def __init__(self, cfg: TrainConfig):
        validate(cfg)
        # data-parallel learners under torchrun (one GPU each when experiment.device is cuda); (0, 1) otherwise
        self.rank, self.world = init_from_env(cfg.experiment.device)
        super().__init__(cfg, cfg.experiment.output_dir if self.rank == 0 else
                         os.path.join(cfg.experiment.output_dir, f"rank{self.rank}"))  # rank 0 evaluates, saves
        if self.world > 1 and (cfg.resume or cfg.dist.backend != "single" or cfg.algo.sft_stage_steps):
            raise ValueError("data-parallel learners (WORLD_SIZE > 1) run with dist=single, without resume and "
                             "without an SFT stage for now: drop resume=true / dist=ray, run the SFT stage first "
                             "(algo=sft, then init_from=<its final_policy>), or run one process")
        if self.world > 1 and cfg.experiment.stop_at_success is not None:
            raise ValueError("experiment.stop_at_success ends a run on rank 0's evaluation, which the other "
                             "data-parallel learners do not see: set experiment.stop_at_success=null under torchrun")
        if self.world > 1 and cfg.experiment.time_limit_s is not None:
            raise ValueError("experiment.time_limit_s would end data-parallel learners after different iterations: "
                             "set experiment.time_limit_s=null under torchrun")
        if self.world > 1 and ":" in cfg.experiment.device:
            raise ValueError(f"experiment.device={cfg.experiment.device!r} under torchrun would put every rank on "
                             "one GPU: use experiment.device=cuda (each rank takes the GPU of its LOCAL_RANK)")
        torch.set_num_threads(cfg.experiment.torch_threads)
        self.update_threads = cfg.experiment.update_threads or os.cpu_count() or 1
        torch.manual_seed(cfg.experiment.seed)
        collector = COLLECTORS.lookup(cfg.algo.collector)
        classic = cfg.dist.backend == "single" and cfg.dist.pipeline_stages == 1  # the collector steps this env
        self.env = build_env(cfg, cfg.env.num_envs, autoreset=collector.autoreset, num_threads=None if classic else 1)
        self.policy = build_policy(cfg, self.env, cfg.experiment.seed)
        if cfg.init_from:
            load_initial_weights(self.policy, cfg.init_from)
        seed = cfg.experiment.seed
        if self.world > 1:  # same weights everywhere, different envs and action noise per rank
            sync_from_rank0(self.policy)
            seed = sub_seed(seed, self.rank)
            torch.manual_seed(seed)
        trainable = [p for p in self.policy.parameters() if p.requires_grad]  # frozen bases and towers stay out
        # foreach: one op per step over all tensors (torch picks it on GPUs only; on 2 CPU cores it is ~20% faster too)
        self.optimizer = torch.optim.Adam(trainable, lr=cfg.algo.learning_rate, eps=1e-5, foreach=True)
        self.critic_optimizer = None  # the value function alone, for algo.critic_warmup_iterations
        if cfg.algo.critic_warmup_iterations:
            self.critic_optimizer = torch.optim.Adam(self.policy.critic_parameters(), lr=cfg.algo.learning_rate,
                                                     eps=1e-5, foreach=True)
        self.teacher = load_teacher(cfg)  # a loss that distils: the frozen teacher is the reference
        self.collector = make_collector(cfg, self.env, self.policy, self.teacher)  # rollouts keep its inputs
        self.reference = self.teacher  # the policy the loss compares with: a teacher, a frozen copy of this one, none
        if get_loss(cfg.algo.loss).kl_term and cfg.algo.kl_coef > 0:
            self.reference = copy.deepcopy(self.policy).eval()
        demos = [*(cfg.data.paths if cfg.algo.sft_stage_steps else []),
                 *(cfg.data.anchor_paths if cfg.algo.anchor_coef > 0 else [])]
        check_datasets(demos, self.env, self.policy)  # features, shapes, controller, fps: before anything trains
        self.anchor = None
        if cfg.algo.anchor_coef > 0:
            self.anchor = DemoStream(list(cfg.data.anchor_paths), list(cfg.data.anchor_weights), cfg.algo.batch_size,
                                     self.policy.chunk_size, cfg.experiment.seed)
        self.stage1_metrics: dict | None = None  # evaluation after the SFT stage (algo.sft_stage_steps)
        self.collector.start(seed)
        if cfg.resume:
            path = self._resume()
            print(f"resumed from {path} at iteration {self.iteration}")
        elif self.rank == 0:
            refuse_reused_folder(self.output_dir)

    def _resume(self) -> str:
        """Load the newest readable checkpoint (a damaged one is named and skipped); returns its path."""
        return resume_latest(self.output_dir, self._load_checkpoint)

    def _load_checkpoint(self, path: str) -> None:
        """Restore this run from the checkpoint at ``path`` (CorruptCheckpoint when a file cannot be read)."""
        self.iteration, self.counters, extra = load_checkpoint(
            path, self.policy, self.optimizer, self.collector, run_identity(self.cfg), self.own_reference)
        if self.own_reference is not None and not os.path.isdir(os.path.join(path, "reference")):
            self.own_reference.load_state_dict(self.policy.state_dict())  # written before references were saved
        if self.critic_optimizer is not None and "critic_optimizer" in extra:
            self.critic_optimizer.load_state_dict(extra["critic_optimizer"])
        if self.anchor is not None and "anchor_rng" in extra:
            self.anchor.generator.set_state(extra["anchor_rng"])  # the next demonstration batches, as before

    @property
    def own_reference(self):
        """The KL reference this run keeps (the starting policy, or the one at the last reset); None with a
        teacher (loaded from its own folder) or without a reference."""
        return self.reference if self.teacher is None else None

    def _save_checkpoint(self) -> None:
        """Everything ``resume=true`` needs to continue exactly from this iteration."""
        extra = {}
        if self.critic_optimizer is not None:
            extra["critic_optimizer"] = self.critic_optimizer.state_dict()
        if self.anchor is not None:
            extra["anchor_rng"] = self.anchor.generator.get_state()
        save_checkpoint(os.path.join(self.output_dir, "checkpoints"), self.iteration, self.policy, self.optimizer,
                        self.collector, self.counters, run_identity(self.cfg), self.own_reference, extra)

    def _iterations(self) -> int:
        per_iter = COLLECTORS.lookup(self.cfg.algo.collector).env_steps_per_iteration(
            self.cfg.algo, self.env.num_envs, self.env.max_episode_steps, self.policy.chunk_size)
        return max(1, self.cfg.experiment.total_env_steps // (per_iter * self.world))  # the budget of all ranks

    def _run_sft_stage(self, logger: RunLogger) -> float:
        """RL-Co stage 1: SFT on ``data.paths`` in this run, evaluated and saved; returns its eval success."""
        sft_stage(self.cfg, self.policy, logger)
        if self.own_reference is not None:
            self.own_reference.load_state_dict(self.policy.state_dict())  # the KL anchor is the SFT policy
        self.policy.save_pretrained(os.path.join(self.output_dir, "stage1_policy"))
        metrics = self.run_eval(logger, video=self.cfg.experiment.video)  # at env step 0: the SFT policy
        self.stage1_metrics = metrics
        return metrics["success_once"]

    def train(self) -> dict:
        """Run to ``experiment.total_env_steps``; returns the final evaluation metrics (empty on ranks > 0;
        ``{"interrupted_at": iteration}`` after Ctrl-C, with a checkpoint and final_policy written)."""
        cfg, x = self.cfg, self.cfg.experiment
        total_iters = self._iterations()
        self._train_start, self.eval_seconds = time.perf_counter(), 0.0
        logger = RunLogger(self.output_dir)
        bar = tqdm(total=total_iters, initial=self.iteration, disable=not x.progress or self.rank > 0,
                   desc=cfg.experiment.name, unit="it", dynamic_ncols=True)
        last_success = None  # shown once known: an evaluation, or episodes that ended in a rollout
        if cfg.algo.sft_stage_steps and self.iteration == 0:
            last_success = self._run_sft_stage(logger)
            if self.solved(last_success):
                total_iters = 0  # experiment.stop_at_success: the SFT policy already reaches it
        stop = GracefulStop(enabled=self.world == 1)
        with stop:
            self._train_iterations(total_iters, logger, bar, last_success, stop)
        bar.close()
        lead = self.rank == 0
        if lead and needs_final_checkpoint(self.output_dir, self.iteration, stop.requested, x.checkpoint_interval):
            self._save_checkpoint()
        final = self.conclude(logger, stop.requested, cfg.algo.sft_stage_steps, lead)
        if hasattr(self.collector, "close"):
            self.collector.close()
        return final

    def _every_rank_can_update(self, batch: dict) -> bool:
        """Whether this iteration updates: a batch here and, under data parallelism, at least
        ``algo.num_minibatches`` samples on every rank (GRPO ranks keep different numbers of steps, or none; all
        ranks must skip or update together, with the same number of gradient all-reduces)."""
        size = len(batch["action"]) if batch else 0
        return min_over_ranks(size) >= (self.cfg.algo.num_minibatches if self.world > 1 else 1)

    def _train_iterations(self, total_iters: int, logger: RunLogger, bar, last_success, stop: GracefulStop) -> None:
        """Collect, update, log, evaluate and checkpoint until ``total_iters`` or a requested stop."""
        cfg, x = self.cfg, self.cfg.experiment
        while self.iteration < total_iters and not stop.requested:
            start = time.perf_counter()
            batch, rollout = self.collector.collect()
            collect_time = time.perf_counter() - start
            collected = rollout.pop("env_steps")
            self.counters["env_steps"] += collected
            rollout["env_steps_per_s"] = collected / max(collect_time, 1e-9)
            start = time.perf_counter()
            torch.set_num_threads(self.update_threads)  # the simulator is idle now: use every core
            warming = self.iteration < cfg.algo.critic_warmup_iterations  # actor held, critic catches up
            if cfg.algo.anneal_lr:
                for optimizer in (self.optimizer, self.critic_optimizer):
                    if optimizer is not None:
                        set_annealed_lr(optimizer, cfg.algo.learning_rate, self.iteration, total_iters)
            stats = update_policy(self.policy, self.critic_optimizer if warming else self.optimizer, batch,
                                  cfg.algo, self.reference, None if warming else self.anchor) \
                if self._every_rank_can_update(batch) else {"skipped_update": 1.0}
            torch.set_num_threads(x.torch_threads)
            update_time = time.perf_counter() - start
            if not cfg.algo.freeze_normalizer and hasattr(self.policy, "update_normalizer"):
                if batch:
                    self.policy.update_normalizer(batch["obs"])
                sync_from_rank0(self.policy, buffers_only=True)  # data-parallel ranks follow rank 0's statistics
            self.iteration += 1
            if self.out_of_time():
                total_iters = self.iteration  # the last iteration: checkpointed below, evaluated once by conclude()
            if self.own_reference is not None and cfg.algo.ref_reset_interval and \
                    self.iteration % cfg.algo.ref_reset_interval == 0:
                self.reference.load_state_dict(self.policy.state_dict())
            if "returns" in batch:
                stats["explained_variance"] = explained_variance(batch["old_values"], batch["returns"])
            steps = self.counters["env_steps"]
            logger.scalars("rollout", rollout, steps)
            logger.scalars("train", stats | {"update_time_s": update_time, "collect_time_s": collect_time}, steps)
            if "success_once" in rollout:
                last_success = rollout["success_once"]
            lead = self.rank == 0
            if lead and x.eval_interval and self.iteration % x.eval_interval == 0 and self.iteration < total_iters:
                last_success = self.run_eval(logger, video=x.video)["success_once"]
                if self.solved(last_success):
                    total_iters = self.iteration  # ends the loop (one learner: checked when the run is built)
            if lead and x.checkpoint_interval and self.iteration % x.checkpoint_interval == 0:
                self._save_checkpoint()
            known = {} if last_success is None else {"success": f"{last_success:.2f}"}
            bar.set_postfix(known | {"fps": f"{rollout['env_steps_per_s']:.0f}", "steps": steps})
            bar.update(1)
