"""Write LeRobot v3.0 datasets episode by episode; a saved episode is durable, a crash loses only the open one.

Commit protocol of ``save_episode``: new video files, the rewritten data file (atomic replace), the episodes
table, tasks, stats, and last meta/info.json, whose ``total_episodes`` is the commit point: readers and
``resume`` ignore anything beyond it, so a crash at any moment leaves the dataset readable with every
episode saved before it.
"""

from __future__ import annotations

import json
import os

import numpy as np

from embodied.data import lerobot_format as fmt
from embodied.data.stats import feature_stats, from_json, merge_stats, stats_from_episode_rows, to_json
from embodied.data.video import DATASET_CRF, DATASET_PIX_FMT, encode_video


def _pyarrow():
    try:
        import pandas as pd
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ImportError("writing datasets needs pyarrow and pandas: pip install 'embodied-vla[data]'") from error
    return pa, pq, pd


class LeRobotDatasetWriter:
    """Appends episodes to a LeRobot v3.0 dataset. Use ``create`` for a new dataset, ``resume`` to append."""

    def __init__(self, root: str, info: dict, vcodec: str):
        self.root = root
        self.info = info
        self.features = info["features"]
        self.fps = float(info["fps"])
        self.vcodec = vcodec
        self.video_keys = fmt.video_keys(self.features)
        self.value_keys = [k for k in self.features if k not in self.video_keys and k not in fmt.DEFAULT_FEATURES]
        self._load_committed()
        self._frames: list[dict] = []
        self._episode_tasks: list[str] = []

    # ------------------------------------------------------------------------------------------ open
    @classmethod
    def create(cls, root: str, fps: float, features: dict, robot_type: str | None = None, vcodec: str = "libx264",
               data_files_size_in_mb: int = 100, video_files_size_in_mb: int = 200) -> "LeRobotDatasetWriter":
        """Start a new dataset at ``root`` (which must not hold one). ``features`` excludes the default ones."""
        if os.path.exists(os.path.join(root, "meta", "info.json")):
            raise FileExistsError(f"{root} already holds a dataset: pass resume to append, or choose a new path")
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        features = {**{k: dict(v) for k, v in features.items()}, **fmt.DEFAULT_FEATURES}
        for key in fmt.video_keys(features):
            h, w, c = features[key]["shape"]
            features[key].setdefault("names", ["height", "width", "channels"])
            features[key]["info"] = {"video.fps": fps, "video.height": h, "video.width": w, "video.channels": c,
                                     "video.codec": vcodec, "video.pix_fmt": DATASET_PIX_FMT,
                                     "video.is_depth_map": False, "has_audio": False}
        fmt.validate_features(features)
        info = fmt.make_info(fps, features, robot_type, data_files_size_in_mb, video_files_size_in_mb)
        fmt.atomic_write_json(os.path.join(root, "meta", "info.json"), info)
        return cls(root, info, vcodec)

    @classmethod
    def resume(cls, root: str, fps: float | None = None, features: dict | None = None,
               vcodec: str = "libx264") -> "LeRobotDatasetWriter":
        """Append to an existing dataset after checking that fps and features match what will be recorded."""
        info = fmt.load_info(root)
        if fps is not None and abs(float(info["fps"]) - fps) > 1e-6:
            raise ValueError(f"{root} was recorded at {info['fps']} fps, this session records at {fps}: "
                             "use the same fps or a new dataset")
        if features is not None:
            stored = {k: (v["dtype"], list(v["shape"])) for k, v in info["features"].items()
                      if k not in fmt.DEFAULT_FEATURES}
            wanted = {k: (v["dtype"], list(v["shape"])) for k, v in features.items()}
            if stored != wanted:
                raise ValueError(f"{root} has features {stored}, this session records {wanted}: use a new dataset")
        return cls(root, info, vcodec)

    def _load_committed(self) -> None:
        """Episodes, tasks, stats and the open data file as of the last committed info.json."""
        pa, pq, pd = _pyarrow()
        self.num_episodes = int(self.info["total_episodes"])
        self.num_frames = int(self.info["total_frames"])
        self.episode_rows: list[dict] = fmt.read_episode_rows(self.root, self.num_episodes)
        for row in self.episode_rows:  # image stats as LeRobot stores them ([3, 1, 1]; older datasets: [3])
            for key in self.video_keys:
                for name in [n for n in row if n.startswith(f"stats/{key}/") and not n.endswith("/count")]:
                    row[name] = np.asarray(row[name], dtype=np.float64).reshape(3, 1, 1).tolist()
        tasks_path = os.path.join(self.root, "meta", "tasks.parquet")
        self.tasks: dict[str, int] = {}
        if self.num_episodes and os.path.isfile(tasks_path):
            frame = pd.read_parquet(tasks_path)
            self.tasks = {str(t): int(i) for t, i in zip(frame.index, frame["task_index"])}
        self.stats = stats_from_episode_rows(self.episode_rows, self.features) if self.num_episodes else None
        stats_path = os.path.join(self.root, "meta", "stats.json")
        if self.stats is None and self.num_episodes and os.path.isfile(stats_path):  # rows without stats columns
            with open(stats_path) as f:
                self.stats = from_json(json.load(f))
        self.data_file_counter = max((r["data/file_index"] + fmt.CHUNKS_SIZE * r["data/chunk_index"]
                                      for r in self.episode_rows), default=0)
        self.open_data_rows = None  # committed rows of the data file being filled (loaded lazily)

    # --------------------------------------------------------------------------------------- record
    def add_frame(self, frame: dict, task: str) -> None:
        """Buffer one frame: every non-default feature, values as arrays, videos as uint8 [H, W, 3]."""
        missing = [k for k in self.value_keys + self.video_keys if k not in frame]
        if missing:
            raise KeyError(f"frame lacks features {missing}; it must have {self.value_keys + self.video_keys}")
        clean = {}
        for key in self.value_keys + self.video_keys:
            spec, value = self.features[key], np.asarray(frame[key])
            expected = tuple(spec["shape"])
            if value.shape != expected and not (expected == (1,) and value.shape == ()):
                raise ValueError(f"feature {key!r} must have shape {expected}, got {value.shape}")
            if spec["dtype"] == "video" and value.dtype != np.uint8:
                raise ValueError(f"video feature {key!r} must be uint8, got {value.dtype}")
            if spec["dtype"].startswith("float") and not np.isfinite(value).all():
                raise ValueError(f"feature {key!r} has NaN or inf: refusing to record it")
            clean[key] = value.copy()
        self._frames.append(clean)
        self._episode_tasks.append(task)

    @property
    def episode_length(self) -> int:
        """Frames buffered in the open episode."""
        return len(self._frames)

    def discard_episode(self) -> None:
        """Drop the open episode's frames (nothing was written for it)."""
        self._frames, self._episode_tasks = [], []

    def save_episode(self, extra: dict | None = None) -> int:
        """Write the open episode durably; returns its episode index. ``extra`` adds columns to its row of the
        episodes table (e.g. the scene it was recorded in, for a later resume)."""
        if not self._frames:
            raise ValueError("save_episode with no frames: call add_frame first (or discard_episode)")
        pa, pq, pd = _pyarrow()
        ep, length, fps = self.num_episodes, len(self._frames), self.fps
        for task in self._episode_tasks:
            self.tasks.setdefault(task, len(self.tasks))
        row = {"episode_index": ep, "tasks": sorted(set(self._episode_tasks), key=self._episode_tasks.index),
               "length": length, "dataset_from_index": self.num_frames, "dataset_to_index": self.num_frames + length}
        stats = {}
        for key in self.video_keys:  # 1. one new mp4 per camera and episode
            frames = np.stack([f[key] for f in self._frames])
            location = fmt.chunk_and_file(ep)
            path = os.path.join(self.root, fmt.VIDEO_PATH.format(video_key=key, **location))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            encode_video(frames, path, fps, self.vcodec, crf=DATASET_CRF, pix_fmt=DATASET_PIX_FMT)
            row |= {f"videos/{key}/chunk_index": location["chunk_index"],
                    f"videos/{key}/file_index": location["file_index"],
                    f"videos/{key}/from_timestamp": 0.0, f"videos/{key}/to_timestamp": length / fps}
            stats[key] = feature_stats(frames, is_image=True)
        columns = {key: np.stack([f[key] for f in self._frames]) for key in self.value_keys}
        for key, values in columns.items():
            stats[key] = feature_stats(values, is_image=False)
        defaults = {"timestamp": np.arange(length) / fps,  # float64, as LeRobot measures it (stored as float32)
                    "frame_index": np.arange(length), "episode_index": np.full(length, ep),
                    "index": np.arange(self.num_frames, self.num_frames + length),
                    "task_index": np.array([self.tasks[t] for t in self._episode_tasks])}
        for key, values in defaults.items():
            stats[key] = feature_stats(values, is_image=False)
        row |= self._write_data(columns, defaults)  # 2. data rows (the open data file is rewritten atomically)
        last = self.episode_rows[-1] if self.episode_rows else {}  # the episodes file being filled
        row |= {"meta/episodes/chunk_index": last.get("meta/episodes/chunk_index", 0),
                "meta/episodes/file_index": last.get("meta/episodes/file_index", 0)}
        for key, st in stats.items():
            row |= {f"stats/{key}/{name}": np.asarray(v).tolist() for name, v in st.items()}  # images: [3, 1, 1]
        row |= extra or {}
        self.episode_rows.append(row)
        same_file = [r for r in self.episode_rows if fmt.episodes_file(r) == fmt.episodes_file(row)]
        fmt.atomic_write_parquet(os.path.join(self.root, fmt.episodes_file(row)),
                                 pa.Table.from_pylist(same_file))  # 3. episodes table
        tasks = pd.DataFrame({"task_index": list(self.tasks.values())}, index=pd.Index(list(self.tasks), name="task"))
        fmt.atomic_write_parquet(os.path.join(self.root, "meta", "tasks.parquet"), tasks)  # 4. tasks
        for key, st in stats.items():
            self.stats = (self.stats or {}) | {key: merge_stats((self.stats or {}).get(key), st)}
        fmt.atomic_write_json(os.path.join(self.root, "meta", "stats.json"), to_json(self.stats))  # 5. stats
        self.num_episodes, self.num_frames = ep + 1, self.num_frames + length
        self.info |= {"total_episodes": self.num_episodes, "total_frames": self.num_frames,
                      "total_tasks": len(self.tasks), "splits": {"train": f"0:{self.num_episodes}"}}
        fmt.atomic_write_json(os.path.join(self.root, "meta", "info.json"), self.info)  # 6. commit
        self.discard_episode()
        return ep

    def _write_data(self, columns: dict, defaults: dict) -> dict:
        """Append the episode's rows to the open data file (rolling over at the size limit); its location."""
        pa, pq, _ = _pyarrow()
        location = fmt.chunk_and_file(self.data_file_counter)
        path = os.path.join(self.root, fmt.DATA_PATH.format(**location))
        if self.open_data_rows is None:
            if os.path.isfile(path):
                table = pq.read_table(path)
                keep = np.asarray(table.column("episode_index")) < self.num_episodes  # drop uncommitted rows
                self.open_data_rows = table.filter(pa.array(keep))
        if self.open_data_rows is not None and os.path.getsize(path) > self.info["data_files_size_in_mb"] * 2**20:
            self.data_file_counter += 1
            location = fmt.chunk_and_file(self.data_file_counter)
            path = os.path.join(self.root, fmt.DATA_PATH.format(**location))
            self.open_data_rows = None
        arrays = {}
        for key, values in columns.items():
            flat = values.reshape(values.shape[0], -1)
            item_type = pa.from_numpy_dtype(np.dtype(self.features[key]["dtype"]))
            arrays[key] = pa.array(list(flat.astype(self.features[key]["dtype"])),
                                   type=pa.list_(item_type, flat.shape[1]))  # fixed-size lists, as LeRobot writes
        for key, values in defaults.items():
            arrays[key] = pa.array(values.astype(self.features[key]["dtype"]))
        episode = pa.table(arrays)
        table = episode if self.open_data_rows is None else \
            pa.concat_tables([self.open_data_rows, episode.cast(self.open_data_rows.schema)])
        fmt.atomic_write_parquet(path, table)
        self.open_data_rows = table
        return {"data/chunk_index": location["chunk_index"], "data/file_index": location["file_index"]}
