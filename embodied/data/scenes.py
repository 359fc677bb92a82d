"""Rendered scenes without actions: fresh resets with the arm pushed somewhere, labelled with the task state.

In demonstrations the arm's trajectory gives the goal away (after a few steps proprioception alone says where
the expert is heading), so an auxiliary head that predicts the task state from demonstration frames can learn it
from proprioception and leave the camera towers untaught. These frames break that link: the objects and the goal
are wherever a reset put them and the arm wherever a random push left it, so the task state can only be read from
the images. ``data.scene_frames`` of them train ``policy.scene_loss`` beside the demonstrations in ``algo=sft``.

Pushed arms never hold the cube, so with ``data.carried_scenes`` every other wave is a carried scene instead: the
task's scripted expert drives a camera-less copy of the env part of the way (cube grasped, lifted, carried), then the
markers move to those of another reset and the camera env renders that state. The expert heads for the old goal,
so the arm still says nothing of the goal shown.
"""

from __future__ import annotations

import torch
from tqdm import tqdm

from embodied.data.stats import feature_stats, mixture_stats
from embodied.rollout.obs import concat, select

SCENE_SEED = 50_000  # reset seeds of wave w: SCENE_SEED + w, apart from demonstrations (0...) and evaluations
PUSH_STEPS = (0, 4, 8, 12)  # wave w pushes the arm PUSH_STEPS[w % 4] steps in one random constant direction
CARRY_STEPS = (12, 15, 18, 24)  # carried wave c: the expert drives CARRY_STEPS[c % 4] steps (grasped ... arrived)
MARKER_SEED = 60_000  # carried wave w shows the markers of reset seed MARKER_SEED + w
SCENE_KEYS = ("state", "privileged", "rgb", "instruction")


@torch.no_grad()
def render_scenes(env, count: int, seed: int, progress: bool = False, driver=None) -> dict:
    """``count`` observations of ``env`` (autoreset off) with their task state: flat obs dict with leading dim
    ``count``. Wave w resets every world with seed ``SCENE_SEED + w`` and drives each with one random constant
    action (uniform within the action bounds) for ``PUSH_STEPS[w % 4]`` steps. With ``driver`` (the same env
    without cameras, autoreset off) every odd wave is a carried scene instead (``carried_wave``)."""
    if count < 1:
        raise ValueError(f"data.scene_frames must be >= 1 to render scenes, got {count}")
    n, spec = env.num_envs, env.action_spec
    generator = torch.Generator().manual_seed(seed)
    parts, rendered = [], 0
    with tqdm(total=count, disable=not progress, desc="rendering scenes", unit="frame", dynamic_ncols=True) as bar:
        for wave in range((count + n - 1) // n):
            if driver is not None and wave % 2:
                obs = carried_wave(env, driver, wave)
            else:
                obs, _ = env.reset(seed=SCENE_SEED + wave)
                push = spec.low + (spec.high - spec.low) * torch.rand(n, spec.dim, generator=generator)  # [N, A]
                for _ in range(PUSH_STEPS[wave % len(PUSH_STEPS)]):
                    obs, *_ = env.step(push)
            keep = min(n, count - rendered)
            parts.append(select({k: obs[k] for k in SCENE_KEYS if k in obs}, torch.arange(keep)))
            rendered += keep
            bar.update(keep)
    return concat(parts)


def carried_wave(env, driver, wave: int) -> dict:
    """The observation of ``env`` in carried scene ``wave``: the scripted expert drives ``driver`` (cameras off, so
    only the final state is rendered) ``CARRY_STEPS[wave // 2 % 4]`` steps from reset ``SCENE_SEED + wave``; the
    markers are then those of reset ``MARKER_SEED + wave`` of ``env``, and ``env`` takes that world state."""
    from sims.experts import WaypointExpert

    driver.reset(seed=SCENE_SEED + wave)
    expert = WaypointExpert(driver)
    for _ in range(CARRY_STEPS[wave // 2 % len(CARRY_STEPS)]):
        driver.step(expert.act())
    env.reset(seed=MARKER_SEED + wave)
    state = driver.get_state()
    state["world"]["mocap_pos"] = env.get_state()["world"]["mocap_pos"]
    return env.set_state(state)


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
