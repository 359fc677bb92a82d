"""Build the env, policy and rollout collector a config describes (shared by the trainer and env workers)."""

from __future__ import annotations

import functools
import os

import torch

from embodied.algorithms.registry import COLLECTORS, get_loss
from embodied.config.schema import TrainConfig, as_dict
from embodied.rollout.device_bridge import for_learner, learner_device, to_device
from embodied.rollout.pipelined_collector import PipelinedStepCollector
from policies.base import POLICIES, from_pretrained
from sims import make_env


def build_env(cfg: TrainConfig, num_envs: int, autoreset: bool, cameras=None, num_threads: int | None = None):
    """The batched env described by ``cfg.env``, its results on the learner's device (``experiment.device``)."""
    e = cfg.env
    suite = {"suite": e.suite, "split": e.split} if e.suite else {}  # (the backends without suites take neither)
    optional = {"render_quality": e.render_quality} if e.render_quality else {}  # (mujoco backends only)
    if e.terminate_on_success is not None:  # null: each backend's own choice
        optional["terminate_on_success"] = e.terminate_on_success
    return for_learner(make_env(
        e.backend, task=e.task, num_envs=num_envs, controller=e.controller, reward_mode=e.reward_mode,
        max_episode_steps=e.max_episode_steps, cameras=tuple(e.cameras if cameras is None else cameras),
        image_size=tuple(e.image_size), autoreset=autoreset, domain=e.domain, arm=e.arm,
        num_threads=e.num_threads if num_threads is None else num_threads, **suite, **optional,
    ), learner_device(cfg.experiment.device))


def build_policy(cfg: TrainConfig, env, seed: int):
    """The policy described by ``cfg.policy``, sized for ``env`` (one reset supplies observation statistics)."""
    sample_obs, _ = env.reset(seed=seed)
    config = as_dict(cfg.policy) | {"base": cfg.base}
    sample_obs = to_device(sample_obs, torch.device("cpu"))  # the policy is built on the CPU, then moved
    policy = POLICIES.lookup(cfg.policy.name).for_env(config, env.observation_spec, env.action_spec, sample_obs)
    refuse_unrendered_cameras(policy, env.observation_spec.cameras, "the policy")  # e.g. a residual on a camera base
    policy.config["trained_with"] = trained_with(cfg, env, policy)  # saved with it: embodied-deploy checks the robot
    return policy.to(learner_device(cfg.experiment.device))  # where build_env delivers the env's results


def trained_with(cfg: TrainConfig, env, policy) -> dict:
    """What a deployment must match: the task, arm, controller, control rate, and the cameras with their size."""
    height, width = env.observation_spec.image_height, env.observation_spec.image_width
    return {"task": cfg.env.task, "arm": cfg.env.arm, "controller": cfg.env.controller,
            "control_hz": float(getattr(env, "control_hz", 20.0)), "cameras": policy.cameras_read(),
            "image_size": [height, width]}


def refuse_unrendered_cameras(policy, rendered, who: str) -> None:
    """Raise ValueError naming the cameras ``policy`` reads that are not among the ``rendered`` ones, and the fix."""
    rendered = list(rendered)
    unseen = [camera for camera in policy.cameras_read() if camera not in rendered]
    if unseen:
        raise ValueError(f"{who} reads cameras {unseen} that the env does not render (env.cameras={rendered}): "
                         f"set env.cameras={sorted(set(rendered) | set(unseen))}")


def load_teacher(cfg: TrainConfig):
    """``algo.teacher`` (on-policy distillation), frozen, on the learner's device; None when the loss scores
    with no teacher."""
    if not get_loss(cfg.algo.loss).needs_teacher:
        return None
    if not os.path.isdir(cfg.algo.teacher):
        raise FileNotFoundError(f"algo.teacher={cfg.algo.teacher!r} does not exist: pass a directory written by "
                                "save_pretrained (e.g. runs/<name>/final_policy)")
    teacher = from_pretrained(cfg.algo.teacher).eval()
    refuse_unrendered_cameras(teacher, cfg.env.cameras, f"the teacher {cfg.algo.teacher}")
    return teacher.requires_grad_(False).to(learner_device(cfg.experiment.device))


def collector_over(env, policy, algo, teacher=None):
    """The ``algo.collector`` collector (e.g. PPO's steps, GRPO's groups) over an existing env; a distillation
    ``teacher``'s inputs are kept in its rollouts."""
    return COLLECTORS.lookup(algo.collector)(env, policy, algo, teacher)


def build_collector(cfg: TrainConfig, policy, num_envs: int, num_threads: int | None = None, share: int = 1,
                    teacher=None):
    """The ``cfg.algo.collector`` collector over ``num_envs`` new envs (two stages when pipelined); env workers
    load ``algo.teacher`` themselves, the trainer passes the one it holds.

    ``share``: how many workers split one batch (each GRPO worker collects ``groups_per_batch / share`` groups).
    """
    if teacher is None:
        teacher = load_teacher(cfg)
    collector = COLLECTORS.lookup(cfg.algo.collector)
    if cfg.dist.pipeline_stages == 2:  # validated: only a collector that pipelines (steps)
        half = num_envs // 2
        sizes = (half, num_envs - half)
        factories = [functools.partial(build_env, cfg, n, collector.autoreset, num_threads=num_threads)
                     for n in sizes]
        return PipelinedStepCollector(factories, policy, cfg.algo, teacher)
    env = build_env(cfg, num_envs, autoreset=collector.autoreset, num_threads=num_threads)
    return collector_over(env, policy, collector.share(cfg.algo, share), teacher)
