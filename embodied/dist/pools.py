"""Env-worker pools with one interface: in this process (``local``) or as restartable Ray actors (``ray``)."""

from __future__ import annotations

import logging
import os
import time

from embodied.dist.worker import EnvWorker

log = logging.getLogger(__name__)


class LocalWorkerPool:
    """``num_workers`` env workers run one after another in this process (the reference for the Ray pool)."""

    def __init__(self, cfg, num_workers: int):
        self.workers = [EnvWorker(cfg, k, num_workers, cfg.env.num_threads) for k in range(num_workers)]
        self.primed = [False] * num_workers  # has the worker received the frozen weights?

    def collect(self, weights: dict, frozen) -> list[tuple[dict, dict]]:
        """Send ``weights`` (plus ``frozen()`` to a worker the first time) and collect one rollout from each."""
        out = []
        for k, worker in enumerate(self.workers):
            worker.set_weights(weights if self.primed[k] else weights | frozen())
            self.primed[k] = True
            out.append(worker.collect())
        return out

    def state_dicts(self) -> list[dict]:
        """Every worker's ``state_dict``."""
        return [w.state_dict() for w in self.workers]

    def load_state_dicts(self, states: list[dict]) -> None:
        """Restore every worker from ``state_dicts()``."""
        for worker, state in zip(self.workers, states, strict=True):
            worker.load_state_dict(state)

    def close(self) -> None:
        """Release the workers' envs."""
        for worker in self.workers:
            worker.close()


def _import_ray():
    try:
        import ray
    except ImportError as err:  # optional dependency
        raise ImportError("dist=ray needs Ray: pip install 'embodied-vla[dist]'") from err
    return ray


class RayWorkerPool:
    """Env workers as Ray actors; a crashed actor is restarted by Ray, re-seeded, sent the weights and re-asked.

    Connects to ``address`` (else ``RAY_ADDRESS``), or starts a local cluster of ``num_cpus`` CPUs.
    Weights go to the object store once per iteration and every worker reads them from there.
    """

    def __init__(self, cfg, num_workers: int, address: str = "", num_cpus: int = 0, max_restarts: int = 3):
        ray = self.ray = _import_ray()
        self.max_restarts = max_restarts
        self.restart_timeout_s = 120.0
        self.restarts = [0] * num_workers
        if not ray.is_initialized():
            address = address or os.environ.get("RAY_ADDRESS", "")
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False)
        sim_threads = cfg.env.num_threads or max(1, int(ray.cluster_resources().get("CPU", 1)) // num_workers)
        actor = ray.remote(num_cpus=0, max_restarts=max_restarts)(EnvWorker)
        self.workers = [actor.remote(cfg, k, num_workers, sim_threads) for k in range(num_workers)]
        self.primed = [False] * num_workers  # has the worker received the frozen weights?
        ray.get([w.state_dict.remote() for w in self.workers])  # surface construction errors here

    def collect(self, weights: dict, frozen) -> list[tuple[dict, dict]]:
        """Send ``weights`` (plus ``frozen()`` to a new or restarted worker) and collect from every worker at once."""
        ray = self.ray
        refs = {True: ray.put(weights)}
        if not all(self.primed):
            refs[False] = ray.put(weights | frozen())
        pending = {k: self._ask(k, refs) for k in range(len(self.workers))}
        out = {}
        while pending:
            for k, task in list(pending.items()):
                try:
                    out[k] = ray.get(task)
                    del pending[k]
                except ray.exceptions.RayActorError as err:
                    self._recover(k, err)
                    if False not in refs:
                        refs[False] = ray.put(weights | frozen())
                    pending[k] = self._ask(k, refs)
        return [out[k] for k in range(len(self.workers))]

    def _ask(self, k: int, refs: dict):
        """Weights (the full set if worker ``k`` is not primed), then a rollout."""
        self.workers[k].set_weights.remote(refs[self.primed[k]])
        self.primed[k] = True
        return self.workers[k].collect.remote()

    def _recover(self, k: int, err) -> None:
        """Worker ``k`` died: wait for Ray's restart and re-seed its envs (the caller asks it again)."""
        self.restarts[k] += 1
        if self.restarts[k] > self.max_restarts:
            raise RuntimeError(f"env worker {k} died {self.restarts[k]} times (dist.max_restarts="
                               f"{self.max_restarts}); last error: {err}") from err
        log.warning("env worker %d died (%s); restarted by Ray, its episodes start afresh", k, type(err).__name__)
        deadline = time.monotonic() + self.restart_timeout_s
        while True:  # calls fail with ActorUnavailableError until Ray has rebuilt the actor
            try:
                self.ray.get(self.workers[k].restart.remote(self.restarts[k]))
                break
            except self.ray.exceptions.ActorUnavailableError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"env worker {k} did not come back within {self.restart_timeout_s} s") from err
                time.sleep(0.2)
        self.primed[k] = False  # a rebuilt worker has its own frozen towers: send ours again

    def state_dicts(self) -> list[dict]:
        """Every worker's ``state_dict``."""
        return self.ray.get([w.state_dict.remote() for w in self.workers])

    def load_state_dicts(self, states: list[dict]) -> None:
        """Restore every worker from ``state_dicts()``."""
        self.ray.get([w.load_state_dict.remote(s) for w, s in zip(self.workers, states, strict=True)])

    def close(self) -> None:
        """Stop the actors (the cluster stays up for the next run in this process)."""
        for worker in self.workers:
            self.ray.kill(worker)
