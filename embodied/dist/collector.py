"""The trainer's collector for any ``dist`` setting: one process, or env workers in a pool."""

from __future__ import annotations

from embodied.algorithms.registry import COLLECTORS
from embodied.dist.pools import LocalWorkerPool, RayWorkerPool
from embodied.rollout.device_bridge import to_device
from embodied.rollout.merge import merge_batches, merge_metrics
from embodied.runner.builders import build_collector, collector_over


class DistributedCollector:
    """Collector interface over an env-worker pool: broadcast weights, gather rollouts, merge them in worker order
    (``merge``: flat batches concatenated by default; a collector class may bring its own, e.g. transitions side
    by side)."""

    def __init__(self, pool, policy, merge=merge_batches):
        self.pool = pool
        self.policy = policy
        self.merge = merge

    def start(self, seed: int) -> None:
        """Workers reset themselves when built (worker k with ``sub_seed(seed, k)``)."""

    def collect(self) -> tuple[dict, dict]:
        """One rollout from every worker with the learner's current weights.

        Frozen parameters (pretrained towers, a residual policy's base) go to each worker once; every iteration
        sends only what training changes: trainable parameters and buffers (normaliser statistics).
        """
        state = {key: value.cpu() for key, value in self.policy.state_dict().items()}  # workers infer on the CPU
        frozen_names = {name for name, p in self.policy.named_parameters() if not p.requires_grad}
        trained = {key: value for key, value in state.items() if key not in frozen_names}
        parts = self.pool.collect(trained, lambda: {key: state[key] for key in frozen_names})
        return to_device(self.merge([p[0] for p in parts]), self.policy.device), merge_metrics([p[1] for p in parts])

    def state_dict(self) -> dict:
        """Every worker's env snapshot, bookkeeping and random stream."""
        return {"workers": self.pool.state_dicts()}

    def load_state_dict(self, state: dict) -> None:
        """Continue every worker from a ``state_dict`` snapshot."""
        self.pool.load_state_dicts(state["workers"])

    def close(self) -> None:
        """Stop the workers."""
        self.pool.close()


def make_collector(cfg, env, policy, teacher=None):
    """``dist.backend`` single: a collector over ``env`` (or two new stages); local / ray: an env-worker pool
    (each worker loads ``algo.teacher`` itself). ``teacher``: the distillation teacher the trainer holds."""
    d = cfg.dist
    if d.backend == "single":
        if d.pipeline_stages == 2:
            return build_collector(cfg, policy, env.num_envs, teacher=teacher)
        return collector_over(env, policy, cfg.algo, teacher)
    if d.backend == "local":
        pool = LocalWorkerPool(cfg, d.num_env_workers)
    else:
        pool = RayWorkerPool(cfg, d.num_env_workers, d.address, d.num_cpus, d.max_restarts)
    return DistributedCollector(pool, policy, getattr(COLLECTORS.lookup(cfg.algo.collector), "merge", merge_batches))
