"""Shaped like the Reach task (19-D state, 6-D task state, 4-D end-effector actions, 20 fps) so that
`embodied-train algo=sft env=reach` trains on it. Write a small LeRobot v3.0 dataset with LeRobot 0.4.4's own writer, with tiny file-size limits so that the
episodes table, the data and the videos each span several files."""
import shutil, sys
import numpy as np
from lerobot.datasets.lerobot_dataset import LeRobotDataset

out = sys.argv[1]
root = out + "/dataset"
shutil.rmtree(out, ignore_errors=True)
raw = {}
features = {
    "observation.state": {"dtype": "float32", "shape": (19,), "names": None},
    "observation.environment_state": {"dtype": "float32", "shape": (6,), "names": None},
    "action": {"dtype": "float32", "shape": (4,), "names": ["dx", "dy", "dz", "gripper"]},
    "observation.images.front": {"dtype": "video", "shape": (16, 16, 3), "names": ["height", "width", "channels"]},
}
ds = LeRobotDataset.create("local/lerobot_written", fps=20, features=features, root=root, robot_type="fixture_arm",
                           use_videos=True, vcodec="h264", metadata_buffer_size=1)
ds.meta.update_chunk_settings(data_files_size_in_mb=0.004, video_files_size_in_mb=0.004)
rng = np.random.default_rng(0)
for ep in range(5):
    length = 5 + 2 * ep
    task = ["pick the red cube", "push the blue cube"][ep % 2]
    for t in range(length):
        img = np.zeros((16, 16, 3), np.uint8)
        img[:, :, 0] = 40 * ep                     # episode in the red channel
        img[:, :, 1] = 15 * t                      # frame in the green channel
        img[4:8, 4:8, 2] = 255
        raw.setdefault(f"episode_{ep}", []).append(img)
        ds.add_frame({"observation.state": (rng.normal(size=19) + ep).astype(np.float32),
                      "observation.environment_state": (rng.normal(size=6) - t).astype(np.float32),
                      "action": rng.uniform(-1, 1, size=4).astype(np.float32),
                      "observation.images.front": img, "task": task})
    ds.save_episode()
ds.finalize()
np.savez_compressed(out + "/raw_images.npz", **{k: np.stack(v) for k, v in raw.items()})
print("written", root)
