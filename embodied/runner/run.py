"""What every training run shares, whatever its algorithm: bookkeeping, evaluation in simulation, the folder
it writes, and how it ends (evaluated and saved, or saved as it is after Ctrl-C)."""

from __future__ import annotations

import os
import time

from embodied.config.schema import TrainConfig
from embodied.rollout.evaluate import evaluate
from embodied.runner.builders import build_env
from embodied.runner.logger import RunLogger
from embodied.runner.summary import run_summary, write_summary


def refuse_reused_folder(output_dir: str) -> None:
    """A new run (resume=false) must not write into a folder that holds another run's policy or checkpoints."""
    held = [name for name in ("final_policy", "checkpoints") if os.path.exists(os.path.join(output_dir, name))]
    if held:
        raise FileExistsError(f"{output_dir} already holds a run ({' and '.join(held)}): resume=true continues it, "
                              "experiment.name=<new name> starts another beside it, or delete the folder")


class Run:
    """Bookkeeping of one run: iteration, counters, evaluation history and timing; ``env`` and ``policy`` are set
    by the trainer that builds them (``Trainer`` for RL, ``SFTTrainer`` for datasets)."""

    resumable = False  # whether resume=true can continue this kind of run (SFT runs are short: no checkpoints)

    def __init__(self, cfg: TrainConfig, output_dir: str):
        self.cfg = cfg
        self.output_dir = output_dir
        self.iteration = 0
        self.counters = {"env_steps": 0}
        self.eval_history: list[dict] = []  # env_steps, training seconds (evaluation excluded), metrics
        self._train_start = time.perf_counter()
        self.eval_seconds = 0.0
        self.summary_path: str | None = None  # <run>/summary.json once train() has finished (rank 0)

    def log_step(self) -> int:
        """The x-axis of tensorboard scalars: env-steps for RL."""
        return self.counters["env_steps"]

    def run_eval(self, logger: RunLogger | None, video: bool) -> dict:
        """Evaluate the current policy on fresh envs (same episodes every time)."""
        x = self.cfg.experiment
        started = time.perf_counter()
        training_seconds = started - self._train_start - self.eval_seconds
        camera = x.video_cameras[0] if video and x.video_cameras else None
        env = build_env(self.cfg, x.eval_num_envs, autoreset=False)
        if camera not in self.cfg.env.cameras and not hasattr(env, "render_frames"):
            camera = None  # a backend that renders only the cameras it observes (ManiSkill): video of those only
        metrics, frames = evaluate(self.policy, env, x.eval_episodes, x.eval_seed, video_camera=camera)
        env.close()
        self.eval_seconds += time.perf_counter() - started
        self.eval_history.append({"env_steps": self.counters["env_steps"], "step": self.log_step(),
                                  "seconds": training_seconds, **metrics})
        if logger is not None:
            logger.scalars("eval", metrics, self.log_step())
            if frames:
                logger.video(f"eval_iter_{self.iteration:06d}", frames, fps=20)
        return metrics

    def solved(self, success: float | None) -> bool:
        """Whether ``experiment.stop_at_success`` is set and an evaluation's ``success`` reached it."""
        threshold = self.cfg.experiment.stop_at_success
        return threshold is not None and success is not None and success >= threshold

    def out_of_time(self) -> bool:
        """Whether ``experiment.time_limit_s`` is set and that many seconds have passed since train() began."""
        limit = self.cfg.experiment.time_limit_s
        return limit is not None and time.perf_counter() - self._train_start >= limit

    def finish(self, final: dict, wall_seconds: float, sft_steps: int) -> None:
        """Save the final policy and write ``summary.json`` (after the final evaluation, on rank 0)."""
        self.policy.save_pretrained(os.path.join(self.output_dir, "final_policy"))
        summary = run_summary(self.cfg, self.eval_history, final, self.counters, sft_steps, wall_seconds,
                              self.eval_seconds)
        self.summary_path = write_summary(self.cfg, summary)

    def conclude(self, logger: RunLogger, interrupted: bool, sft_steps: int, lead: bool = True) -> dict:
        """End the run: after Ctrl-C save the policy as it is (no final evaluation) and return
        ``{"interrupted_at": iteration}``; otherwise evaluate, save and write the summary (on the ``lead`` rank;
        other data-parallel ranks return ``{}``)."""
        final = {"interrupted_at": self.iteration} if interrupted else {}
        if lead and interrupted:
            self.policy.save_pretrained(os.path.join(self.output_dir, "final_policy"))
        elif lead:
            final = self.run_eval(logger, video=self.cfg.experiment.video)
            self.finish(final, time.perf_counter() - self._train_start, sft_steps)
        logger.close()
        return final
