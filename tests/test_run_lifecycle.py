"""A run's life: Ctrl-C saves and resumes exactly, the last iteration is checkpointed, a resume with other
settings or into another run's folder is refused, a damaged latest checkpoint falls back to the previous one."""

import logging
import os
import signal

import pytest
import torch
from safetensors.torch import load_file

from embodied.rollout.step_collector import StepCollector
from embodied.runner.trainer import Trainer
from tests.ctrl_c import ctrl_c_on_call
from tests.test_training import config

BUDGET = dict(env__num_envs=4, algo__rollout_steps=10, experiment__eval_interval=0, experiment__eval_episodes=2,
              experiment__eval_num_envs=2, experiment__checkpoint_interval=10)
ITERATION = 4 * 10  # env-steps per iteration


def run(path, iterations: int, resume: bool = False, **overrides) -> tuple[Trainer, dict]:
    cfg = config(path, experiment__total_env_steps=iterations * ITERATION, **(BUDGET | overrides))
    cfg.resume = resume
    trainer = Trainer(cfg)
    return trainer, trainer.train()


def weights(path) -> dict:
    return load_file(os.path.join(path, "final_policy", "model.safetensors"))


def test_ctrl_c_saves_and_resume_continues_exactly(tmp_path, monkeypatch):
    _, full = run(tmp_path / "full", 5)
    assert os.path.isdir(tmp_path / "full" / "checkpoints" / "iter_000005")  # the last one, off the interval of 10

    handler_before = signal.getsignal(signal.SIGINT)  # the default, or SIG_IGN in a background job
    with ctrl_c_on_call(monkeypatch, StepCollector, "collect", 3):  # while the third iteration collects
        _, interrupted = run(tmp_path / "cut", 5)
    assert interrupted == {"interrupted_at": 3}  # the third iteration finished, then the run stopped
    assert os.path.isdir(tmp_path / "cut" / "checkpoints" / "iter_000003")
    assert os.path.isfile(tmp_path / "cut" / "final_policy" / "model.safetensors")
    assert signal.getsignal(signal.SIGINT) is handler_before  # the handler is put back

    _, resumed = run(tmp_path / "cut", 5, resume=True)
    assert resumed == full
    a, b = weights(tmp_path / "full"), weights(tmp_path / "cut")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("change, message", [
    ({"env__num_envs": 8}, "written with env.num_envs=4 but this run sets env.num_envs=8"),
    ({"algo__name": "grpo", "algo__collector": "groups", "algo__advantage": "grpo", "algo__loss": "grpo",
      "algo__group_size": 2, "algo__groups_per_batch": 2}, "written with algo.name=ppo, algo.collector=steps"),
])
def test_resume_with_other_settings_is_refused(tmp_path, change, message):
    run(tmp_path, 1)
    cfg = config(tmp_path, experiment__total_env_steps=2 * ITERATION, **(BUDGET | change))
    cfg.resume = True
    with pytest.raises(ValueError, match=message):
        Trainer(cfg)


def test_a_new_run_into_another_runs_folder_is_refused(tmp_path):
    run(tmp_path, 1)
    with pytest.raises(FileExistsError, match="already holds a run .*resume=true continues it"):
        run(tmp_path, 1)


def test_a_damaged_latest_checkpoint_falls_back_to_the_previous(tmp_path, caplog):
    run(tmp_path, 2, experiment__checkpoint_interval=1)
    damaged = tmp_path / "checkpoints" / "iter_000002" / "policy" / "model.safetensors"
    damaged.write_bytes(damaged.read_bytes()[:100])  # truncated, as by a full disk
    every_iteration = BUDGET | {"experiment__checkpoint_interval": 1}
    cfg = config(tmp_path, experiment__total_env_steps=3 * ITERATION, **every_iteration)
    cfg.resume = True
    with caplog.at_level(logging.WARNING, logger="embodied-train"):
        trainer = Trainer(cfg)
    assert trainer.iteration == 1
    assert f"{tmp_path}/checkpoints/iter_000002/policy cannot be read" in caplog.text


@pytest.fixture(scope="module")
def reach_demos(tmp_path_factory):
    from embodied.data.demos import env_features, record_expert_demos
    from embodied.data.writer import LeRobotDatasetWriter
    from sims import make_env

    root = str(tmp_path_factory.mktemp("demos") / "reach")
    env = make_env(task="Reach", num_envs=2, autoreset=False)
    record_expert_demos(env, LeRobotDatasetWriter.create(root, fps=20, features=env_features(env)), num_episodes=2,
                        seed=0, progress=False)
    return root


GRPO_KL = dict(algo__name="grpo", algo__collector="groups", algo__advantage="grpo", algo__loss="grpo",
               algo__group_size=2, algo__groups_per_batch=2, algo__kl_coef=0.5, algo__target_kl=None,
               algo__dynamic_sampling=False,  # every group trains (with 2 episodes most would tie on success)
               env__max_episode_steps=10)  # 2 groups x 2 episodes x 10 steps: an iteration of 40 env-steps, as PPO


@pytest.mark.parametrize("settings", [
    pytest.param(dict(GRPO_KL, algo__ref_reset_interval=0), id="grpo-kl-reference"),
    pytest.param(dict(GRPO_KL, algo__ref_reset_interval=3), id="grpo-kl-reference-reset"),
    pytest.param(dict(algo__anchor_coef=0.1, algo__critic_warmup_iterations=3, algo__batch_size=8), id="anchor-warmup"),
])
def test_resume_is_exact_with_a_kl_reference_an_anchor_and_a_critic_warm_up(tmp_path, reach_demos, settings):
    """Resumed at iteration 2 of 5: the reference must stay the starting policy (or the one at the reset of
    iteration 3), the anchor must draw the demonstrations it would have drawn, the warm-up optimizer keep its
    moments. Before, the reference became the resumed policy and the other two started afresh."""
    settings = settings | {"experiment__checkpoint_interval": 2, "data__anchor_paths": [reach_demos]}
    full_run, full = run(tmp_path / "full", 5, **settings)
    cut, _ = run(tmp_path / "cut", 2, **settings)
    resumed_run, resumed = run(tmp_path / "cut", 5, resume=True, **settings)
    assert (full_run.iteration, cut.iteration, resumed_run.iteration) == (5, 2, 5)
    a, b = weights(tmp_path / "full"), weights(tmp_path / "cut")
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]
    assert resumed == full


@pytest.mark.parametrize("interval,reset_after", [(0, None), (2, 2), (3, 3), (4, None)])
def test_the_kl_reference_is_reset_to_the_policy_every_ref_reset_interval_updates(tmp_path, interval, reset_after):
    """Three GRPO updates: with algo.ref_reset_interval=2 the reference is the policy after update 2 (not the
    starting one, not the last), with 3 the last; with 0 or an interval longer than the run the starting policy."""
    cfg = config(tmp_path, experiment__total_env_steps=3 * ITERATION, **(BUDGET | GRPO_KL),
                 algo__ref_reset_interval=interval)
    trainer = Trainer(cfg)
    snapshots = [{k: v.clone() for k, v in trainer.policy.state_dict().items()}]
    collect = trainer.collector.collect

    def collect_and_remember():  # a collection starts after each update: the policy as that update left it
        if trainer.iteration:
            snapshots.append({k: v.clone() for k, v in trainer.policy.state_dict().items()})
        return collect()

    trainer.collector.collect = collect_and_remember
    trainer.train()
    snapshots.append(trainer.policy.state_dict())
    assert len(snapshots) == 4 and not torch.equal(snapshots[2]["actor.0.weight"], snapshots[3]["actor.0.weight"])
    expected = snapshots[reset_after or 0]
    reference = trainer.reference.state_dict()
    assert all(torch.equal(reference[k], expected[k]) for k in expected), interval


def test_the_kl_reference_follows_the_loss_not_the_algorithm_name(tmp_path):
    """algo=ppo with GRPO's collector, advantage and loss and a KL coefficient: the loss needs a reference, so the
    run keeps one (it was built only for algo=grpo, and the first update failed with KeyError 'ref_logprob')."""
    settings = {key: value for key, value in GRPO_KL.items() if key != "algo__name"}
    cfg = config(tmp_path, experiment__total_env_steps=ITERATION, **(BUDGET | settings))
    assert cfg.algo.name == "ppo"
    trainer = Trainer(cfg)
    assert trainer.reference is not None and trainer.own_reference is trainer.reference
    assert trainer.train()["episodes"] == 2


def test_a_run_stops_at_the_first_evaluation_that_reaches_stop_at_success(tmp_path):
    # PPO on Reach: 0.9 or more before 24k env-steps (test_ppo_learns_reach); the budget here is 64k
    cfg = config(tmp_path, experiment__total_env_steps=64_000, experiment__eval_interval=2,
                 experiment__stop_at_success=0.9, experiment__checkpoint_interval=0, experiment__video=False)
    trainer = Trainer(cfg)
    trainer.train()
    in_loop = [entry["success_once"] for entry in trainer.eval_history[:-1]]  # the last one: the final evaluation
    assert in_loop[-1] >= 0.9 and all(success < 0.9 for success in in_loop[:-1]), in_loop
    assert trainer.counters["env_steps"] == trainer.eval_history[-2]["env_steps"] < 64_000


def test_stop_at_success_needs_evaluations_during_the_run(tmp_path):
    from embodied.config.schema import validate

    with pytest.raises(ValueError, match="experiment.eval_interval > 0"):
        validate(config(tmp_path, experiment__stop_at_success=0.8, experiment__eval_interval=0))
    with pytest.raises(ValueError, match="algo=sft runs its algo.sft_steps"):
        validate(config(tmp_path, algo__name="sft", data__paths=["demos"], experiment__stop_at_success=0.8))


def test_a_run_ends_after_the_iteration_that_crosses_its_time_limit_then_evaluates(tmp_path):
    # out of time once the first iteration ends; evaluations due after every iteration
    trainer, final = run(tmp_path, 5, experiment__time_limit_s=1e-6, experiment__eval_interval=1)
    assert trainer.iteration == 1 and trainer.counters["env_steps"] == ITERATION
    assert final["episodes"] == 2 and os.path.isdir(tmp_path / "final_policy")  # the final evaluation and save
    assert len(trainer.eval_history) == 1  # not evaluated twice at the same env-step


def test_time_limit_is_checked_before_anything_runs(tmp_path):
    from embodied.config.schema import validate

    with pytest.raises(ValueError, match="experiment.time_limit_s must be > 0 seconds"):
        validate(config(tmp_path, experiment__time_limit_s=0))
    with pytest.raises(ValueError, match="algo=sft runs its algo.sft_steps: set experiment.time_limit_s=null"):
        validate(config(tmp_path, algo__name="sft", data__paths=["demos"], experiment__time_limit_s=60))
