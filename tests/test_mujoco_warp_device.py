"""backend=mujoco_warp keeps observations, rewards, success and resets on the device, and matches the CPU backend."""

import pytest
import torch
import warp as wp

from sims import make_env


def _pair(task, **kwargs):
    return [make_env(backend, task=task, **kwargs) for backend in ("mujoco_warp", "mujoco")]


def test_steps_with_automatic_resets_make_no_host_copies(monkeypatch):
    """A host copy of device state would go through one of these; only two scalar reads per step remain."""
    env = make_env("mujoco_warp", task="PushCube", num_envs=3, max_episode_steps=4, table_block=4)
    env.reset(seed=0)
    env._elapsed += torch.tensor([0, 1, 3], device=env.device)  # staggered episode ends
    actions = torch.zeros(3, env.action_spec.dim, device=env.device)

    def refuse(*args, **kwargs):
        raise AssertionError("host copy during a device step")

    for target, name in ((torch.Tensor, "numpy"), (torch.Tensor, "cpu"), (torch.Tensor, "tolist"),
                         (wp.array, "numpy"), (wp.array, "list")):
        monkeypatch.setattr(target, name, refuse)
    ended = 0
    for _ in range(13):  # three automatic resets of every env, from an episode table refilled often
        obs, reward, terminated, truncated, info = env.step(actions)
        ended += int((terminated | truncated).sum())
        for value in (obs["state"], obs["privileged"], obs["elapsed"], reward, info["success"], info["reset_ids"]):
            assert value.device == env.device
    monkeypatch.undo()
    assert ended == 10 and sorted(env.reset_ids.tolist()) == [10, 11, 12]


@pytest.mark.parametrize("task", ["Reach", "LangPlaceCube"])
def test_automatic_resets_start_the_cpu_backends_episodes(task):
    warp, cpu = _pair(task, num_envs=3, max_episode_steps=3)
    for env in (warp, cpu):
        env.reset(seed=7)
    gen = torch.Generator().manual_seed(0)
    for _ in range(7):
        action = torch.rand(3, warp.action_spec.dim, generator=gen) * 0.2 - 0.1
        ow, rw, tw, uw, iw = warp.step(action)
        oc, rc, tc, uc, ic = cpu.step(action)
        assert torch.equal(iw["reset_ids"], ic["reset_ids"]) and torch.equal(uw, uc) and torch.equal(tw, tc)
        torch.testing.assert_close(ow["privileged"], oc["privileged"], atol=2e-4, rtol=0)
        torch.testing.assert_close(rw, rc, atol=2e-4, rtol=0)
        assert ow["instruction"] == oc["instruction"] and torch.equal(ow["elapsed"], oc["elapsed"])


def test_chunks_stop_ended_envs_and_hold_their_state_like_the_cpu_backend():
    warp, cpu = _pair("Reach", num_envs=2, max_episode_steps=6)
    for env in (warp, cpu):
        env.reset(seed=3, reset_ids=[0, 5])
    warp._elapsed[1] = cpu._elapsed[1] = 3  # env 1 ends after 3 steps, inside the chunk
    chunk = torch.full((2, 4, warp.action_spec.dim), 0.5)
    ow, rw, tw, uw, iw = warp.chunk_step(chunk)
    oc, rc, tc, uc, ic = cpu.chunk_step(chunk)
    assert torch.equal(iw["step_mask"], ic["step_mask"]) and iw["step_mask"][1].tolist() == [True] * 3 + [False]
    assert torch.equal(uw, uc) and uw.tolist() == [False, True]
    torch.testing.assert_close(rw, rc, atol=2e-4, rtol=0)
    torch.testing.assert_close(iw["final_obs"]["state"], ic["final_obs"]["state"], atol=2e-4, rtol=0)


def test_without_autoreset_finished_envs_hold_until_reset():
    warp, cpu = _pair("Reach", num_envs=2, max_episode_steps=2, autoreset=False)
    for env in (warp, cpu):
        env.reset(seed=1)
    warp._elapsed[0] = cpu._elapsed[0] = 1
    for _ in range(2):
        action = torch.full((2, warp.action_spec.dim), 0.3)
        ow, *_ = warp.step(action)
        oc, *_ = cpu.step(action)
        torch.testing.assert_close(ow["state"], oc["state"], atol=2e-4, rtol=0)
    with pytest.raises(RuntimeError, match="call reset"):
        warp.step(action)


def test_bad_actions_are_refused_before_any_world_moves():
    env = make_env("mujoco_warp", task="Reach", num_envs=2)
    obs, _ = env.reset(seed=0)
    action = torch.zeros(2, env.action_spec.dim)
    action[1, 0] = float("nan")
    with pytest.raises(ValueError, match=r"env\(s\) \[1\]"):
        env.step(action)
    torch.testing.assert_close(env._observation()["state"], obs["state"])
