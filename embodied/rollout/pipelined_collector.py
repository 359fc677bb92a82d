"""Two-stage pipelined rollouts: one half of the envs simulates while the policy infers for the other half."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import torch

from embodied.rollout.merge import merge_batches, merge_metrics, sub_seed
from embodied.rollout.obs import step_chunk
from embodied.rollout.step_collector import StepCollector


class PipelinedStepCollector:
    """A ``StepCollector`` over two env stages whose simulation (on a helper thread) overlaps the other's inference.

    Schedule of one rollout step: infer(A); [sim(A) || record(B), infer(B)]; [sim(B) || record(A)].
    MuJoCo steps release the GIL, so the overlap is real where simulation and inference each get a core.
    The envs are built and touched only on the simulation thread (an EGL renderer's context belongs to one thread).
    """

    def __init__(self, env_factories: list, policy, cfg, teacher=None):
        if len(env_factories) != 2:
            raise ValueError(f"a pipelined collector takes 2 env stages, got {len(env_factories)}")
        self._sim = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sim-stage")
        envs = [self._on_sim(factory) for factory in env_factories]
        self.stages = [StepCollector(env, policy, cfg, teacher) for env in envs]
        self.cfg = cfg

    def _on_sim(self, fn, *args):
        return self._sim.submit(fn, *args).result()

    def start(self, seed: int) -> None:
        """Reset both stages (stage k with ``sub_seed(seed, k)``, so their episodes differ)."""
        for k, stage in enumerate(self.stages):
            self._on_sim(stage.start, sub_seed(seed, k))

    @torch.no_grad()
    def collect(self) -> tuple[dict, dict]:
        """Returns the flat training batch of both stages and their merged rollout metrics."""
        a, b = self.stages
        a.begin(), b.begin()
        pending_b = None  # (inferred, future) of stage B's previous step
        for _ in range(self.cfg.rollout_steps):
            inferred_a = a.infer()
            future_a = self._sim.submit(step_chunk, a.env, inferred_a[1])
            if pending_b is not None:
                b.record(pending_b[0], pending_b[1].result())
            inferred_b = b.infer()
            stepped_a = future_a.result()
            pending_b = (inferred_b, self._sim.submit(step_chunk, b.env, inferred_b[1]))
            a.record(inferred_a, stepped_a)
        b.record(pending_b[0], pending_b[1].result())
        parts = [a.finish(), b.finish()]
        return merge_batches([p[0] for p in parts]), merge_metrics([p[1] for p in parts])

    def state_dict(self) -> dict:
        """Both stages' env snapshots and bookkeeping."""
        return {"stages": [self._on_sim(stage.state_dict) for stage in self.stages]}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a ``state_dict`` snapshot."""
        for stage, part in zip(self.stages, state["stages"]):
            self._on_sim(stage.load_state_dict, part)

    def close(self) -> None:
        """Close the stage envs and stop the simulation thread."""
        for stage in self.stages:
            self._on_sim(stage.env.close)
        self._sim.shutdown()
