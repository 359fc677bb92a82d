"""Replay buffer for off-policy RL: time-major storage of N parallel envs, n-step targets, crash-safe on disk.

Step t of env e is stored once, at slot ``t % capacity``: the observation it started from, the action, the reward,
and whether it terminated or was truncated. The next observation is the one stored at slot t+1, except where the
step ended its episode: then it is the episode's last observation (the env's ``info["final_obs"]``), kept aside.
Observations are tensors (images stay uint8 as the env returns them; drop or cache text such as
instructions first, e.g. with ``policy.cache_features``). A sample of step t gives the n-step target
``return = sum_k gamma^k r_{t+k}`` up to the first step that ends the episode, the observation after it, and the
discount of that observation's value: ``gamma^(k+1)``, or 0 when the episode terminated (a truncated episode is
bootstrapped from its last observation).

With a ``directory`` the buffer is durable: every ``flush_every`` steps (or at each ``flush()`` call, with
``flush_every=None``) the new steps go to one segment file, written to a temporary name and renamed into place, then
the manifest listing the segments is replaced the same way, so a kill -9 at any moment leaves the last complete
manifest and every segment it names. ``ReplayBuffer.open`` reloads them: at most the steps after the last flush are
lost. The segments the previous flush needed are kept too, so ``open(..., steps=<that flush's steps>)`` can go back
one flush (a run killed between flushing its buffer and writing the checkpoint of the same moment resumes from its
previous checkpoint, with the buffer as it was then).
"""

from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np
import torch

from embodied.data.lerobot_format import atomic_write_bytes, atomic_write_json

MANIFEST = "manifest.json"


def flat_items(obs: dict, prefix: str = "") -> dict:
    """``{"rgb": {"front": x}, "state": y}`` -> ``{"rgb/front": x, "state": y}``."""
    out = {}
    for key, value in obs.items():
        if isinstance(value, dict):
            out |= flat_items(value, f"{prefix}{key}/")
        else:
            out[f"{prefix}{key}"] = value
    return out


def nested(flat: dict) -> dict:
    """The inverse of ``flat_items``."""
    out: dict = {}
    for key, value in flat.items():
        *parents, leaf = key.split("/")
        node = out
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return out


class ReplayBuffer:
    """The last ``capacity`` steps of ``num_envs`` envs, sampled as n-step transitions (``n_step``, ``gamma``)."""

    def __init__(self, capacity: int, num_envs: int, n_step: int = 1, gamma: float = 0.99,
                 directory: str | None = None, flush_every: int | None = 1000, device: str = "cpu"):
        if capacity <= n_step or n_step < 1 or num_envs < 1 or not 0.0 <= gamma <= 1.0:
            raise ValueError(f"replay buffer needs capacity > n_step >= 1, num_envs >= 1 and 0 <= gamma <= 1, got "
                             f"capacity={capacity} n_step={n_step} num_envs={num_envs} gamma={gamma}")
        self.capacity, self.num_envs, self.n_step, self.gamma = capacity, num_envs, n_step, gamma
        self.directory, self.flush_every, self.device = directory, flush_every, torch.device(device)
        self.steps = 0  # steps added since the buffer was created (slot = step % capacity)
        self.flushed = 0  # steps already in segment files
        self.store: dict[str, torch.Tensor] = {}  # [capacity, N, ...] per observation key and for action/reward/...
        self.finals: dict[tuple[int, int], dict] = {}  # (step, env) -> last observation of an episode that ended
        self.segments: list[str] = []

    # ------------------------------------------------------------------------------------------- adding steps
    def add(self, obs: dict, action: torch.Tensor, reward: torch.Tensor, terminated: torch.Tensor,
            truncated: torch.Tensor, final_obs: dict | None = None) -> None:
        """Store one step of every env: ``obs`` it started from, ``action`` [N, A], ``reward``, ``terminated`` and
        ``truncated`` [N]; ``final_obs`` (the env's ``info["final_obs"]``, all N envs) where any episode ended."""
        n = self.num_envs
        row = {f"obs/{k}": v for k, v in flat_items(obs).items()} | {
            "action": action, "reward": reward, "terminated": terminated, "truncated": truncated}
        for key, value in row.items():
            assert isinstance(value, torch.Tensor) and value.shape[0] == n, \
                f"{key}: expected a tensor with {n} envs first, got {type(value).__name__} {getattr(value, 'shape', '')}"
        ended = (terminated | truncated).cpu()
        if ended.any() and final_obs is None:
            raise ValueError("an episode ended at this step: pass the env's info['final_obs'] as final_obs")
        self._write_row(self.steps, row)
        for env in torch.nonzero(ended).flatten().tolist():
            self.finals[(self.steps, env)] = {k: v[env].to(self.device) for k, v in flat_items(final_obs).items()}
        self.steps += 1
        self._forget_overwritten_finals()
        if self.directory and self.flush_every and self.steps - self.flushed >= self.flush_every:
            self.flush()

    def _forget_overwritten_finals(self) -> None:
        self.finals = {key: value for key, value in self.finals.items() if key[0] >= self.steps - self.capacity}

    def _write_row(self, step: int, row: dict) -> None:
        if not self.store:
            self.store = {k: torch.zeros(self.capacity, *v.shape, dtype=v.dtype, device=self.device)
                          for k, v in row.items()}
        if set(row) != set(self.store):
            raise ValueError(f"step keys {sorted(row)} differ from the buffer's {sorted(self.store)}")
        for key, value in row.items():
            self.store[key][step % self.capacity] = value.to(self.device)

    def __len__(self) -> int:
        """Steps of each env that can be sampled now (each needs the n steps after it stored)."""
        return max(0, min(self.steps, self.capacity) - self.n_step)

    # ------------------------------------------------------------------------------------------------ sampling
    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> dict:
        """``batch_size`` random n-step transitions: ``obs``, ``action``, ``reward`` (the n-step return),
        ``next_obs`` and ``discount`` (the factor of ``next_obs``'s value in the target; 0 after termination)."""
        if len(self) == 0:
            raise ValueError(f"nothing to sample yet: the buffer holds {self.steps} steps, sampling needs "
                             f"n_step + 1 = {self.n_step + 1}")
        oldest = max(0, self.steps - self.capacity)
        step = oldest + torch.randint(len(self), (batch_size,), generator=generator)  # [B] absolute steps
        env = torch.randint(self.num_envs, (batch_size,), generator=generator)  # [B]
        return self.transitions(step, env)

    def transitions(self, step: torch.Tensor, env: torch.Tensor) -> dict:
        """The n-step transitions that start at absolute ``step`` [B] of ``env`` [B]."""
        k = torch.arange(self.n_step)
        slots = (step[:, None] + k) % self.capacity  # [B, n]
        reward = self.store["reward"][slots, env[:, None]].float()  # [B, n]
        ended = (self.store["terminated"][slots, env[:, None]] | self.store["truncated"][slots, env[:, None]]).cpu()
        first_end = torch.where(ended.any(1), ended.float().argmax(1), torch.full_like(step, self.n_step))  # [B]
        live = (k[None] <= first_end[:, None]).to(self.device)  # [B, n]: steps up to and including the end
        powers = self.gamma ** k.to(self.device, torch.float32)  # [n]
        returns = (reward * powers * live).sum(1)  # [B]
        after = torch.clamp(first_end + 1, max=self.n_step)  # [B] steps until the bootstrap observation
        discount = self.gamma ** after.to(self.device, torch.float32)  # [B]
        obs_keys = [key for key in self.store if key.startswith("obs/")]
        next_slot = ((step + after) % self.capacity).to(self.device)
        next_obs = {key[4:]: self.store[key][next_slot, env] for key in obs_keys}
        for row in torch.nonzero(first_end < self.n_step).flatten().tolist():
            end_step, e = int(step[row] + first_end[row]), int(env[row])
            end_slot = end_step % self.capacity
            if bool(self.store["terminated"][end_slot, e]):
                discount[row] = 0.0
            for key, value in self.finals[(end_step, e)].items():
                next_obs[key][row] = value
        slot = (step % self.capacity).to(self.device)
        return {"obs": nested({key[4:]: self.store[key][slot, env] for key in obs_keys}),
                "action": self.store["action"][slot, env], "reward": returns, "next_obs": nested(next_obs),
                "discount": discount, "slot": slot, "env": env.to(self.device)}

    def returns_to_go(self) -> torch.Tensor:
        """Discounted reward-to-go of every stored step [steps, N]: the sum of ``gamma^k r`` to the end of its
        episode (a truncated episode's, or the last stored step's, tail counts 0). Cal-QL's lower bound on Q.
        Only for a buffer that never wrapped (a demonstration buffer)."""
        if self.steps > self.capacity:
            raise ValueError(f"returns_to_go needs every step of each episode: this buffer wrapped ({self.steps} "
                             f"steps in {self.capacity} slots)")
        reward = self.store["reward"][:self.steps].float()  # [T, N]
        ended = self.store["terminated"][:self.steps] | self.store["truncated"][:self.steps]  # [T, N]
        returns = torch.zeros_like(reward)
        following = torch.zeros_like(reward[0])  # [N]: the return of the step after t, 0 past an episode's end
        for t in range(self.steps - 1, -1, -1):
            following = reward[t] + self.gamma * following * (~ended[t]).float()
            returns[t] = following
        return returns

    # ---------------------------------------------------------------------------------------------- durability
    def flush(self) -> None:
        """Write the steps added since the last flush as one segment, then the manifest that names it."""
        if not self.directory or self.steps == self.flushed:
            return
        os.makedirs(self.directory, exist_ok=True)
        first = max(self.flushed, self.steps - self.capacity)  # older unflushed steps were already overwritten
        steps = np.arange(first, self.steps)
        arrays = {f"store/{k}": v[steps % self.capacity].cpu().numpy() for k, v in self.store.items()}
        ends = sorted(key for key in self.finals if key[0] >= first)
        arrays["final_index"] = np.array(ends, dtype=np.int64).reshape(-1, 2)
        for key in (self.finals[ends[0]] if ends else {}):
            arrays[f"final/{key}"] = np.stack([self.finals[end][key].cpu().numpy() for end in ends])
        name = f"segment_{first:012d}_{self.steps:012d}.npz"
        packed = io.BytesIO()
        np.savez(packed, **arrays)
        atomic_write_bytes(os.path.join(self.directory, name), packed.getvalue())
        self.segments.append(name)
        previous, self.flushed = self.flushed, self.steps
        self.segments = [s for s in self.segments if _segment_end(s) > previous - self.capacity]  # open(steps=previous)
        manifest = {"capacity": self.capacity, "num_envs": self.num_envs, "n_step": self.n_step,
                    "gamma": self.gamma, "steps": self.steps, "segments": self.segments}
        atomic_write_json(os.path.join(self.directory, MANIFEST), manifest)
        for stale in set(os.listdir(self.directory)) - set(self.segments) - {MANIFEST}:
            if stale.startswith("segment_") and ".tmp" not in stale:
                os.remove(os.path.join(self.directory, stale))

    @classmethod
    def open(cls, directory: str, flush_every: int | None = 1000, device: str = "cpu",
             steps: int | None = None) -> "ReplayBuffer":
        """The buffer as its last complete flush to ``directory`` left it, or as the flush at ``steps`` left it (the
        last or the one before: what a checkpoint written after that flush recorded)."""
        path = os.path.join(directory, MANIFEST)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no replay buffer in {directory} ({MANIFEST} missing)")
        with open(path) as f:
            manifest = json.load(f)
        steps = manifest["steps"] if steps is None else steps
        buffer = cls(manifest["capacity"], manifest["num_envs"], manifest["n_step"], manifest["gamma"],
                     directory, flush_every, device)
        names = [name for name in manifest["segments"] if _segment_end(name) <= steps]
        cursor = steps  # the kept steps must be one unbroken run of segments back to steps - capacity
        for name in reversed(names):
            if _segment_end(name) == cursor:
                cursor = _segment_start(name)
        if cursor > max(0, steps - buffer.capacity):
            raise ValueError(f"the replay buffer in {directory} cannot be restored to step {steps}: its segments "
                             f"({manifest['segments']}) hold no unbroken record of steps {max(0, steps - buffer.capacity)}"
                             f" to {steps}; start a new run (resume=false) in a new folder")
        for stale in os.listdir(directory):  # a write that a kill -9 cut short
            if ".tmp" in stale:
                os.remove(os.path.join(directory, stale))
        for name in names:
            try:
                buffer._load_segment(os.path.join(directory, name))
            except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
                raise ValueError(f"replay buffer segment {os.path.join(directory, name)} cannot be read "
                                 f"({type(error).__name__}: {error}); start a new run (resume=false) in a new folder"
                                 ) from None
        buffer.steps = buffer.flushed = steps
        buffer.segments = names
        buffer._forget_overwritten_finals()
        return buffer

    def _load_segment(self, path: str) -> None:
        """Write the steps and episode ends of one segment file into the ring."""
        name = os.path.basename(path)
        with np.load(path) as segment:
            store = {k[len("store/"):]: torch.from_numpy(segment[k]) for k in segment.files if k.startswith("store/")}
            for offset, step in enumerate(range(_segment_start(name), _segment_end(name))):
                self._write_row(step, {k: v[offset] for k, v in store.items()})
            final_keys = [k for k in segment.files if k.startswith("final/")]
            for row, (step, env) in enumerate(segment["final_index"].tolist()):
                self.finals[(step, env)] = {k[len("final/"):]: torch.from_numpy(segment[k][row]).to(self.device)
                                            for k in final_keys}


def _segment_start(name: str) -> int:
    return int(name.split("_")[1])


def _segment_end(name: str) -> int:
    return int(name.split("_")[2].split(".")[0])


def sample_mixture(sources: dict[str, ReplayBuffer], ratios: dict[str, float], batch_size: int,
                   generator: torch.Generator | None = None) -> dict:
    """One batch from several buffers in fixed proportions (RLPD: half demonstrations, half online; interventions);
    ``source`` [B] says which buffer each row came from (the index in ``sources``)."""
    from embodied.rollout.obs import concat

    if set(ratios) != set(sources) or any(r < 0 for r in ratios.values()) or sum(ratios.values()) <= 0:
        raise ValueError(f"ratios {ratios} must give every source of {sorted(sources)} a weight >= 0, summing above 0")
    total = sum(ratios.values())
    names = list(sources)
    counts = [int(batch_size * ratios[name] / total) for name in names]
    counts[-1] += batch_size - sum(counts)
    parts = [sources[name].sample(count, generator) for name, count in zip(names, counts) if count]
    batch = {key: (concat([p[key] for p in parts]) if isinstance(parts[0][key], dict)
                   else torch.cat([p[key] for p in parts])) for key in parts[0]}
    batch["source"] = torch.cat([torch.full((count,), i) for i, count in enumerate(counts) if count])
    return batch
