"""Helpers for observation dicts: stacking steps, flattening and indexing samples."""

from __future__ import annotations

import torch

TEACHER_OBS = "teacher_obs"  # a rollout observation's entry holding what an on-policy distillation teacher reads


def rollout_observation(policy, raw: dict, teacher=None) -> dict:
    """What a rollout stores of the env's observation ``raw``: the policy's inputs (frozen-tower features cached)
    and, with a ``teacher`` (algo=opd), the teacher's own inputs under ``TEACHER_OBS``, cached by the teacher's
    own towers (it may read other cameras or keys than the student, or other frozen features)."""
    obs = policy.cache_features(raw)
    if teacher is not None:
        obs = obs | {TEACHER_OBS: teacher.cache_features(raw)}
    return obs


def stack_steps(steps: list[dict]) -> dict:
    """Stack S observation dicts of N envs into one dict with leading dims [S, N]."""
    out = {}
    for key, value in steps[0].items():
        if isinstance(value, dict):
            out[key] = stack_steps([s[key] for s in steps])
        elif isinstance(value, torch.Tensor):
            out[key] = torch.stack([s[key] for s in steps])
        else:
            out[key] = [s[key] for s in steps]  # instructions: list (S) of lists (N)
    return out


def flatten(obs: dict) -> dict:
    """Merge the leading [S, N] dims of a stacked obs dict into one sample dim [S*N]."""
    out = {}
    for key, value in obs.items():
        if isinstance(value, dict):
            out[key] = flatten(value)
        elif isinstance(value, torch.Tensor):
            out[key] = value.reshape(value.shape[0] * value.shape[1], *value.shape[2:])  # also for 0-wide keys
        else:
            out[key] = [text for row in value for text in row]
    return out


def concat(parts: list[dict], dim: int = 0) -> dict:
    """Concatenate obs dicts (nested camera dicts and instruction lists included) along ``dim``: 0, the sample dim of
    flat dicts, or 1, the env dim of stacked [S, N_k, ...] rollouts."""
    out = {}
    for key, value in parts[0].items():
        if isinstance(value, dict):
            out[key] = concat([p[key] for p in parts], dim)
        elif isinstance(value, torch.Tensor):
            out[key] = torch.cat([p[key] for p in parts], dim=dim)
        else:
            out[key] = _concat_lists([p[key] for p in parts], dim)
    return out


def _concat_lists(lists: list[list], dim: int) -> list:
    """Nested lists (instructions: [N] or [S][N]) joined along ``dim``."""
    if dim == 0:
        return [item for part in lists for item in part]
    return [_concat_lists([part[s] for part in lists], dim - 1) for s in range(len(lists[0]))]


def step_of(stacked: dict, step: int) -> dict:
    """Step ``step`` of a stacked [S, N, ...] obs dict: an [N, ...] obs dict."""
    return {key: step_of(value, step) if isinstance(value, dict) else value[step] for key, value in stacked.items()}


def step_chunk(env, action: torch.Tensor):
    """Execute an action chunk [N, T, A] (``step`` when T == 1, else ``chunk_step``).

    Returns obs, reward [N] summed over the executed steps, terminated, truncated, info, executed steps [N].
    """
    if action.shape[1] == 1:
        obs, reward, terminated, truncated, info = env.step(action[:, 0])
        return obs, reward, terminated, truncated, info, torch.ones_like(reward, dtype=torch.long)
    obs, rewards, terminated, truncated, info = env.chunk_step(action)
    return obs, rewards.sum(1), terminated, truncated, info, info["step_mask"].sum(1)


def select(obs: dict, index: torch.Tensor) -> dict:
    """Rows ``index`` of a flat obs dict."""
    out = {}
    for key, value in obs.items():
        if isinstance(value, dict):
            out[key] = select(value, index)
        elif isinstance(value, torch.Tensor):
            out[key] = value[index]
        else:
            out[key] = [value[i] for i in index.tolist()]
    return out
