"""One env worker: a batched env slice, a policy copy and a collector, with its own random stream."""

from __future__ import annotations

import dataclasses

import torch

from embodied.rollout.merge import sub_seed
from embodied.runner.builders import build_collector, build_env, build_policy


class EnvWorker:
    """Worker ``index`` of ``num_workers``: simulates ``env.num_envs / num_workers`` envs with broadcast weights.

    Its torch random stream (action sampling) is its own, seeded from ``sub_seed(seed, index)``, so the
    worker gives the same rollouts in this process and in a Ray actor.
    """

    def __init__(self, cfg, index: int, num_workers: int, sim_threads: int = 0):
        torch.set_num_threads(max(1, cfg.experiment.torch_threads))
        # workers infer on the CPU; their rollouts go to the learner's device (experiment.device)
        cfg = dataclasses.replace(cfg, experiment=dataclasses.replace(cfg.experiment, device="cpu"))
        self.seed = sub_seed(cfg.experiment.seed, index)
        num_envs = cfg.env.num_envs // num_workers
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            spec_env = build_env(cfg, 1, autoreset=True, num_threads=1)
            self.policy = build_policy(cfg, spec_env, self.seed)  # weights come from the learner
            spec_env.close()
            self.collector = build_collector(cfg, self.policy, num_envs, sim_threads, share=num_workers)
            self.rng_state = torch.get_rng_state()
        self.collector.start(self.seed)

    def set_weights(self, state_dict: dict) -> None:
        """Load the learner's weights and normaliser statistics (frozen parameters only when sent)."""
        unexpected = self.policy.load_state_dict(state_dict, strict=False).unexpected_keys
        if unexpected:
            raise KeyError(f"weights for another policy: unexpected keys {unexpected[:5]}")

    def collect(self) -> tuple[dict, dict]:
        """One rollout with the current weights, on this worker's random stream."""
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self.rng_state)
            out = self.collector.collect()
            self.rng_state = torch.get_rng_state()
        return out

    def restart(self, attempt: int) -> None:
        """After a crash: new episodes from ``sub_seed(seed, attempt)`` instead of replaying the first ones."""
        self.collector.start(sub_seed(self.seed, attempt))

    def state_dict(self) -> dict:
        """Env snapshots, bookkeeping and random stream for exact resume."""
        return {"collector": self.collector.state_dict(), "rng": self.rng_state}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a ``state_dict`` snapshot."""
        self.collector.load_state_dict(state["collector"])
        self.rng_state = state["rng"]

    def close(self) -> None:
        """Release the env (and the pipeline thread)."""
        if hasattr(self.collector, "close"):
            self.collector.close()  # a pipelined collector closes its stage envs
        else:
            self.collector.env.close()
