"""The learner runs on ``experiment.device``: bad devices are clear errors, and learner code never creates a
tensor on torch's default device, so a run on a GPU finds every tensor it combines on that GPU.

This machine has no GPU, so the second point is checked where it can go wrong: every tensor factory called
from learner code (collectors, evaluation, update, algorithms, policies) while it trains must name its device.
"""

import inspect
import os

import pytest
import torch
from torch.overrides import TorchFunctionMode

from embodied.algorithms import ALGORITHMS
from embodied.config.schema import TrainConfig, validate
from embodied.rollout.device_bridge import learner_device
from embodied.runner.trainer import Trainer
from policies.mlp import MLPPolicy
from sims import make_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LEARNER_CODE = [os.path.join(ROOT, *parts) for parts in
                (("embodied", "rollout"), ("embodied", "runner"), ("embodied", "algorithms"), ("policies",))]
FACTORIES = {torch.zeros, torch.ones, torch.empty, torch.full, torch.arange, torch.randperm, torch.tensor,
             torch.rand, torch.randn, torch.randint, torch.linspace, torch.eye}


class ImplicitDeviceFactories(TorchFunctionMode):
    """Records learner-code call sites of tensor factories that leave the device to torch's default."""

    def __init__(self):
        super().__init__()
        self.sites: set[str] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in FACTORIES and "device" not in kwargs:
            caller = inspect.stack(context=0)[1]
            if any(caller.filename.startswith(folder) for folder in LEARNER_CODE):
                self.sites.add(f"{os.path.relpath(caller.filename, ROOT)}:{caller.lineno}")
        return func(*args, **kwargs)


def config(tmp_path, **overrides) -> TrainConfig:
    cfg = TrainConfig()
    if "algo__name" in overrides:  # as algo=<name>: that algorithm's own config
        cfg.algo = ALGORITHMS.lookup(overrides["algo__name"]).config()
    cfg.experiment.output_dir, cfg.experiment.progress = str(tmp_path), False
    cfg.experiment.eval_episodes, cfg.experiment.eval_num_envs, cfg.experiment.eval_interval = 4, 4, 1
    cfg.env.num_envs, cfg.algo.rollout_steps = 8, 4
    for dotted, value in overrides.items():
        section, key = dotted.split("__")
        setattr(getattr(cfg, section), key, value)
    cfg.experiment.total_env_steps = 2 * (cfg.env.num_envs * cfg.algo.rollout_steps * cfg.policy.chunk_size
                                          if cfg.algo.collector == "steps" else
                                          cfg.algo.groups_per_batch * cfg.algo.group_size * cfg.env.max_episode_steps)
    return cfg


TINY_VLA = {"policy__name": "vla", "policy__chunk_size": 2, "policy__vision": {"name": "tiny", "freeze": True},
            "policy__language": {"name": "tiny", "freeze": True}, "env__cameras": ["front"],
            "env__image_size": [32, 32], "policy__fusion": {"hidden_size": 32, "layers": 1, "heads": 2,
                                                            "intermediate_size": 64}}
RUNS = {
    "ppo_mlp": {},
    "grpo_mlp": {"algo__name": "grpo", "algo__collector": "groups", "algo__advantage": "grpo", "algo__loss": "grpo",
                 "algo__group_size": 4, "algo__groups_per_batch": 2, "env__reward_mode": "sparse",
                 "env__max_episode_steps": 10},
    "grpo_mlp_kl_checkpoint": {"algo__name": "grpo", "algo__collector": "groups", "algo__advantage": "grpo",
                               "algo__loss": "grpo", "algo__group_size": 4, "algo__groups_per_batch": 2,
                               "env__max_episode_steps": 10, "algo__kl_coef": 0.1,
                               "experiment__checkpoint_interval": 1},
    "ppo_vla_token": TINY_VLA | {"policy__head": {"name": "token"}},
    "ppo_vla_flow": TINY_VLA | {"policy__head": {"name": "flow"}},
    "ppo_residual_over_chunked_base": {"policy__name": "residual", "env__task": "PickCube"},
}


def saved_chunked_base(tmp_path) -> str:
    """An MLP base with action chunks of 2 (the residual replays its chunk step by step), saved to disk."""
    env = make_env(task="PickCube", num_envs=2)
    obs, _ = env.reset(seed=0)
    base = MLPPolicy.for_env({"hidden": [16], "chunk_size": 2}, env.observation_spec, env.action_spec, obs)
    base.save_pretrained(str(tmp_path / "base"))
    return str(tmp_path / "base")


@pytest.mark.parametrize("run", sorted(RUNS))
def test_learner_code_names_the_device_of_every_tensor_it_creates(tmp_path, run):
    cfg = config(tmp_path, **RUNS[run])
    if cfg.policy.name == "residual":
        cfg.base = saved_chunked_base(tmp_path)
    trainer = Trainer(cfg)  # modules may build on the CPU: the trainer moves them to experiment.device
    with ImplicitDeviceFactories() as watch:
        metrics = trainer.train()
    assert metrics["episodes"] == cfg.experiment.eval_episodes and trainer.iteration == 2
    assert not watch.sites, f"tensors created on torch's default device, not the learner's: {sorted(watch.sites)}"


def test_the_watch_catches_an_implicit_device():
    """The check above can fail: a factory without a device in learner code is reported with its line."""
    import embodied.rollout.episode_stats as episode_stats

    with ImplicitDeviceFactories() as watch:
        exec(compile("import torch\ntorch.zeros(3)\n", episode_stats.__file__, "exec"))
    assert watch.sites == {"embodied/rollout/episode_stats.py:2"}


def test_auto_picks_the_cpu_without_cuda_and_a_cpu_run_reports_it(tmp_path):
    assert learner_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cfg = config(tmp_path, experiment__device="cpu")
    assert Trainer(cfg).policy.device == torch.device("cpu")


@pytest.mark.parametrize("device,message", [
    ("gpu", "experiment.device='gpu' is not a device: use cpu, cuda, cuda:N or auto"),
    ("mps", "learner runs on cpu or cuda"),
] + ([] if torch.cuda.is_available() else [("cuda", "finds no CUDA device here .* use experiment.device=cpu")]))
def test_a_bad_or_absent_device_is_a_clear_error_before_anything_is_built(tmp_path, device, message):
    cfg = config(tmp_path, experiment__device=device)
    with pytest.raises(ValueError, match=message):
        validate(cfg)
