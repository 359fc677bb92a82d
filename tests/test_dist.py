"""Env workers: local and Ray pools give identical runs (on-policy and off-policy), a dead Ray worker is restarted,
pipelined rollouts."""

import pytest
import torch

from embodied.algorithms.grpo import GRPOConfig
from embodied.algorithms.sac import SACConfig
from embodied.config.schema import TrainConfig, validate
from embodied.rollout.merge import merge_metrics
from embodied.runner.loops import make_trainer
from embodied.runner.trainer import Trainer
from tests.final_eval import assert_final_metrics_are_the_saved_policys


def config(tmp_path, backend: str, workers: int = 2, stages: int = 1) -> TrainConfig:
    cfg = TrainConfig()
    cfg.env.num_envs = 8
    cfg.algo.rollout_steps = 10
    cfg.experiment.total_env_steps = 240  # 3 iterations
    cfg.experiment.eval_interval = 0
    cfg.experiment.eval_episodes = 4
    cfg.experiment.eval_num_envs = 4
    cfg.experiment.checkpoint_interval = 0
    cfg.experiment.progress = False
    cfg.experiment.output_dir = str(tmp_path / backend)
    cfg.dist.backend, cfg.dist.num_env_workers, cfg.dist.pipeline_stages = backend, workers, stages
    cfg.dist.num_cpus = 2
    return cfg


def weights(trainer) -> dict:
    return {k: v.clone() for k, v in trainer.policy.state_dict().items()}


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def grpo(cfg: TrainConfig) -> TrainConfig:
    """GRPO groups of 2 on sparse Reach: 2 groups per batch, one per worker."""
    cfg.algo = GRPOConfig(group_size=2, groups_per_batch=2, max_sampling_rounds=1, dynamic_sampling=False)
    cfg.experiment.total_env_steps = 2 * 2 * 2 * 50  # 2 iterations of whole 50-step episodes
    return cfg


def sac(cfg: TrainConfig) -> TrainConfig:
    """SAC on Reach: 40 random env-steps (20 in each worker), then half an update per env-step into its buffer."""
    cfg.algo = SACConfig(rollout_steps=10, learning_starts=40, batch_size=16)
    cfg.policy.name = "tanh_mlp"
    return cfg


SETUPS = {"ppo": lambda cfg: cfg, "grpo": grpo, "sac": sac}


@pytest.mark.parametrize("algo", SETUPS)
def test_ray_workers_train_exactly_like_local_workers(tmp_path, ray_cluster, algo):
    setup = SETUPS[algo]
    local = make_trainer(setup(config(tmp_path, "local")))
    local.train()
    remote = make_trainer(setup(config(tmp_path, "ray")))
    remote.train()
    assert remote.counters == local.counters
    a, b = weights(local), weights(remote)
    assert all(torch.equal(a[k], b[k]) for k in a)
    untrained = make_trainer(setup(config(tmp_path / "fresh", "local"))).policy.state_dict()
    assert not torch.equal(a["actor.0.weight"], untrained["actor.0.weight"])
    if algo == "sac":  # every env's steps reached the learner's buffer (30 of each of 8 envs), each paid for with
        # half an update from the step that reaches the 40 random env-steps on (that step's 8 env-steps too)
        assert local.buffer.steps == 30 and local.counters["updates"] == (240 - 40) * 0.5 + 4


def test_a_killed_ray_worker_is_restarted_and_the_run_continues(tmp_path, ray_cluster):
    cfg = config(tmp_path, "ray")
    trainer = Trainer(cfg)
    ray_cluster.kill(trainer.collector.pool.workers[0], no_restart=False)
    metrics = trainer.train()
    assert trainer.collector.pool.restarts == [1, 0]
    assert trainer.counters["env_steps"] == 240
    assert_final_metrics_are_the_saved_policys(cfg, metrics)


def test_pipelined_rollout_equals_two_workers_of_half_the_envs(tmp_path):
    """Two pipeline stages are two env halves seeded like two workers; only the action noise stream differs, so
    with the noise scaled away (log-std -30) the whole rollouts agree, step for step."""
    cfg = config(tmp_path, "single", workers=1, stages=2)
    cfg.policy.init_log_std = -30.0
    trainer = Trainer(cfg)
    batch, metrics = trainer.collector.collect()
    assert batch["action"].shape == (8 * 10, 1, trainer.env.action_spec.dim)
    assert metrics["env_steps"] == 80
    workers_cfg = config(tmp_path, "local")
    workers_cfg.policy.init_log_std = -30.0
    w_batch, _ = Trainer(workers_cfg).collector.collect()
    pipelined = batch["obs"]["state"].view(2, 10, 4, -1)  # [stage, step, env, S]: stage A's rollout, then B's
    by_worker = w_batch["obs"]["state"].view(2, 10, 4, -1)  # worker 0's rollout, then worker 1's
    assert torch.equal(pipelined[:, 0], by_worker[:, 0])  # same seeds: same initial states
    torch.testing.assert_close(pipelined, by_worker, atol=1e-5, rtol=0)  # and the same episodes throughout
    assert (pipelined[:, 1:] - pipelined[:, :-1]).abs().max() > 0.01  # the arms moved
    assert not torch.equal(pipelined[0], pipelined[1])  # the two stages run different episodes


@pytest.mark.parametrize("backend,workers,stages,algo", [("local", 2, 1, "ppo"), ("single", 1, 2, "ppo"),
                                                          ("local", 2, 1, "sac")])
def test_worker_and_pipelined_runs_resume_exactly(tmp_path, backend, workers, stages, algo):
    def run(folder: str, steps: int, resume: bool = False):
        cfg = SETUPS[algo](config(tmp_path / folder, backend, workers, stages))
        cfg.experiment.total_env_steps, cfg.experiment.checkpoint_interval, cfg.resume = steps, 1, resume
        trainer = make_trainer(cfg)
        trainer.train()
        return weights(trainer)

    full = run("full", 240)
    run("part", 160)
    resumed = run("part", 240, resume=True)
    assert all(torch.equal(full[k], resumed[k]) for k in full)


def test_merged_metrics_weight_episodes():
    merged = merge_metrics([{"success_once": 1.0, "episodes": 1, "env_steps": 10},
                            {"success_once": 0.0, "episodes": 3, "env_steps": 10}, {"env_steps": 5}])
    assert merged == {"env_steps": 25, "success_once": 0.25, "episodes": 4}


@pytest.mark.parametrize("field,value,match", [
    ("backend", "slurm", "dist.backend"), ("num_env_workers", 3, "split evenly"),
    ("pipeline_stages", 3, "pipeline_stages"),
])
def test_bad_dist_settings_are_clear_errors(field, value, match):
    cfg = TrainConfig()
    cfg.dist.backend = "ray"
    setattr(cfg.dist, field, value)
    with pytest.raises(ValueError, match=match):
        validate(cfg)


def test_frozen_towers_go_to_each_worker_once(tmp_path):
    cfg = config(tmp_path, "local")
    cfg.policy.name, cfg.policy.chunk_size = "vla", 1
    cfg.policy.head = {"name": "gaussian"}
    cfg.policy.vision, cfg.policy.language = {"name": "tiny", "freeze": True}, {"name": "tiny", "freeze": True}
    cfg.policy.fusion = {"hidden_size": 32, "layers": 1, "heads": 2, "intermediate_size": 64}
    cfg.env.cameras, cfg.env.image_size, cfg.env.num_envs, cfg.algo.rollout_steps = ["front"], [32, 32], 4, 5
    cfg.experiment.total_env_steps = 60  # 3 iterations
    trainer = Trainer(cfg)
    worker = trainer.collector.pool.workers[0]
    sent: list[set] = []
    receive = worker.set_weights
    worker.set_weights = lambda state: (sent.append(set(state)), receive(state))
    trainer.train()
    assert len(sent) == 3 and "vision.net.0.weight" in sent[0]
    assert all("vision.net.0.weight" not in keys and "queries" in keys for keys in sent[1:])
    learner, copy = trainer.policy.state_dict(), worker.policy.state_dict()
    towers = [k for k in learner if k.startswith(("vision.", "language."))]
    assert towers and all(torch.equal(learner[k], copy[k]) for k in towers)  # the learner's towers, sent once
