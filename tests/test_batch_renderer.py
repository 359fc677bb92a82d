"""The tiled, threaded BatchRenderer draws each env as MuJoCo's own Renderer does, the same in any batch."""

import copy

import mujoco
import numpy as np
import pytest
import torch

from embodied.config.schema import TrainConfig, validate
from sims import make_env
from sims.mujoco.randomization import Randomization
from sims.mujoco.render import RENDER_QUALITIES, BatchRenderer

CAMERAS = ("front", "wrist")


def _posed_env(num_envs: int, **options):
    """A PickCube env with per-env colours, light and camera offsets, 5 random control steps after a reset."""
    rand = Randomization(color=0.3, lighting=0.3, camera_position=0.02)
    env = make_env(task="PickCube", num_envs=num_envs, randomization=rand, **options)
    env.reset(seed=3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        env.step(torch.rand(num_envs, env.action_spec.dim, generator=gen) * 2 - 1)
    return env


def _mujoco_renderer_frame(env, env_id: int, camera: str, size: int, quality: str) -> np.ndarray:
    """One frame drawn by ``mujoco.Renderer`` alone with env ``env_id``'s visuals and ``quality``'s settings."""
    model = copy.copy(env.model)
    settings = RENDER_QUALITIES[quality]
    model.vis.quality.offsamples = settings.samples
    model.vis.quality.numslices, model.vis.quality.numstacks = settings.slices, settings.stacks
    model.geom_rgba[:] = env.visuals["geom_rgba"][env_id]
    model.cam_pos[:] = env.visuals["cam_pos"][env_id]
    model.light_diffuse[:] = env.visuals["light_diffuse"][env_id]
    data = mujoco.MjData(model)
    data.qpos[:], data.mocap_pos[:] = env.qpos[env_id], env.mocap_pos[env_id]
    mujoco.mj_kinematics(model, data)
    mujoco.mj_camlight(model, data)
    renderer = mujoco.Renderer(model, size, size)
    renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
    renderer.update_scene(data, camera)
    frame = renderer.render().copy()
    renderer.close()
    return frame


def _batch_images(env, quality: str) -> dict:
    """BatchRenderer's images of every env of ``env`` at 64 px, with their visuals."""
    renderer = BatchRenderer(env.model, CAMERAS, 64, 64, quality=quality)
    images = renderer.render(env.qpos, env.mocap_pos, env.visuals)
    renderer.close()
    return images


def test_full_quality_is_mujocos_renderer_bit_for_bit_with_each_envs_colours():
    env = _posed_env(12)
    images = _batch_images(env, "full")
    for camera in CAMERAS:
        for i in range(env.num_envs):
            np.testing.assert_array_equal(images[camera][i], _mujoco_renderer_frame(env, i, camera, 64, "full"))


def test_tiles_match_mujocos_renderer_frame_by_frame_with_each_envs_colours():
    env = _posed_env(12)
    images = _batch_images(env, "fast")
    for camera in CAMERAS:
        for i in range(env.num_envs):
            gap = np.abs(images[camera][i].astype(int) - _mujoco_renderer_frame(env, i, camera, 64, "fast"))
            # measured: at most 6% of pixels, 0.05 uint8 units on average, all on the see-through goal marker and
            # where surfaces nearly touch, whose depth tests change with the tile's place in the framebuffer
            assert gap.mean() < 0.2 and (gap.max(-1) > 0).mean() < 0.1, (camera, i, gap.mean())
    # the envs do look different, so a tile given to the wrong env could not pass the check above
    assert np.abs(images["front"][0].astype(int) - images["front"][1]).mean() > 5


@pytest.mark.parametrize("quality", sorted(RENDER_QUALITIES))
def test_an_envs_image_is_the_same_in_any_batch_or_subset(quality):
    env = _posed_env(130)  # 260 frames: more than the 256 tiles of one 64 px atlas
    pose = (env.qpos, env.mocap_pos, env.visuals)
    renderer = BatchRenderer(env.model, CAMERAS, 64, 64, quality=quality)
    whole = renderer.render(*pose)
    subset = renderer.render(*pose, env_ids=[129, 3, 64])
    renderer.close()
    for camera in CAMERAS:
        np.testing.assert_array_equal(subset[camera], whole[camera][[129, 3, 64]])


@pytest.mark.parametrize("quality, most_gap", [("fast", 1.0), ("fastest", 3.0)])
def test_faster_qualities_draw_the_same_scene_in_a_framebuffer_sized_to_the_env(quality, most_gap):
    full = _posed_env(4, cameras=CAMERAS)
    faster = _posed_env(4, cameras=CAMERAS, render_quality=quality)
    assert faster.renderer.quality == RENDER_QUALITIES[quality]
    assert faster.renderer.worker.atlas.shape == (64, 8 * 64, 3)  # 8 frames: one row of 8 tiles
    full_images, faster_images = full._observe()["rgb"], faster._observe()["rgb"]
    for camera in CAMERAS:
        gap = np.abs(full_images[camera].astype(int) - faster_images[camera].astype(int))
        assert 0 < gap.mean() < most_gap, (camera, gap.mean())  # edges and facets only (uint8 units)
        assert (gap.max(-1) > 0).mean() < 0.3, camera


def test_an_unknown_render_quality_is_named_with_the_choices(tmp_path):
    from embodied.cli.record_demos import main as record_demos

    choices = r"choose one of \['fast', 'fastest', 'full'\]"
    with pytest.raises(ValueError, match=f"unknown render quality 'ultra'; {choices}"):
        make_env(task="Reach", num_envs=1, render_quality="ultra")
    with pytest.raises(SystemExit, match="embodied-record-demos: unknown render quality 'ultra'"):
        record_demos(["--task", "Reach", "--episodes", "1", "--render-quality", "ultra", "--out", str(tmp_path / "d")])
    assert not (tmp_path / "d").exists()
    cfg = TrainConfig()
    cfg.env.render_quality = "ultra"
    with pytest.raises(ValueError, match="env.render_quality must be one of"):
        validate(cfg)
    cfg.env.render_quality, cfg.env.backend = "fast", "libero"
    with pytest.raises(ValueError, match="not of backend libero: drop it"):
        validate(cfg)


def test_the_training_config_picks_the_render_quality():
    from embodied.runner.builders import build_env

    cfg = TrainConfig()
    cfg.env.render_quality, cfg.env.cameras = "fastest", ["front"]
    assert build_env(cfg, num_envs=2, autoreset=True).renderer.quality == RENDER_QUALITIES["fastest"]
    cfg.env.render_quality = None  # the backend's default
    assert build_env(cfg, num_envs=2, autoreset=True).renderer.quality == RENDER_QUALITIES["full"]
