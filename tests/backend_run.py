"""A few PPO iterations through the trainer on another simulator backend: weights move, checkpoints write."""

import torch

from embodied.config.schema import TrainConfig
from embodied.runner.trainer import Trainer
from tests.final_eval import assert_final_metrics_are_the_saved_policys


def train_briefly(tmp_path, backend: str, task: str, num_envs: int, rollout_steps: int, **env_settings) -> None:
    """Two iterations of PPO on ``backend`` (``env_settings``: other ``env.*`` values); asserts the step count, a
    learning update and checkpoints."""
    cfg = TrainConfig()
    cfg.env.backend, cfg.env.task, cfg.env.num_envs = backend, task, num_envs
    for key, value in env_settings.items():
        setattr(cfg.env, key, value)
    cfg.algo.rollout_steps = rollout_steps
    steps = 2 * num_envs * rollout_steps
    cfg.experiment.total_env_steps, cfg.experiment.eval_interval, cfg.experiment.checkpoint_interval = steps, 0, 1
    cfg.experiment.eval_episodes = cfg.experiment.eval_num_envs = 2
    cfg.experiment.progress, cfg.experiment.output_dir = False, str(tmp_path)
    trainer = Trainer(cfg)
    before = trainer.policy.actor[0].weight.clone()
    metrics = trainer.train()
    assert trainer.counters["env_steps"] == steps
    assert_final_metrics_are_the_saved_policys(cfg, metrics)
    assert not torch.equal(before, trainer.policy.actor[0].weight)
    assert (tmp_path / "checkpoints" / "iter_000002" / "trainer_state.pt").is_file()  # env snapshots work
