"""Robot RL with the actor and the learner apart (embodied.robot_rl.actor_learner), on the Reach twin."""

import time

import numpy as np
import pytest
import torch

from embodied.data.replay import ReplayBuffer
from embodied.robot_rl.actor_learner import PooledDemos, WeightMailbox, run_actor_learner
from embodied.robot_rl.intervention import Intervention, after_step
from embodied.runner.offpolicy import OffPolicyTrainer
from real_robot.errors import SafetyStop
from tests.test_robot_env import OPEN_ENVS, make_env, scripted_device, twin  # noqa: F401 (the fixture)
from tests.test_training import config

torch.set_num_threads(1)


def sac_trainer(tmp_path, **overrides) -> OffPolicyTrainer:
    cfg = config(tmp_path, algo__name="sac", policy__name="tanh_mlp", env__num_envs=1, algo__learning_starts=20,
                 algo__batch_size=16, **overrides)
    return OffPolicyTrainer(cfg)


def test_the_actor_does_not_wait_for_the_learner(twin, tmp_path, monkeypatch):
    """Each update takes over 20 ms here; the robot loop still runs its 200 steps at its own pace."""
    trainer = sac_trainer(tmp_path)
    update = trainer.update
    monkeypatch.setattr(trainer, "update", lambda **kw: time.sleep(0.02) or update(**kw))
    env = make_env(twin, max_episode_steps=50)
    stamps = []
    step = env.step
    monkeypatch.setattr(env, "step", lambda action: stamps.append(time.perf_counter()) or step(action))
    start = time.perf_counter()
    report = run_actor_learner(trainer, env, env_steps=200)
    learner_s = time.perf_counter() - start
    assert report.env_steps == 200 and report.updates == 90 and trainer.buffer.steps == 200  # utd 0.5 from step 20
    assert learner_s > 90 * 0.02  # the learner's own time
    assert stamps[-1] - stamps[0] < learner_s / 3  # the actor finished long before it
    assert len(report.episode_successes) == 4 and report.episode_assisted == [False] * 4  # 4 episodes of 50 steps


def test_new_weights_reach_the_actor_while_it_runs_at_the_control_rate(twin, tmp_path):
    trainer = sac_trainer(tmp_path)
    env = make_env(twin, max_episode_steps=50, control_hz=100.0)
    report = run_actor_learner(trainer, env, env_steps=300)
    versions = np.array(report.weight_versions_taken)
    assert (versions[:20] == 0).all() and versions[-1] > 100  # random phase, then the learner's newer weights
    assert (np.diff(versions) >= 0).all() and len(np.unique(versions)) > 20  # taken again and again, in order
    assert len(env.loop_periods_ms) >= 290 and 8.0 < report.timing["period_p50_ms"] < 15.0  # 100 Hz held


@pytest.mark.parametrize("warmup", [0, 1000])
def test_the_critics_warm_up_alone_and_the_learners_statistics_are_reported(twin, tmp_path, warmup):
    """With algo.actor_warmup_updates above the run's 90 updates only the critics learn; without, the actor does too.
    The report averages the updates' statistics until they are taken."""
    trainer = sac_trainer(tmp_path, algo__actor_warmup_updates=warmup)
    actor_before = [p.detach().clone() for p in trainer.policy.parameters()]
    critic_before = [p.detach().clone() for p in trainer.critic.parameters()]
    report = run_actor_learner(trainer, make_env(twin, max_episode_steps=50), env_steps=200)
    actor_moved = any(not torch.equal(a, p) for a, p in zip(actor_before, trainer.policy.parameters()))
    assert actor_moved == (warmup == 0)
    assert any(not torch.equal(a, p) for a, p in zip(critic_before, trainer.critic.parameters()))
    means = report.update_means.take()
    assert ("actor_loss" in means) == (warmup == 0) and means["critic_loss"] > 0 and np.isfinite(means["q"])
    assert report.update_means.take() == {}  # taken


def test_intervention_steps_become_demonstrations_cut_where_the_policy_took_over(twin, tmp_path):
    """A person has control at steps 3-5 and 8-9 of each 10-step episode: both segments become demonstrations, the
    first truncated where the policy took over again (at step 6's observation), the second where the episode ends."""
    trainer = sac_trainer(tmp_path, algo__n_step=3)
    device = scripted_device(tmp_path, [[0.0, 0.0, -1.0, 1.0]] * 100)
    person = Intervention(device, "ee_delta_pos", lambda step, robot_obs: 3 <= step < 6 or step >= 8)
    env = make_env(twin, max_episode_steps=10, intervention=person)
    report = run_actor_learner(trainer, env, env_steps=30)
    assert report.intervention_rate == 0.5 and trainer.buffer.steps == 30 and report.episode_assisted == [True] * 3
    assert trainer.demos is not None and trainer.demos.offline is None  # the interventions alone
    demos = trainer.demos.interventions
    assert demos.steps == 15
    store = demos.store
    assert store["truncated"][:15, 0].tolist() == [False, False, True, False, True] * 3
    online = trainer.buffer.store  # the executed actions: the person's push down
    person_steps = [t for t in range(30) if t % 10 in (3, 4, 5, 8, 9)]
    assert (online["action"][person_steps, 0, 2] < -0.1).all()
    assert torch.allclose(store["action"][:15, 0], online["action"][person_steps, 0])
    assert torch.equal(demos.finals[(2, 0)]["state"], online["obs/state"][6, 0])  # the cut's next observation
    assert torch.equal(demos.finals[(4, 0)]["state"], trainer.buffer.finals[(9, 0)]["state"])  # the episode's last


def test_a_fault_on_the_robot_stops_the_run(twin, tmp_path, monkeypatch):
    trainer = sac_trainer(tmp_path)
    env = make_env(twin)
    monkeypatch.setattr(twin, "send_action", lambda action: (_ for _ in ()).throw(RuntimeError("socket closed")))
    with pytest.raises(SafetyStop, match="socket closed"):
        run_actor_learner(trainer, env, env_steps=10)
    assert not twin.is_connected


def test_the_mailbox_hands_over_only_newer_weights():
    mailbox, net = WeightMailbox(), torch.nn.Linear(2, 1)
    assert mailbox.take(0) == (0, None)
    assert mailbox.post(net) == 1
    version, state = mailbox.take(0)
    assert version == 1 and torch.equal(state["weight"], net.weight)
    with torch.no_grad():
        net.weight.add_(1.0)
    assert not torch.equal(state["weight"], net.weight)  # a copy, not the live tensor
    assert mailbox.take(1) == (1, None)


def test_a_learner_failure_stops_the_actor_and_holds_the_arm(twin, tmp_path, monkeypatch):
    trainer = sac_trainer(tmp_path)
    monkeypatch.setattr(trainer, "update", lambda **kw: (_ for _ in ()).throw(FloatingPointError("NaN loss")))
    env = make_env(twin, max_episode_steps=50, control_hz=200.0)
    with pytest.raises(FloatingPointError):
        run_actor_learner(trainer, env, env_steps=2000)
    assert env.steps_taken < 200 and env.guard._watchdog is None  # stopped soon after the first update, held


@pytest.mark.parametrize("budget", [0, 50, 100])
def test_the_next_scene_is_asked_for_only_after_the_learner_is_done_and_only_when_it_will_be_used(
        twin, tmp_path, monkeypatch, budget):
    """Each reset comes after the learner's end-of-episode work; none after the last step or a failing learner, and
    none with no steps to take: on a real arm each one is a person's reset. Afterwards the env autoresets again."""
    trainer = sac_trainer(tmp_path)
    events = []
    reset_scene = twin.reset_scene
    monkeypatch.setattr(twin, "reset_scene", lambda seed=None, reset_id=0: events.append("reset") or reset_scene(
        seed, reset_id))
    env = make_env(twin, max_episode_steps=25)

    def on_episode(report):
        time.sleep(0.05)  # the learner's end-of-episode work takes a while: the reset must wait for it
        events.append("on_episode")
        if len(report.episode_successes) == 2:
            raise RuntimeError("the checkpoint disk is full")

    if budget == 100:  # four episodes, of which the second's end fails in the learner
        with pytest.raises(RuntimeError, match="disk is full"):
            run_actor_learner(trainer, env, env_steps=budget, on_episode=on_episode)
        assert events == ["reset", "on_episode", "reset", "on_episode"]
    else:
        run_actor_learner(trainer, env, env_steps=budget, on_episode=lambda report: time.sleep(0.05) or events.append(
            "on_episode"))
        assert events == ["reset", "on_episode", "reset", "on_episode"][:2 * budget // 25]
    assert env.autoreset


def test_a_pretrained_policy_acts_from_the_first_step(twin, tmp_path, monkeypatch):
    import embodied.rollout.transition_collector as transition_collector

    random_draws = []
    uniform = transition_collector.uniform_actions
    monkeypatch.setattr(transition_collector, "uniform_actions", lambda *a: random_draws.append(1) or uniform(*a))
    trainer = sac_trainer(tmp_path)
    run_actor_learner(trainer, make_env(twin), env_steps=30)
    assert len(random_draws) == 20  # algo.learning_starts
    random_draws.clear()
    trainer = sac_trainer(tmp_path / "pretrained")
    trainer.acts_from_start = True  # as with init_from or pre-training: no random actions on the arm
    run_actor_learner(trainer, make_env(twin), env_steps=30)
    assert random_draws == []


def test_offline_demos_and_interventions_are_sampled_as_one_pool():
    """18 offline transitions (2 envs x 9) and 6 intervention steps: a quarter of the pool's samples are the
    person's, each transition equally likely; with no intervention yet, all are offline."""
    offline, interventions = ReplayBuffer(20, 2, 1, 0.99), ReplayBuffer(20, 1, 1, 0.99)
    for steps, buffer, action in ((10, offline, 0.0), (7, interventions, 1.0)):
        n = buffer.num_envs
        for _ in range(steps):
            buffer.add({"state": torch.zeros(n, 3)}, torch.full((n, 4), action), torch.zeros(n),
                       torch.zeros(n, dtype=torch.bool), torch.zeros(n, dtype=torch.bool))
    pool = PooledDemos(offline, interventions)
    assert len(pool) == 24
    batch = pool.sample(2400, torch.Generator().manual_seed(0))
    assert "source" not in batch and batch["action"].shape == (2400, 4)
    assert float(batch["action"][:, 0].mean()) == pytest.approx(0.25, abs=0.005)  # 600 of 2400: the proportion
    alone = PooledDemos(offline, ReplayBuffer(20, 1, 1, 0.99)).sample(64, torch.Generator().manual_seed(0))
    assert float(alone["action"].abs().sum()) == 0.0
