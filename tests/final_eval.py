"""The final metrics a run returns are the evaluation of the policy it saved, episode for episode."""

import os

import pytest

from embodied.rollout.evaluate import evaluate
from embodied.runner.builders import build_env
from policies import from_pretrained


def assert_final_metrics_are_the_saved_policys(cfg, metrics: dict) -> None:
    """Re-evaluate ``<output_dir>/final_policy`` on the run's evaluation episodes; every metric must agree."""
    x = cfg.experiment
    policy = from_pretrained(os.path.join(x.output_dir, "final_policy"))
    env = build_env(cfg, x.eval_num_envs, autoreset=False)
    again, _ = evaluate(policy, env, x.eval_episodes, x.eval_seed)
    env.close()
    assert metrics["episodes"] == x.eval_episodes
    for key in ("success_once", "success_at_end", "episode_return"):
        assert metrics[key] == pytest.approx(again[key], abs=1e-6), key
