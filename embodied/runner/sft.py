"""``algo=sft``: supervised fine-tuning (behaviour cloning) of any policy on LeRobot datasets, evaluated in sim."""

from __future__ import annotations

import time
from contextlib import nullcontext

import torch
from tqdm import tqdm

from embodied.config.schema import TrainConfig, validate
from embodied.runner.logger import RunLogger
from embodied.runner.builders import build_env, build_policy
from embodied.data.compatibility import check_datasets
from embodied.data.scenes import SceneStream, carried_scene_problem, render_scenes, stats_with_scenes
from embodied.runner.sft_steps import demonstrations, sft_step
from embodied.runner.interrupt import GracefulStop
from embodied.runner.run import Run, refuse_reused_folder
from embodied.runner.trainer import load_initial_weights
from embodied.runner.update import set_annealed_lr
from embodied.runner.weight_average import WeightAverage


class SFTTrainer(Run):
    """The loop of ``trainer="sft"`` algorithms: minimises ``policy.sft_loss`` on batches from ``data.paths``
    (weighted by ``data.weights``); with ``algo.ema_decay`` the evaluated and saved policy is the moving average
    of the weights."""

    def __init__(self, cfg: TrainConfig):
        validate(cfg)
        super().__init__(cfg, cfg.experiment.output_dir)
        torch.set_num_threads(cfg.experiment.torch_threads)
        torch.manual_seed(cfg.experiment.seed)
        self.env = build_env(cfg, cfg.experiment.eval_num_envs, autoreset=False)  # specs and evaluation only
        self.policy = build_policy(cfg, self.env, cfg.experiment.seed)
        if cfg.init_from:
            load_initial_weights(self.policy, cfg.init_from)  # then normalised with this dataset's statistics
        check_datasets(list(cfg.data.paths), self.env, self.policy)  # features, shapes, controller, fps
        self.data = demonstrations(cfg, self.policy)
        trainable = [p for p in self.policy.parameters() if p.requires_grad]  # frozen towers stay out
        self.optimizer = torch.optim.Adam(trainable, lr=cfg.algo.learning_rate)
        self.average = WeightAverage(self.policy, cfg.algo.ema_decay) if cfg.algo.ema_decay else None
        refuse_reused_folder(self.output_dir)
        self.scenes = self._scene_stream(cfg)  # after the cheap checks: rendering takes minutes

    def _scene_stream(self, cfg: TrainConfig) -> SceneStream | None:
        """Minibatches of ``data.scene_frames`` rendered scenes for ``policy.scene_loss`` (None when 0)."""
        if not cfg.data.scene_frames:
            return None
        if not self.policy.learns_from_scenes:
            raise ValueError(f"data.scene_frames={cfg.data.scene_frames} trains an auxiliary task-state head that "
                             f"this {cfg.policy.name} policy does not have: use policy=vla with policy.aux_state_coef "
                             "> 0, or set data.scene_frames=0")
        driver = build_env(cfg, self.env.num_envs, autoreset=False, cameras=()) if cfg.data.carried_scenes else None
        try:
            problem = carried_scene_problem(driver) if driver is not None else None
            if problem:
                raise ValueError(f"data.carried_scenes=true: {problem}; set data.carried_scenes=false")
            scenes = render_scenes(self.env, cfg.data.scene_frames, cfg.experiment.seed, cfg.experiment.progress,
                                   driver)
        finally:
            if driver is not None:
                driver.close()
        self.policy.set_dataset_stats(stats_with_scenes(self.data.stats, scenes["privileged"]))
        return SceneStream(scenes, cfg.data.scene_batch, cfg.experiment.seed)

    def log_step(self) -> int:
        """The x-axis of tensorboard scalars: SFT gradient steps."""
        return self.iteration

    def train(self) -> dict:
        """Run ``algo.sft_steps`` gradient steps; returns the final evaluation metrics."""
        cfg, a = self.cfg, self.cfg.algo
        logger = RunLogger(self.output_dir)
        bar = tqdm(total=a.sft_steps, disable=not cfg.experiment.progress, desc=f"{cfg.experiment.name} sft",
                   unit="step", dynamic_ncols=True)
        self._train_start = time.perf_counter()
        with GracefulStop() as stop:
            self._sft_steps(logger, bar, stop)
        bar.close()
        if self.average is not None:
            self.average.copy_to_module()  # evaluated and saved: the averaged weights
        return self.conclude(logger, stop.requested, sft_steps=self.iteration)

    def _sft_steps(self, logger: RunLogger, bar, stop: GracefulStop) -> None:
        """Gradient steps (with evaluations) until ``algo.sft_steps`` or a requested stop."""
        cfg, a = self.cfg, self.cfg.algo
        last_success = None  # shown once an evaluation has run
        while self.iteration < a.sft_steps and not stop.requested:
            lr = set_annealed_lr(self.optimizer, a.learning_rate, self.iteration, a.sft_steps) if a.anneal_lr \
                else a.learning_rate
            scenes = next(self.scenes) if self.scenes is not None else None
            stats = sft_step(self.policy, self.optimizer, next(self.data), a.max_grad_norm, scenes, a.precision) | \
                {"learning_rate": lr}
            if self.average is not None:
                self.average.update()
            self.iteration += 1
            logger.scalars("train", stats, self.iteration)
            if a.sft_eval_interval and self.iteration % a.sft_eval_interval == 0 and self.iteration < a.sft_steps:
                with self.average.applied() if self.average is not None else nullcontext():
                    last_success = self.run_eval(logger, video=cfg.experiment.video)["success_once"]
            known = {} if last_success is None else {"success": f"{last_success:.2f}"}
            bar.set_postfix({"loss": f"{stats['sft_loss']:.4f}"} | known)
            bar.update(1)
