"""Checkpoints: policy in safetensors + config JSON (save_pretrained), trainer state loaded with weights_only."""

from __future__ import annotations

import glob
import logging
import os
from typing import Callable

import torch

from policies import from_pretrained


class CorruptCheckpoint(Exception):
    """A checkpoint whose files cannot be read (a truncated or damaged file)."""


def run_identity(cfg) -> dict:
    """The settings a checkpoint's state depends on: resuming with others cannot continue the run."""
    return {"algo.name": cfg.algo.name, "algo.collector": cfg.algo.collector, "env.num_envs": cfg.env.num_envs,
            "env.task": cfg.env.task, "policy.name": cfg.policy.name, "policy.critic": cfg.policy.critic}


def checkpoint_path(directory: str, iteration: int) -> str:
    """Where the checkpoint of ``iteration`` lives under ``directory``."""
    return os.path.join(directory, f"iter_{iteration:06d}")


def save_checkpoint(directory: str, iteration: int, policy, optimizer, collector, counters: dict,
                    identity: dict | None = None, reference=None, extra: dict | None = None) -> str:
    """Write ``<directory>/iter_<n>/`` with policy/, reference/ (the KL reference, when given) and
    trainer_state.pt (optimizer, RNG, collector state and ``extra``); returns its path."""
    path = checkpoint_path(directory, iteration)
    policy.save_pretrained(os.path.join(path, "policy"))
    if reference is not None:
        reference.save_pretrained(os.path.join(path, "reference"))
    state = {
        "iteration": iteration,
        "identity": identity or {},
        "extra": extra or {},
        "counters": counters,
        "optimizer": optimizer.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state(policy.device) if policy.device.type == "cuda" else None,
        "collector": collector.state_dict(),
    }
    tmp = os.path.join(path, "trainer_state.pt.tmp")
    torch.save(state, tmp)
    os.replace(tmp, os.path.join(path, "trainer_state.pt"))  # complete checkpoints only
    return path


def complete_checkpoints(directory: str) -> list[str]:
    """Complete checkpoint folders under ``directory``, newest first."""
    return [p for p in sorted(glob.glob(os.path.join(directory, "iter_*")), reverse=True)
            if os.path.isfile(os.path.join(p, "trainer_state.pt"))]


def latest_checkpoint(directory: str) -> str | None:
    """Newest complete checkpoint folder under ``directory``, or None."""
    complete = complete_checkpoints(directory)
    return complete[0] if complete else None


def needs_final_checkpoint(output_dir: str, iteration: int, interrupted: bool, checkpoint_interval: int) -> bool:
    """Whether a run ending at ``iteration`` saves one more checkpoint (so resume goes on from there): after Ctrl-C or
    with periodic checkpoints on, unless the newest complete checkpoint is already this iteration's."""
    checkpoints = os.path.join(output_dir, "checkpoints")
    return bool(interrupted or checkpoint_interval) and \
        latest_checkpoint(checkpoints) != checkpoint_path(checkpoints, iteration)


def resume_latest(output_dir: str, load: Callable[[str], None]) -> str:
    """``load(path)`` the newest checkpoint under ``<output_dir>/checkpoints`` that reads (a damaged one is named and
    skipped for the one before); returns its path."""
    complete = complete_checkpoints(os.path.join(output_dir, "checkpoints"))
    if not complete:
        raise FileNotFoundError(f"resume=true but no checkpoint under {output_dir}/checkpoints; "
                                "start without resume or point experiment.output_dir at the old run")
    for path in complete:
        try:
            load(path)
        except CorruptCheckpoint as damaged:
            logging.getLogger("embodied-train").warning(f"warning: {damaged}; trying the previous checkpoint")
            continue
        return path
    raise FileNotFoundError(f"resume=true but no checkpoint under {output_dir}/checkpoints can be read")


def read_checkpoint(path: str) -> tuple:
    """The saved policy and trainer state of ``path``; CorruptCheckpoint names the file that cannot be read."""
    try:
        loaded = from_pretrained(os.path.join(path, "policy"))
    except Exception as error:  # safetensors, JSON or shape errors of a damaged file
        raise CorruptCheckpoint(f"{path}/policy cannot be read ({type(error).__name__}: {error})") from None
    try:  # on the CPU first: the optimizer moves its state to the parameters' device, RNG states stay CPU tensors
        state = torch.load(os.path.join(path, "trainer_state.pt"), weights_only=True, map_location="cpu")
    except Exception as error:
        raise CorruptCheckpoint(f"{path}/trainer_state.pt cannot be read ({type(error).__name__}: {error})") from None
    return loaded, state


def load_checkpoint(path: str, policy, optimizer, collector, identity: dict | None = None,
                    reference=None) -> tuple[int, dict, dict]:
    """Restore weights (and the KL ``reference``'s, when saved), optimizer, RNG and env state in place; returns
    (iteration, counters, extra). ``identity`` (``run_identity`` of this run) must match the checkpoint's."""
    loaded, state = read_checkpoint(path)
    if reference is not None and os.path.isdir(os.path.join(path, "reference")):
        try:
            reference.load_state_dict(from_pretrained(os.path.join(path, "reference")).state_dict())
        except Exception as error:
            raise CorruptCheckpoint(f"{path}/reference cannot be read ({type(error).__name__}: {error})") from None
    if loaded.policy_type != policy.policy_type:
        raise ValueError(f"{path} holds a {loaded.policy_type!r} policy but this run trains {policy.policy_type!r}: "
                         "resume with the run's own settings, or give this run its own experiment.name")
    changed = {k: (v, (identity or {}).get(k)) for k, v in state.get("identity", {}).items()
               if identity is not None and identity.get(k) != v}
    if changed:
        raise ValueError(f"{path} was written with " + ", ".join(f"{k}={v[0]}" for k, v in changed.items()) +
                         " but this run sets " + ", ".join(f"{k}={v[1]}" for k, v in changed.items()) +
                         ": resume with the run's own settings (they shape its saved state), or give a new run "
                         "its own experiment.name")
    policy.load_state_dict(loaded.state_dict())
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    if state.get("cuda_rng") is not None and policy.device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda_rng"], policy.device)
    try:
        collector.load_state_dict(state["collector"])
    except KeyError as missing:
        raise ValueError(f"{path} holds the rollout state of another collector (no {missing}): resume with the "
                         "dist.* and algo.collector settings of the run that wrote it") from None
    return int(state["iteration"]), dict(state["counters"]), dict(state.get("extra", {}))
