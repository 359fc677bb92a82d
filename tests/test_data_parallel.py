"""Data-parallel learners: gradient averaging equals the full-batch gradient; two gloo ranks stay identical."""

import os
import socket
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from embodied.algorithms.grpo import GRPOConfig
from embodied.config.schema import TrainConfig
from embodied.dist.data_parallel import average_gradients
from embodied.rollout.obs import select
from embodied.runner.trainer import Trainer
from tests.final_eval import assert_final_metrics_are_the_saved_policys


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gradient_rank(rank: int, port: int, out: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 2)
    x = torch.arange(24, dtype=torch.float32).view(8, 3) / 10
    layer(x[rank * 4:(rank + 1) * 4]).pow(2).mean().backward()  # each rank: its half of the batch
    average_gradients(layer.parameters())
    out[rank] = [p.grad.clone() for p in layer.parameters()]
    dist.destroy_process_group()


def test_averaged_half_batch_gradients_equal_the_full_batch_gradient():
    out = mp.Manager().dict()
    mp.spawn(_gradient_rank, args=(_free_port(), out), nprocs=2)
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 2)
    layer(torch.arange(24, dtype=torch.float32).view(8, 3) / 10).pow(2).mean().backward()
    for rank in (0, 1):
        for got, want in zip(out[rank], [p.grad for p in layer.parameters()]):
            torch.testing.assert_close(got, want)


def _training_rank(rank: int, port: int, folder: str, out: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    cfg = TrainConfig()
    cfg.env.num_envs, cfg.algo.rollout_steps = 8, 10
    cfg.experiment.total_env_steps, cfg.experiment.eval_interval, cfg.experiment.checkpoint_interval = 480, 0, 0
    cfg.experiment.eval_episodes = cfg.experiment.eval_num_envs = 4
    cfg.experiment.progress, cfg.experiment.output_dir = False, folder
    trainer = Trainer(cfg)
    first_obs = trainer.collector.obs["privileged"].clone()  # the goals
    metrics = trainer.train()
    out[rank] = {"weights": {k: v.clone() for k, v in trainer.policy.state_dict().items()}, "metrics": metrics,
                 "env_steps": trainer.counters["env_steps"], "first_obs": first_obs}
    dist.destroy_process_group()


def test_two_data_parallel_ranks_train_identical_replicas_on_different_envs(tmp_path):
    out = mp.Manager().dict()
    mp.spawn(_training_rank, args=(_free_port(), str(tmp_path), out), nprocs=2)
    a, b = out[0], out[1]
    assert all(torch.equal(a["weights"][k], b["weights"][k]) for k in a["weights"])  # one model, two ranks
    assert a["env_steps"] == b["env_steps"] == 240  # the 480-step budget is shared
    assert not torch.equal(a["first_obs"], b["first_obs"])  # each rank simulates its own episodes
    assert b["metrics"] == {}  # rank 0 evaluates, and its metrics are those of the policy it saved
    cfg = TrainConfig()
    cfg.experiment.eval_episodes = cfg.experiment.eval_num_envs = 4
    cfg.experiment.output_dir = str(tmp_path)
    assert_final_metrics_are_the_saved_policys(cfg, a["metrics"])
    assert (tmp_path / "final_policy").is_dir() and not (tmp_path / "rank1" / "final_policy").exists()


def _grpo_rank(rank: int, port: int, folder: str, out: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    cfg = TrainConfig()
    cfg.algo = GRPOConfig(group_size=4, groups_per_batch=2, dynamic_sampling=False)
    cfg.env.num_envs, cfg.env.max_episode_steps = 8, 20
    cfg.experiment.total_env_steps, cfg.experiment.eval_interval, cfg.experiment.checkpoint_interval = 960, 0, 0
    cfg.experiment.eval_episodes = cfg.experiment.eval_num_envs = 4
    cfg.experiment.progress, cfg.experiment.output_dir = False, folder
    trainer = Trainer(cfg)
    collect, sizes = trainer.collector.collect, []

    def uneven_collect():  # rank 1 finds no informative group in iteration 2; elsewhere the ranks' sizes differ
        batch, metrics = collect()
        if rank == 1 and len(sizes) == 1:
            batch = {}
        if batch and rank == 0:  # one step fewer: another number of samples than rank 1
            batch = {key: (select(value, slice(1, None)) if key == "obs" else value[1:]) for key, value in batch.items()}
        sizes.append(len(batch["action"]) if batch else 0)
        return batch, metrics

    trainer.collector.collect = uneven_collect
    trainer.train()
    out[rank] = {"weights": {k: v.clone() for k, v in trainer.policy.state_dict().items()}, "sizes": sizes,
                 "iterations": trainer.iteration}
    dist.destroy_process_group()


def test_data_parallel_grpo_with_uneven_and_empty_batches_completes_with_identical_replicas(tmp_path):
    """GRPO ranks keep different numbers of steps (and one may keep none): the update must make the same collective
    calls on every rank, or the ranks hang waiting for each other (the test gives them two minutes)."""
    out = mp.Manager().dict()
    context = mp.spawn(_grpo_rank, args=(_free_port(), str(tmp_path), out), nprocs=2, join=False)
    deadline = time.monotonic() + 120
    while not context.join(timeout=max(deadline - time.monotonic(), 0.1)):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            raise AssertionError("data-parallel GRPO hung: the ranks made different numbers of collective calls")
    a, b = out[0], out[1]
    assert a["iterations"] == b["iterations"] == 3
    assert a["sizes"][0] != b["sizes"][0] and b["sizes"][1] == 0 < a["sizes"][1]  # the case under test happened
    assert all(torch.equal(a["weights"][k], b["weights"][k]) for k in a["weights"])  # still one model
