"""The replay buffer: n-step targets against hand-computed values, the ring, mixtures, and kill -9 durability."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from embodied.data.replay import ReplayBuffer, sample_mixture


def step_data(t: int, num_envs: int = 2) -> dict:
    """Deterministic step t: env e's observation encodes (t, e); reward t + e/10; env 0 terminates at t=4, 12, 20, ...,
    env 1 is truncated at t=5, 13, 21, ...; the last observation of an ended episode is -(t + 1)."""
    obs = {"state": torch.tensor([[10.0 * t + e] for e in range(num_envs)]),
           "rgb": {"front": torch.full((num_envs, 2, 2, 3), t % 256, dtype=torch.uint8)}}
    terminated = torch.tensor([t % 8 == 4, False][:num_envs])
    truncated = torch.tensor([False, t % 8 == 5][:num_envs])
    final = {"state": torch.full((num_envs, 1), -(t + 1.0)), "rgb": {"front": torch.zeros(num_envs, 2, 2, 3,
                                                                                           dtype=torch.uint8)}}
    return {"obs": obs, "action": torch.tensor([[t, e] for e in range(num_envs)], dtype=torch.float32),
            "reward": torch.tensor([t + e / 10 for e in range(num_envs)]), "terminated": terminated,
            "truncated": truncated, "final_obs": final if bool((terminated | truncated).any()) else None}


def filled(steps: int, **kwargs) -> ReplayBuffer:
    buffer = ReplayBuffer(num_envs=2, **kwargs)
    for t in range(steps):
        buffer.add(**step_data(t))
    return buffer


def test_n_step_targets_stop_at_termination_and_bootstrap_truncation_from_the_last_observation():
    buffer = filled(9, capacity=20, n_step=3, gamma=0.5)
    out = buffer.transitions(torch.tensor([0, 3, 4, 2, 5]), torch.tensor([0, 0, 0, 1, 1]))
    # env 0 from t=0: 0 + 0.5*1 + 0.25*2 = 1.0, next obs t=3, discount 0.5^3
    # env 0 from t=3: 3 + 0.5*4 = 5.0, terminated at t=4: next obs its last one (-5), discount 0
    # env 0 from t=4: 4, terminated: discount 0
    # env 1 from t=2: 2.1 + 0.5*3.1 + 0.25*4.1 = 4.675, next obs t=5
    # env 1 from t=5: 5.1, truncated at t=5: bootstrapped from its last observation (-6) with discount 0.5
    assert torch.allclose(out["reward"], torch.tensor([1.0, 5.0, 4.0, 4.675, 5.1]))
    assert torch.allclose(out["discount"], torch.tensor([0.125, 0.0, 0.0, 0.125, 0.5]))
    assert out["next_obs"]["state"].flatten().tolist() == [30.0, -5.0, -5.0, 51.0, -6.0]
    assert out["obs"]["state"].flatten().tolist() == [0.0, 30.0, 40.0, 21.0, 51.0]
    assert out["obs"]["rgb"]["front"].dtype == torch.uint8 and out["action"][3].tolist() == [2.0, 1.0]


def test_the_ring_keeps_the_last_capacity_steps_and_samples_only_complete_transitions():
    buffer = filled(12, capacity=5, n_step=2, gamma=0.9)
    assert len(buffer) == 3  # steps 7, 8, 9 have their 2 following steps stored; 10 and 11 not yet
    batch = buffer.sample(256, torch.Generator().manual_seed(0))
    starts = set((batch["obs"]["state"].flatten() // 10).tolist())
    assert starts == {7.0, 8.0, 9.0}
    with pytest.raises(ValueError, match="nothing to sample"):
        filled(2, capacity=5, n_step=2).sample(4)
    with pytest.raises(ValueError, match="final_obs"):
        ReplayBuffer(5, 2).add(**(step_data(4) | {"final_obs": None}))


def test_returns_to_go_sum_discounted_rewards_to_each_episodes_end():
    buffer = filled(7, capacity=20, n_step=1, gamma=0.5)
    returns = buffer.returns_to_go()
    # env 0 terminates at t=4 (rewards t): 4, 3 + 2, 2 + 2.5, ...; t=5, 6 run to the last stored step
    # env 1 is truncated at t=5 (rewards t + 0.1): its tail after t=5 counts 0
    expected = torch.tensor([[1.625, 1.978125], [3.25, 3.75625], [4.5, 5.3125], [5.0, 6.425], [4.0, 6.65],
                             [8.0, 5.1], [6.0, 6.1]])
    torch.testing.assert_close(returns, expected)
    with pytest.raises(ValueError, match="wrapped"):
        filled(7, capacity=4).returns_to_go()


def test_a_mixture_draws_each_source_in_its_ratio():
    online, demos = filled(8, capacity=10), filled(8, capacity=10)
    batch = sample_mixture({"online": online, "demos": demos}, {"online": 0.75, "demos": 0.25}, 64,
                           torch.Generator().manual_seed(0))
    assert batch["reward"].shape == (64,) and batch["obs"]["rgb"]["front"].shape == (64, 2, 2, 3)
    assert (batch["source"] == 0).sum() == 48 and (batch["source"] == 1).sum() == 16
    with pytest.raises(ValueError, match="ratios"):
        sample_mixture({"online": online}, {"demos": 1.0}, 8)


WRITER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    from test_replay import step_data
    from embodied.data.replay import ReplayBuffer
    buffer = ReplayBuffer(capacity=16, num_envs=2, n_step=2, gamma=0.5, directory={directory!r}, flush_every=3)
    t = 0
    while True:
        buffer.add(**step_data(t))
        t += 1
        if t == 22:
            print("flushed", buffer.flushed, flush=True)
        time.sleep(0.002)
""")


def test_kill_9_loses_at_most_the_steps_after_the_last_flush_and_the_buffer_resumes(tmp_path):
    directory = str(tmp_path / "replay")
    code = WRITER.format(tests=os.path.dirname(__file__), directory=directory)
    writer = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().startswith("flushed")
        time.sleep(0.05)
        writer.send_signal(signal.SIGKILL)  # mid-run: between flushes, or inside one
    finally:
        writer.kill()
        writer.wait()
    buffer = ReplayBuffer.open(directory)
    assert buffer.steps >= 21 and buffer.steps % 3 == 0  # every complete flush, none half-written
    # the reopened buffer holds exactly the last 16 steps the writer flushed, with their n-step targets
    last = buffer.steps - 1
    first = last - 15
    reference = ReplayBuffer(capacity=40, num_envs=2, n_step=2, gamma=0.5)
    for t in range(first, last + 1):
        reference.add(**step_data(t))
    steps = torch.arange(first, last - 1)
    envs = steps % 2
    reopened = buffer.transitions(steps, envs)
    expected = reference.transitions(steps - first, envs)
    assert (reopened["discount"] == 0).any() and (reopened["discount"] == 0.5).any()  # terminations, truncations
    for key in ("reward", "discount", "action"):
        assert torch.equal(reopened[key], expected[key]), key
    assert torch.equal(reopened["next_obs"]["state"], expected["next_obs"]["state"])
    buffer.add(**step_data(last + 1))  # and it goes on: one more step, then a flush that names it
    buffer.flush()
    assert ReplayBuffer.open(directory).steps == last + 2
