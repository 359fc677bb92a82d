"""Rendered scenes without actions: fresh resets with the arm pushed somewhere, labelled with the task state.

In demonstrations the arm's trajectory gives the goal away (after a few steps proprioception alone says where
the expert is heading), so an auxiliary head that predicts the task state from demonstration frames can learn it
from proprioception and leave the camera towers untaught. These frames break that link: the objects and the goal
are wherever a reset put them and the arm wherever a random push left it, so the task state can only be read from
the images. ``data.scene_frames`` of them train ``policy.scene_loss`` beside the demonstrations in ``algo=sft``.

Pushed arms never hold the cube, so with ``data.carried_scenes`` every other wave is a carried scene instead: the
task's scripted expert drives a camera-less copy of the env part of the way (PickCube: the cube grasped, lifted,
carried, arrived), then the markers move to those of another reset and the camera env renders that state. The expert
heads for the old markers, so the arm says nothing of the markers shown (tasks without markers, such as StackCube,
gain expert states and nothing more).
"""

from __future__ import annotations

import torch
from tqdm import tqdm

from embodied.data.stats import feature_stats, mixture_stats
from embodied.rollout.obs import concat, select

SCENE_SEED = 50_000  # reset seeds of wave w: SCENE_SEED + w, apart from demonstrations (0...) and evaluations
PUSH_STEPS = (0, 4, 8, 12)  # pushed wave k pushes the arm PUSH_STEPS[k % 4] steps in one random constant direction
CARRY_STEPS = (12, 15, 18, 24)  # carried wave k: the expert drives CARRY_STEPS[k % 4] steps (grasped ... arrived)
MARKER_SEED = 60_000  # carried wave w shows the markers of reset seed MARKER_SEED + w
SCENE_KEYS = ("state", "privileged", "rgb", "instruction")


@torch.no_grad()
def render_scenes(env, count: int, seed: int, progress: bool = False, driver=None) -> dict:
    """``count`` observations of ``env`` (autoreset off) with their task state: flat obs dict with leading dim
    ``count``. Wave w resets every world with seed ``SCENE_SEED + w``; the k-th pushed wave drives each world with
    one random constant action (uniform within the action bounds) for ``PUSH_STEPS[k % 4]`` steps. With ``driver``
    (the same env without cameras, autoreset off) every odd wave is a carried scene instead (``carried_wave``)."""
    if count < 1:
        raise ValueError(f"data.scene_frames must be >= 1 to render scenes, got {count}")
    n, spec = env.num_envs, env.action_spec
    generator = torch.Generator().manual_seed(seed)
    parts, rendered = [], 0
    with tqdm(total=count, disable=not progress, desc="rendering scenes", unit="frame", dynamic_ncols=True) as bar:
        for wave in range((count + n - 1) // n):
            kind_index = wave if driver is None else wave // 2  # the k-th wave of its kind
            if driver is not None and wave % 2:
                obs = carried_wave(env, driver, wave, CARRY_STEPS[kind_index % len(CARRY_STEPS)])
            else:
                obs, _ = env.reset(seed=SCENE_SEED + wave)
                push = spec.low + (spec.high - spec.low) * torch.rand(n, spec.dim, generator=generator)  # [N, A]
                for _ in range(PUSH_STEPS[kind_index % len(PUSH_STEPS)]):
                    obs, *_ = env.step(push)
            keep = min(n, count - rendered)
            parts.append(select({k: obs[k] for k in SCENE_KEYS if k in obs}, torch.arange(keep)))
            rendered += keep
            bar.update(keep)
    return concat(parts)


def carried_scene_problem(driver) -> str | None:
    """Why ``driver`` cannot stage carried scenes (None when it can): they need the task's scripted end-effector
    expert on the MuJoCo tabletop, and markers that can move without contradicting the task's parameters."""
    from sims.mujoco.controllers import EndEffectorController

    task = getattr(driver, "task", None)
    if not isinstance(getattr(driver, "controller", None), EndEffectorController) or task is None:
        return "they need the scripted expert, which drives an end-effector env.controller on the mujoco backend"
    if task.params_follow_markers:
        return f"{task.name}'s parameters point at its markers, so showing another reset's markers would mislabel them"
    return None


def carried_wave(env, driver, wave: int, steps: int) -> dict:
    """The observation of ``env`` in carried scene ``wave``: the markers of reset ``MARKER_SEED + wave`` and the
    state the scripted expert reaches in ``steps`` steps from reset ``SCENE_SEED + wave``, both staged on ``driver``
    (cameras off), so ``env`` renders only the final state."""
    from sims.experts import WaypointExpert

    driver.reset(seed=MARKER_SEED + wave)
    markers = driver.get_state()["world"]["mocap_pos"]
    driver.reset(seed=SCENE_SEED + wave)
    expert = WaypointExpert(driver)
    for _ in range(steps):
        *_, terminated, truncated, _ = driver.step(expert.act())
        if bool((terminated | truncated).all()):  # every episode ended (a short env.max_episode_steps)
            break
    state = driver.get_state()
    state["world"]["mocap_pos"] = markers
    return env.set_state(state)


def stats_with_scenes(dataset_stats: dict, task_states: torch.Tensor) -> dict:
    """``dataset_stats`` with the task state's replaced by the equal mixture of the demonstrations' and the scenes'
    (``task_states`` [M, E]; the scenes' alone when the demonstrations have none).

    Each SFT step weighs its demonstration and scene terms equally, so the task state is z-scored over both. With the
    demonstrations' alone, a quantity nearly constant there (the cube under the open gripper: 1 cm std) but not in
    the scenes would outweigh the goal's error a hundredfold in the scene loss.
    """
    key = "observation.environment_state"
    scenes = {key: feature_stats(task_states.detach().cpu().double().numpy(), is_image=False)}
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
