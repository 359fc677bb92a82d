"""The batched env contract as checks any backend must pass; ``make(num_envs, **kwargs)`` builds the env under test.

Each check takes ``world(obs)``: the observation entries that identify a world's state (MuJoCo: ``privileged``;
LIBERO: ``state`` and ``privileged``), compared exactly.
"""

import numpy as np
import pytest
import torch


def _actions(env, steps: int, seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.rand(env.num_envs, env.action_spec.dim, generator=generator) * 2 - 1 for _ in range(steps)]


def _roll(env, world, actions) -> torch.Tensor:
    return torch.stack([world(env.step(a)[0]) for a in actions])


def check_reset_ids_fix_initial_states(make, world) -> None:
    """(seed, reset id) fixes the initial state at any env index and batch size, and an episode does not depend
    on what the env ran before it."""
    env, single, fresh = make(3), make(1), make(1)
    try:
        start = world(env.reset(seed=3, reset_ids=[1, 1, 0])[0])
        assert torch.equal(start[0], start[1]) and not torch.equal(start[0], start[2])
        assert torch.equal(world(single.reset(seed=3, reset_ids=[0])[0])[0], start[2])
        _roll(single, world, _actions(single, 6))  # some history, then the same episode again
        assert torch.equal(world(single.reset(seed=3, reset_ids=[0])[0])[0], start[2])
        fresh.reset(seed=3, reset_ids=[0])
        actions = _actions(single, 8, seed=1)
        assert torch.equal(_roll(single, world, actions), _roll(fresh, world, actions))
    finally:
        env.close(), single.close(), fresh.close()


def check_identical_episodes_stay_identical(make, world) -> None:
    """Identical reset ids and actions give identical trajectories, in one env and in a second instance."""
    a, b = make(2), make(2)
    try:
        actions = [x[:1].repeat(2, 1) for x in _actions(a, 5)]
        a.reset(seed=1, reset_ids=[4, 4]), b.reset(seed=1, reset_ids=[4, 4])
        path = _roll(a, world, actions)
        assert torch.equal(path[:, 0], path[:, 1])
        assert torch.equal(path, _roll(b, world, actions))
    finally:
        a.close(), b.close()


def check_autoreset_keeps_the_final_observation(make, world) -> None:
    """At the time limit the env reports the ended episode's last observation and starts fresh reset ids."""
    env = make(2, max_episode_steps=3)
    try:
        first = world(env.reset(seed=0)[0])
        zero = torch.zeros(2, env.action_spec.dim)
        for _ in range(2):
            _, _, terminated, truncated, info = env.step(zero)
            assert not (terminated | truncated).any() and "final_obs" not in info
        obs, _, _, truncated, info = env.step(zero)
        assert truncated.all() and torch.equal(info["reset_ids"], torch.tensor([0, 1]))
        assert env.reset_ids.tolist() == [2, 3] and info["elapsed_steps"].tolist() == [3, 3]
        assert not torch.equal(world(info["final_obs"]), world(obs)) and not torch.equal(world(obs), first)
        assert obs["elapsed"].tolist() == [0, 0]
    finally:
        env.close()


def check_finished_envs_wait_without_autoreset(make, world) -> None:
    """Without autoreset a finished env executes nothing until every env finished and reset() is called."""
    env = make(2, max_episode_steps=2, autoreset=False)
    try:
        env.reset(seed=0)
        zero = torch.zeros(2, env.action_spec.dim)
        env.step(zero)
        env.step(zero)
        with pytest.raises(RuntimeError, match="reset"):
            env.step(zero)
        assert torch.equal(world(env.reset(seed=0)[0]), world(make_and_reset(make, 2)))
    finally:
        env.close()


def make_and_reset(make, num_envs: int) -> dict:
    env = make(num_envs)
    try:
        return env.reset(seed=0)[0]
    finally:
        env.close()


def check_chunks_match_single_steps(make, world) -> None:
    """A chunk of T actions equals T single steps; steps after an episode's end are masked and not executed."""
    a, b = make(2, max_episode_steps=4), make(2, max_episode_steps=4)
    try:
        a.reset(seed=2), b.reset(seed=2)
        actions = _actions(a, 3, seed=1)
        singles = [b.step(x) for x in actions]
        obs, rewards, _, _, info = a.chunk_step(torch.stack(actions, dim=1))
        assert torch.equal(world(obs), world(singles[-1][0])) and info["step_mask"].all()
        assert torch.equal(rewards, torch.stack([s[1] for s in singles], dim=1))
        _, rewards, _, truncated, info = a.chunk_step(torch.stack(actions, dim=1))  # ends after one step
        assert truncated.all() and torch.equal(info["step_mask"], torch.tensor([[True, False, False]] * 2))
        assert (rewards[:, 1:] == 0).all()
    finally:
        a.close(), b.close()


def check_bad_actions_are_clear_errors_and_clipping_is_counted(make, world) -> None:
    """Steps before reset, wrong shapes and NaN raise; out-of-range actions are clipped to the box and counted."""
    a, b = make(2), make(2)
    try:
        dim = a.action_spec.dim
        with pytest.raises(RuntimeError, match="reset"):
            a.step(torch.zeros(2, dim))
        a.reset(seed=0), b.reset(seed=0)
        with pytest.raises(ValueError, match="shape"):
            a.step(torch.zeros(2, dim + 1))
        bad = torch.zeros(2, dim)
        bad[1, 0] = float("nan")
        with pytest.raises(ValueError, match=r"NaN or inf for env\(s\) \[1\]"):
            a.step(bad)
        far = torch.zeros(2, dim)
        far[0, 0], far[1, 1] = 5.0, -7.0
        obs_far, _, _, _, info = a.step(far)
        limit = torch.zeros(2, dim)
        limit[0, 0], limit[1, 1] = a.action_spec.high, a.action_spec.low
        obs_limit, *_ = b.step(limit)
        assert info["num_clipped"].tolist() == [1, 1]
        assert torch.equal(world(obs_far), world(obs_limit))
    finally:
        a.close(), b.close()


def check_snapshots_resume_exactly(make, world) -> None:
    """``set_state(get_state())``, in the same env or a new one, returns the same observation and the same future
    under the same actions."""
    env, other = make(2), make(2)
    try:
        env.reset(seed=5), other.reset(seed=6, reset_ids=[1, 0])  # other episodes (LIBERO: other tasks per slot)
        actions = _actions(env, 6, seed=2)
        for action in actions[:3]:
            obs, *_ = env.step(action)
        snapshot = env.get_state()
        after = _roll(env, world, actions[3:])
        for resumed in (env, other):
            assert torch.equal(world(resumed.set_state(snapshot)), world(obs))
            np.testing.assert_array_equal(_roll(resumed, world, actions[3:]).numpy(), after.numpy())
    finally:
        env.close(), other.close()


CHECKS = [check_reset_ids_fix_initial_states, check_identical_episodes_stay_identical,
          check_autoreset_keeps_the_final_observation, check_finished_envs_wait_without_autoreset,
          check_chunks_match_single_steps, check_bad_actions_are_clear_errors_and_clipping_is_counted,
          check_snapshots_resume_exactly]
