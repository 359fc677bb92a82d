"""Data-parallel learners: gradient averaging equals the full-batch gradient; two gloo ranks stay identical."""

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from embodied.config.schema import TrainConfig
from embodied.dist.data_parallel import average_gradients
from embodied.runner.trainer import Trainer


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
    assert b["metrics"] == {} and 0.0 <= a["metrics"]["success_once"] <= 1.0  # rank 0 evaluates
    assert (tmp_path / "final_policy").is_dir() and not (tmp_path / "rank1" / "final_policy").exists()
