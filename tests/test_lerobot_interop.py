"""Datasets written by LeRobot itself: read across several episode, data and video files, statistics with
LeRobot's quantiles, trained on with ``algo=sft`` (fixture: tests/data/lerobot_written, see its README)."""

import glob
import json
import os

import numpy as np
import pandas as pd
import pytest

from embodied.algorithms.sft import SFTConfig
from embodied.config.schema import TrainConfig
from embodied.data.reader import LeRobotDataset
from embodied.data.stats import QUANTILES, feature_stats, merge_stats
from embodied.runner.sft import SFTTrainer

FIXTURE = os.path.join(os.path.dirname(__file__), "data", "lerobot_written")
ROOT = os.path.join(FIXTURE, "dataset")
LENGTHS = [5, 7, 9, 11, 13]  # episode e has 5 + 2e frames; its image has red 40e, green 15 * frame


def lerobot_frames() -> pd.DataFrame:
    """Every data row as LeRobot wrote it, read straight from its parquet files."""
    return pd.concat([pd.read_parquet(p) for p in sorted(glob.glob(f"{ROOT}/data/*/*.parquet"))])


def test_fixture_spans_several_files():
    assert len(glob.glob(f"{ROOT}/meta/episodes/*/*.parquet")) == 5
    assert len(glob.glob(f"{ROOT}/data/*/*.parquet")) == 4
    assert len(glob.glob(f"{ROOT}/videos/observation.images.front/*/*.mp4")) == 3


def test_reader_reads_every_episode_lerobot_wrote():
    dataset = LeRobotDataset(ROOT, action_horizon=3)
    rows = lerobot_frames().sort_values("index")
    assert len(dataset) == sum(LENGTHS) == len(rows)
    assert [e["length"] for e in dataset.episodes] == LENGTHS
    raw = np.load(os.path.join(FIXTURE, "raw_images.npz"))
    for index in range(len(dataset)):
        item, row = dataset[index], rows.iloc[index]
        episode, frame = int(item["episode_index"]), int(item["frame_index"])
        assert (episode, frame) == (row["episode_index"], row["frame_index"])
        np.testing.assert_array_equal(item["observation.state"].numpy(), row["observation.state"])
        np.testing.assert_array_equal(item["action"][0].numpy(), row["action"])
        assert item["task"] == ("pick the red cube" if episode % 2 == 0 else "push the blue cube")
        image = item["observation.images.front"].numpy().astype(int)
        expected = raw[f"episode_{episode}"][frame].astype(int)
        assert np.abs(image - expected).mean() < 8, (episode, frame)  # lossy H.264; another frame is >= 15 off
        pads = [frame + k >= LENGTHS[episode] for k in range(3)]
        assert item["action_is_pad"].tolist() == pads


def test_statistics_match_lerobots_including_quantiles():
    """Our per-episode stats, merged, against the meta/stats.json LeRobot wrote (within 1e-6 relative)."""
    lerobot = json.load(open(f"{ROOT}/meta/stats.json"))
    rows = lerobot_frames()
    raw = np.load(os.path.join(FIXTURE, "raw_images.npz"))
    ours: dict = {}
    for episode, length in enumerate(LENGTHS):
        frames = rows[rows.episode_index == episode].sort_values("frame_index")
        values = {key: np.stack(frames[key].to_numpy()) for key in
                  ("observation.state", "observation.environment_state", "action")}
        values |= {"frame_index": frames["frame_index"].to_numpy(), "index": frames["index"].to_numpy(),
                   "timestamp": np.arange(length) / 20}  # LeRobot measures timestamps before storing float32
        for key, v in values.items():
            ours[key] = merge_stats(ours.get(key), feature_stats(v, is_image=False))
        key = "observation.images.front"
        ours[key] = merge_stats(ours.get(key), feature_stats(raw[f"episode_{episode}"], is_image=True))
    for key, stats in ours.items():
        names = [*QUANTILES, "mean", "min", "max", "count"] + ([] if "images" in key else ["std"])
        for name in names:  # LeRobot 0.4.4's image std squares uint8 pixels (overflow): not comparable
            np.testing.assert_allclose(np.asarray(stats[name]).ravel(), np.asarray(lerobot[key][name]).ravel(),
                                       rtol=1e-6, atol=1e-9, err_msg=f"{key} {name}")


@pytest.mark.parametrize("steps", [20])
def test_sft_trains_on_the_dataset_lerobot_wrote(tmp_path, steps):
    cfg = TrainConfig()
    cfg.algo = SFTConfig(sft_steps=steps, sft_eval_interval=0, batch_size=16)
    cfg.data.paths = [ROOT]
    cfg.experiment.output_dir, cfg.experiment.progress, cfg.experiment.video = str(tmp_path), False, False
    cfg.experiment.eval_episodes, cfg.experiment.eval_num_envs = 2, 2
    trainer = SFTTrainer(cfg)
    first = trainer.data.datasets[0]
    assert len(first) == sum(LENGTHS)
    metrics = trainer.train()
    assert metrics["episodes"] == 2 and trainer.iteration == steps
    assert os.path.isfile(os.path.join(str(tmp_path), "final_policy", "model.safetensors"))


def test_our_writer_appends_to_the_dataset_lerobot_wrote(tmp_path):
    """Resume writes the new episode into LeRobot's last episodes file; every episode stays readable."""
    import shutil

    from embodied.data.writer import LeRobotDatasetWriter

    root = str(tmp_path / "dataset")
    shutil.copytree(ROOT, root)
    info = json.load(open(f"{root}/meta/info.json"))
    features = {k: v for k, v in info["features"].items() if k not in
                ("timestamp", "frame_index", "episode_index", "index", "task_index")}
    writer = LeRobotDatasetWriter.resume(root, fps=20, features=features)
    rng = np.random.default_rng(1)
    for _ in range(4):
        writer.add_frame({"observation.state": rng.normal(size=19).astype(np.float32),
                          "observation.environment_state": rng.normal(size=6).astype(np.float32),
                          "action": rng.uniform(-1, 1, 4).astype(np.float32),
                          "observation.images.front": np.full((16, 16, 3), 200, np.uint8)}, "stack the cubes")
    assert writer.save_episode() == 5
    dataset = LeRobotDataset(root)
    assert len(dataset.episodes) == 6 and len(dataset) == sum(LENGTHS) + 4
    assert dataset[len(dataset) - 1]["task"] == "stack the cubes"
    assert len(glob.glob(f"{root}/meta/episodes/*/*.parquet")) == 5  # appended to LeRobot's last file
    assert all(q in json.load(open(f"{root}/meta/stats.json"))["action"] for q in QUANTILES)
