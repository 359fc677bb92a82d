"""Rendered scenes without actions: fresh resets with the arm pushed somewhere, labelled with the task state.

In demonstrations the arm's trajectory gives the goal away (after a few steps proprioception alone says where
the expert is heading), so an auxiliary head that predicts the task state from demonstration frames can learn it
from proprioception and leave the camera towers untaught. These frames break that link: the objects and the goal
are wherever a reset put them and the arm wherever a random push left it, so the task state can only be read from
the images. ``data.scene_frames`` of them train ``policy.scene_loss`` beside the demonstrations in ``algo=sft``.
"""

from __future__ import annotations

import torch
from tqdm import tqdm

from embodied.data.stats import feature_stats, mixture_stats
from embodied.rollout.obs import concat, select

SCENE_SEED = 50_000  # reset seeds of wave w: SCENE_SEED + w, apart from demonstrations (0...) and evaluations
PUSH_STEPS = (0, 4, 8, 12)  # wave w pushes the arm PUSH_STEPS[w % 4] steps in one random constant direction
SCENE_KEYS = ("state", "privileged", "rgb", "instruction")


@torch.no_grad()
def render_scenes(env, count: int, seed: int, progress: bool = False) -> dict:
    """``count`` observations of ``env`` (autoreset off) with their task state: flat obs dict with leading dim
    ``count``. Wave w resets every world with seed ``SCENE_SEED + w`` and drives each with one random constant
    action (uniform within the action bounds) for ``PUSH_STEPS[w % 4]`` steps."""
    if count < 1:
        raise ValueError(f"data.scene_frames must be >= 1 to render scenes, got {count}")
    n, spec = env.num_envs, env.action_spec
    generator = torch.Generator().manual_seed(seed)
    parts, rendered = [], 0
    with tqdm(total=count, disable=not progress, desc="rendering scenes", unit="frame", dynamic_ncols=True) as bar:
        for wave in range((count + n - 1) // n):
            obs, _ = env.reset(seed=SCENE_SEED + wave)
            push = spec.low + (spec.high - spec.low) * torch.rand(n, spec.dim, generator=generator)  # [N, A]
            for _ in range(PUSH_STEPS[wave % len(PUSH_STEPS)]):
                obs, *_ = env.step(push)
            keep = min(n, count - rendered)
            parts.append(select({k: obs[k] for k in SCENE_KEYS if k in obs}, torch.arange(keep)))
            rendered += keep
            bar.update(keep)
    return concat(parts)


def stats_with_scenes(dataset_stats: dict, task_states: torch.Tensor) -> dict:
    """``dataset_stats`` with the task state's replaced by the equal mixture of the demonstrations' and the scenes'
    (``task_states`` [M, E]; the scenes' alone when the demonstrations have none).

    Each SFT step weighs its demonstration and scene terms equally, so the task state is z-scored over both. With the
    demonstrations' alone, a quantity nearly constant there (the cube under the open gripper: 1 cm std) but not in
    the scenes would outweigh the goal's error a hundredfold in the scene loss.
    """
    key = "observation.environment_state"
    scenes = {key: feature_stats(task_states.double().numpy(), is_image=False)}
    if key not in dataset_stats:
        return dataset_stats | scenes
    return dataset_stats | mixture_stats([{key: dataset_stats[key]}, scenes], [0.5, 0.5])


class SceneStream:
    """Endless random minibatches (with replacement) of rendered scenes."""

    def __init__(self, scenes: dict, batch_size: int, seed: int):
        if batch_size < 1:
            raise ValueError(f"data.scene_batch must be >= 1, got {batch_size}")
        self.scenes = scenes
        self.count = len(scenes["state"])
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def __next__(self) -> dict:
        return select(self.scenes, torch.randint(self.count, (self.batch_size,), generator=self.generator))

    def __iter__(self):
        return self
