"""LeRobot dataset format v3.0: layout, path templates, info.json, and atomic file replacement.

Layout under the dataset root::

    meta/info.json                                   codebase_version, fps, features, totals, path templates
    meta/stats.json                                  per-feature mean/std/min/max/count
    meta/tasks.parquet                               task string (index) -> task_index
    meta/episodes/chunk-XXX/file-XXX.parquet         one row per episode: length, tasks, file locations
    data/chunk-XXX/file-XXX.parquet                  one row per frame (several episodes per file)
    videos/<video key>/chunk-XXX/file-XXX.mp4        camera streams
"""

from __future__ import annotations

import glob
import json
import os

CODEBASE_VERSION = "v3.0"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
CHUNKS_SIZE = 1000
DEFAULT_FEATURES = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}
VALUE_DTYPES = ("float32", "float64", "int64", "int32", "bool")


def chunk_and_file(counter: int) -> dict:
    """File number ``counter`` -> its chunk and file indices (CHUNKS_SIZE files per chunk)."""
    chunk, file = divmod(counter, CHUNKS_SIZE)
    return {"chunk_index": chunk, "file_index": file}


def video_keys(features: dict) -> list[str]:
    """Names of the features stored as mp4 videos."""
    return [k for k, f in features.items() if f["dtype"] == "video"]


def validate_features(features: dict) -> None:
    """Raise ValueError for a feature spec that LeRobot could not read."""
    for name, spec in features.items():
        if not isinstance(spec, dict) or "dtype" not in spec or "shape" not in spec:
            raise ValueError(f"feature {name!r} needs 'dtype' and 'shape', got {spec!r}")
        if spec["dtype"] == "video":
            shape = list(spec["shape"])
            if len(shape) != 3 or shape[2] != 3:
                raise ValueError(f"video feature {name!r} needs shape [height, width, 3], got {shape}")
        elif spec["dtype"] not in VALUE_DTYPES + ("string",):
            raise ValueError(f"feature {name!r} has dtype {spec['dtype']!r}; use one of {VALUE_DTYPES + ('video',)}")


def make_info(fps: float, features: dict, robot_type: str | None, data_mb: int, video_mb: int) -> dict:
    """A fresh info.json body with zero totals."""
    return {
        "codebase_version": CODEBASE_VERSION, "robot_type": robot_type, "total_episodes": 0, "total_frames": 0,
        "total_tasks": 0, "chunks_size": CHUNKS_SIZE, "data_files_size_in_mb": data_mb,
        "video_files_size_in_mb": video_mb, "fps": fps, "splits": {"train": "0:0"},
        "data_path": DATA_PATH, "video_path": VIDEO_PATH if video_keys(features) else None, "features": features,
    }


def load_info(root: str) -> dict:
    """Read and check meta/info.json (clear errors for a missing file or another format version)."""
    path = os.path.join(root, "meta", "info.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: {root} is not a LeRobot dataset")
    try:
        with open(path) as f:
            info = json.load(f)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}): restore it from a copy, or re-record the dataset") \
            from None
    if not isinstance(info, dict) or not isinstance(info.get("features"), dict):
        raise ValueError(f"{path} has no 'features' table: it is not a LeRobot v3.0 info.json")
    if info.get("codebase_version") != CODEBASE_VERSION:
        raise ValueError(f"{root} is LeRobot format {info.get('codebase_version')!r}; only {CODEBASE_VERSION} is "
                         "supported (convert with lerobot's convert_dataset_v21_to_v30)")
    validate_features(info["features"])
    return info


def episodes_file(row: dict) -> str:
    """The meta/episodes parquet file that holds an episode's row (LeRobot rolls the table over several files)."""
    return EPISODES_PATH.format(chunk_index=row.get("meta/episodes/chunk_index", 0),
                                file_index=row.get("meta/episodes/file_index", 0))


def read_episode_rows(root: str, committed: int) -> list[dict]:
    """Rows of the episodes table, from every meta/episodes/chunk-*/file-*.parquet, for the first ``committed``
    episodes (rows beyond the info.json commit point are ignored), sorted by episode index."""
    import pyarrow.parquet as pq

    rows = []
    for path in sorted(glob.glob(os.path.join(root, "meta", "episodes", "chunk-*", "file-*.parquet"))):
        rows += [r for r in pq.read_table(path).to_pylist() if r["episode_index"] < committed]
    rows.sort(key=lambda r: r["episode_index"])
    if [r["episode_index"] for r in rows] != list(range(committed)):
        raise ValueError(f"{root}: meta/info.json commits {committed} episodes but meta/episodes/ holds episode "
                         f"indices {[r['episode_index'] for r in rows][:20]}: the dataset is damaged")
    return rows


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old or the new file, never a partial one."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: str, value) -> None:
    """JSON version of ``atomic_write_bytes``."""
    atomic_write_bytes(path, json.dumps(value, indent=2).encode())


def atomic_write_parquet(path: str, table) -> None:
    """Write a pyarrow Table or pandas DataFrame to ``path`` atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not isinstance(table, pa.Table):
        table = pa.Table.from_pandas(table)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    atomic_write_bytes(path, sink.getvalue().to_pybytes())
