"""LeRobot v3.0 datasets: layout and metadata, round trip with videos, action chunks, crash safety, resume, mixing."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from embodied.data import lerobot_format as fmt
from embodied.data.demos import env_features, record_expert_demos
from embodied.data.reader import LeRobotDataset, mixture_sampler
from embodied.data.writer import LeRobotDatasetWriter
from sims import make_env

FEATURES = {"observation.state": {"dtype": "float32", "shape": [3], "names": None},
            "action": {"dtype": "float32", "shape": [2], "names": ["x", "y"]},
            "observation.images.front": {"dtype": "video", "shape": [16, 16, 3]}}


def frame(t: int, episode: int) -> dict:
    image = np.full((16, 16, 3), (t * 20) % 256, dtype=np.uint8)
    return {"observation.state": np.array([episode, t, 0.5], np.float32),
            "action": np.array([episode + t / 100, -t], np.float32), "observation.images.front": image}


def write_episodes(root, lengths, tasks=None, writer=None):
    writer = writer or LeRobotDatasetWriter.create(str(root), fps=10, features=FEATURES, robot_type="test")
    for e, length in enumerate(lengths):
        for t in range(length):
            writer.add_frame(frame(t, writer.num_episodes), (tasks or ["pick"] * len(lengths))[e])
        writer.save_episode()
    return writer


def test_layout_and_metadata_follow_lerobot_v3(tmp_path):
    write_episodes(tmp_path, [5, 7], tasks=["pick", "place"])
    info = json.loads((tmp_path / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 10
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (2, 12, 2)
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["features"]["observation.images.front"]["info"]["video.fps"] == 10
    for key in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        assert key in info["features"]
    data = pq.read_table(tmp_path / "data" / "chunk-000" / "file-000.parquet").to_pandas()
    assert list(data["index"]) == list(range(12)) and list(data["episode_index"]) == [0] * 5 + [1] * 7
    np.testing.assert_allclose(data["timestamp"][:5], np.arange(5) / 10, rtol=1e-6)
    episodes = pq.read_table(tmp_path / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pandas()
    assert list(episodes["length"]) == [5, 7] and list(episodes["dataset_from_index"]) == [0, 5]
    assert episodes["videos/observation.images.front/to_timestamp"][1] == pytest.approx(0.7)
    tasks = pd.read_parquet(tmp_path / "meta" / "tasks.parquet")
    assert dict(zip(tasks.index, tasks["task_index"])) == {"pick": 0, "place": 1}
    stats = json.loads((tmp_path / "meta" / "stats.json").read_text())
    assert stats["observation.state"]["count"] == [12]
    assert stats["observation.state"]["max"] == pytest.approx([1.0, 6.0, 0.5])
    assert (tmp_path / "videos" / "observation.images.front" / "chunk-000" / "file-001.mp4").is_file()


def test_reader_round_trip_with_videos_and_padded_action_chunks(tmp_path):
    write_episodes(tmp_path, [5, 7])
    dataset = LeRobotDataset(str(tmp_path), action_horizon=4)
    assert len(dataset) == 12
    item = dataset[3]  # episode 0, frame 3: chunk = frames 3, 4, then the last action repeated
    assert item["action"].shape == (4, 2)
    assert item["action_is_pad"].tolist() == [False, False, True, True]
    torch.testing.assert_close(item["action"][2], item["action"][1])
    assert item["observation.state"].tolist() == [0.0, 3.0, 0.5] and item["task"] == "pick"
    image = dataset[5 + 2]["observation.images.front"]  # episode 1, frame 2: grey level 40
    assert image.dtype == torch.uint8 and image.shape == (16, 16, 3)
    assert abs(image.float().mean().item() - 40) < 3


def test_decoded_videos_stay_cached_within_the_byte_budget(tmp_path):
    write_episodes(tmp_path, [5, 7, 4])
    roomy = LeRobotDataset(str(tmp_path))
    for i in range(len(roomy)):
        roomy[i]
    assert len(roomy._video_cache) == 3 and roomy._cache_bytes == 16 * 16 * 3 * 16  # every episode decoded once
    one_episode = 16 * 16 * 3 * 7
    tight = LeRobotDataset(str(tmp_path), video_cache_bytes=one_episode)
    for i in range(len(tight)):
        torch.testing.assert_close(tight[i]["observation.images.front"], roomy[i]["observation.images.front"])
        assert tight._cache_bytes <= one_episode


def test_bad_frames_are_refused_and_lose_nothing(tmp_path):
    writer = write_episodes(tmp_path, [3])
    bad = frame(0, 1)
    bad["action"] = np.array([np.nan, 0], np.float32)
    with pytest.raises(ValueError, match="NaN"):
        writer.add_frame(bad, "pick")
    with pytest.raises(ValueError, match="shape"):
        writer.add_frame(frame(0, 1) | {"observation.state": np.zeros(4, np.float32)}, "pick")
    assert len(LeRobotDataset(str(tmp_path))) == 3


CRASH_SCRIPT = """
import os, signal, sys
sys.path.insert(0, {repo!r})
from tests.test_data import frame, write_episodes
writer = write_episodes({root!r}, [4, 6])
for t in range(3):
    writer.add_frame(frame(t, 2), "pick")
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_sigkill_mid_episode_loses_only_that_episode(tmp_path):
    root = str(tmp_path / "ds")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", CRASH_SCRIPT.format(repo=repo, root=root)], capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    dataset = LeRobotDataset(root)
    assert len(dataset) == 10 and len(dataset.episodes) == 2


def test_crash_during_save_keeps_the_dataset_readable_and_resume_appends(tmp_path, monkeypatch):
    writer = write_episodes(tmp_path, [4])
    real_write = fmt.atomic_write_json

    def crash_at_commit(path, value):
        if path.endswith("info.json"):
            raise OSError("simulated power loss before the commit")
        real_write(path, value)

    monkeypatch.setattr(fmt, "atomic_write_json", crash_at_commit)
    for t in range(5):
        writer.add_frame(frame(t, 1), "pick")
    with pytest.raises(OSError):
        writer.save_episode()
    monkeypatch.setattr(fmt, "atomic_write_json", real_write)
    assert len(LeRobotDataset(str(tmp_path))) == 4  # data and episode rows of the failed save are ignored
    resumed = LeRobotDatasetWriter.resume(str(tmp_path), fps=10, features=FEATURES)
    write_episodes(tmp_path, [2], writer=resumed)
    dataset = LeRobotDataset(str(tmp_path))
    assert len(dataset) == 6 and [e["length"] for e in dataset.episodes] == [4, 2]
    assert dataset[5]["observation.state"].tolist() == [1.0, 1.0, 0.5]
    with pytest.raises(ValueError, match="fps"):
        LeRobotDatasetWriter.resume(str(tmp_path), fps=30, features=FEATURES)
    with pytest.raises(FileExistsError):
        LeRobotDatasetWriter.create(str(tmp_path), fps=10, features=FEATURES)


def test_mixture_sampler_follows_the_weights(tmp_path):
    write_episodes(tmp_path / "a", [10])
    write_episodes(tmp_path / "b", [40])
    a, b = LeRobotDataset(str(tmp_path / "a")), LeRobotDataset(str(tmp_path / "b"))
    drawn = torch.tensor(list(mixture_sampler([a, b], [0.75, 0.25], num_samples=4000)))
    assert abs((drawn < len(a)).float().mean().item() - 0.75) < 0.03


def test_expert_demos_record_and_read_back(tmp_path):
    env = make_env(task="PickCube", num_envs=4, cameras=("front",), image_size=(32, 32), autoreset=False)
    writer = LeRobotDatasetWriter.create(str(tmp_path), fps=20, features=env_features(env))
    counts = record_expert_demos(env, writer, num_episodes=3, seed=0, progress=False)
    assert counts["saved"] == 3
    dataset = LeRobotDataset(str(tmp_path), action_horizon=2)
    assert len(dataset) == 3 * env.max_episode_steps
    item = dataset[0]
    assert item["observation.images.front"].shape == (32, 32, 3) and item["task"] == "pick up the red cube"
    assert item["observation.state"].shape == (env.observation_spec.state_dim,)
    for row in dataset.episodes:  # each saved episode, replayed in its own scene, solves the task as recorded
        replay = make_env(task="PickCube", num_envs=1, autoreset=False)
        obs, _ = replay.reset(seed=int(row["scene/seed"]), reset_ids=[int(row["scene/reset_id"])])
        frames = slice(row["dataset_from_index"], row["dataset_to_index"])
        solved = False
        for state, action in zip(dataset.columns["observation.state"][frames], dataset.columns["action"][frames]):
            np.testing.assert_allclose(obs["state"][0].numpy(), state, atol=1e-5)  # the recorded observation
            obs, _, _, _, info = replay.step(torch.as_tensor(action)[None])
            solved |= bool(info["success"][0])
        assert solved, row["episode_index"]


def test_mixture_stats_weighted_by_frame_counts_equal_the_stats_of_the_union():
    from embodied.data.stats import feature_stats, merge_stats, mixture_stats

    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 2.0, (400, 3)), rng.normal(-3.0, 0.5, (100, 3))
    sa, sb = {"x": feature_stats(a, False)}, {"x": feature_stats(b, False)}
    union = np.concatenate([a, b])  # the frames themselves, not another merge of their statistics
    for merged in (merge_stats(sa["x"], sb["x"]), mixture_stats([sa, sb], [0.8, 0.2])["x"]):
        np.testing.assert_allclose(merged["mean"], union.mean(0), rtol=1e-12)
        np.testing.assert_allclose(merged["std"], union.std(0), rtol=1e-12)
        np.testing.assert_array_equal(merged["min"], union.min(0))
        np.testing.assert_array_equal(merged["max"], union.max(0))
        assert merged["count"].tolist() == [500]
    even = mixture_stats([sa, sb], [0.5, 0.5])["x"]  # equal weights: the small dataset counts as much, as if each
    balanced = np.concatenate([a, np.tile(b, (4, 1))])  # of its 100 frames were drawn 4 times
    np.testing.assert_allclose(even["mean"], balanced.mean(0), rtol=1e-12)
    np.testing.assert_allclose(even["std"], balanced.std(0), rtol=1e-12)


def test_record_demos_resume_continues_with_new_scenes(tmp_path):
    """A resumed recording must not replay the scenes (and so the actions) of the episodes already saved."""
    from embodied.cli.record_demos import main as record

    out = str(tmp_path / "reach")
    common = ["--task", "Reach", "--episodes", "2", "--num-envs", "2", "--out", out, "--cameras"]
    record(common)
    record(common + ["--resume"])
    dataset = LeRobotDataset(out)
    assert len(dataset.episodes) == 4
    goals = [dataset[e["dataset_from_index"]]["observation.environment_state"].numpy() for e in dataset.episodes]
    for first in goals[:2]:
        for resumed in goals[2:]:
            assert np.abs(first - resumed).max() > 1e-3, "a resumed episode replays an earlier scene"
    assert [e["scene/seed"] for e in dataset.episodes] == [0, 0, 1, 1]


KILL_IN_SAVE_SCRIPT = """
import os, signal, sys
sys.path.insert(0, {repo!r})
from embodied.data import lerobot_format as fmt
from tests.test_data import frame, write_episodes
writer = write_episodes({root!r}, [4, 6])
replaced, real_replace = [], os.replace
def replace_or_die(src, dst):  # every file of the commit sequence lands through one os.replace
    if len(replaced) == {kill_at}:
        os.kill(os.getpid(), signal.SIGKILL)
    replaced.append(dst)
    real_replace(src, dst)
os.replace = replace_or_die
for t in range(5):
    writer.add_frame(frame(t, 2), "place")
writer.save_episode()
print(replaced)
"""
COMMIT_SEQUENCE = ["data", "episodes", "tasks", "stats", "info"]


@pytest.mark.parametrize("kill_at", range(len(COMMIT_SEQUENCE) + 1))
def test_sigkill_inside_the_save_keeps_every_earlier_episode(tmp_path, kill_at):
    """SIGKILL before each file of save_episode's commit sequence lands (the mp4 is already written) and after."""
    root = str(tmp_path / "ds")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", KILL_IN_SAVE_SCRIPT.format(repo=repo, root=root, kill_at=kill_at)],
                          capture_output=True, text=True)
    committed = kill_at == len(COMMIT_SEQUENCE)
    assert proc.returncode == (0 if committed else -signal.SIGKILL), proc.stderr
    if committed:
        assert [os.path.basename(os.path.dirname(p)) + "/" + os.path.basename(p) for p in eval(proc.stdout)] == [
            "chunk-000/file-000.parquet", "chunk-000/file-000.parquet", "meta/tasks.parquet", "meta/stats.json",
            "meta/info.json"]
    dataset = LeRobotDataset(root)
    assert [e["length"] for e in dataset.episodes] == ([4, 6, 5] if committed else [4, 6])
    assert dataset.stats["observation.state"]["count"][0] == len(dataset)  # no stats of the lost episode
    assert dataset.stats["observation.state"]["max"][0] == (2 if committed else 1)
    writer = LeRobotDatasetWriter.resume(root, fps=10, features=FEATURES)
    write_episodes(root, [3], writer=writer)
    resumed = LeRobotDataset(root)
    assert [e["length"] for e in resumed.episodes] == [e["length"] for e in dataset.episodes] + [3]
    assert resumed.stats["observation.state"]["count"][0] == len(resumed)
    last = resumed[len(resumed) - 1]
    assert last["observation.state"].tolist() == [len(resumed.episodes) - 1, 2, 0.5]
    assert int(last["observation.images.front"].float().mean().round()) == 40  # its own video, not the lost one
