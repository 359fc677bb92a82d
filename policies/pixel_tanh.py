"""Tanh-Gaussian actor from camera images and proprioception: the pixel policy of off-policy RL (DrQ's recipe).

Each camera's uint8 image goes through a conv trunk with a spatial softmax (``policies/vla/keypoints.py``); its
keypoints and the normalised proprioception are the features both the actor and the critics read. As in SAC-AE and
DrQ, the critics' loss trains the image encoder (``encoder_parameters``) and the actor reads its output detached: the
actor's gradient through Q is a poor teacher for a conv net. Updates see each stored image shifted by up to
``random_shift`` pixels (DrQ's augmentation, ``augment``); acting and evaluation see the image as rendered.
"""

from __future__ import annotations

import contextlib

import torch

from policies.base import CAMERA_INPUT, register_policy
from policies.mlp import state_vector
from policies.normalizer import RunningNormalizer
from policies.tanh_mlp import TanhGaussianMLPPolicy, refuse_other_action_box
from policies.vla.augment import random_shift
from policies.vla.keypoints import ConvKeypointEncoder


VISION_SETTINGS = {"name", "channels", "keypoints", "freeze"}  # freeze: false only (the critics train it)


@register_policy("pixel_tanh")
class PixelTanhPolicy(TanhGaussianMLPPolicy):
    """``policy=pixel_tanh``: keypoints of ``cameras`` plus ``obs_keys`` (proprioception) -> tanh-Gaussian actions;
    for off-policy algorithms (algo=sac|rlpd|wsrl), whose critics train its encoder."""

    def __init__(self, config: dict):
        cameras = list(config.get("cameras", ["front"]))
        vision = dict(config.get("vision") or {"name": "keypoints"})
        channels, keypoints = int(vision.get("channels", 16)), int(vision.get("keypoints", 16))
        if vision.get("name") != "keypoints" or set(vision) - VISION_SETTINGS or vision.get("freeze"):
            raise ValueError(f"policy=pixel_tanh's image encoder is policy.vision={{name: keypoints, channels: C, "
                             f"keypoints: K}}, got policy.vision={vision}")
        if not cameras or channels < 2 or keypoints < 1:
            raise ValueError(f"policy=pixel_tanh needs >= 1 camera, vision.channels >= 2 and vision.keypoints >= 1; "
                             f"got cameras={cameras} channels={channels} keypoints={keypoints}")
        if list(config.get("obs_keys", ["state"])) != ["state"]:
            raise ValueError(f"policy=pixel_tanh reads images and the proprioception (policy.obs_keys=[state]), got "
                             f"policy.obs_keys={config['obs_keys']}: the task state is what it must see")
        state_dim = int(config["state_dim"])
        super().__init__(config | {"obs_keys": ["state"], "obs_dim": state_dim + 2 * keypoints * len(cameras)})
        self.cameras = cameras
        self.normalizer = RunningNormalizer(state_dim)  # the proprioception's; images are scaled in the encoder
        self.encoders = torch.nn.ModuleDict({camera: ConvKeypointEncoder(channels, keypoints)
                                             for camera in self.cameras})
        self._encodings: dict | None = None  # inside reuse_encodings: (id of an image batch, grad) -> its keypoints
        self.shift = int(config.get("random_shift", 2))
        if self.shift < 0:
            raise ValueError(f"policy.random_shift must be >= 0 pixels (0: no augmentation), got {self.shift}")

    @classmethod
    def for_env(cls, config, observation_spec, action_spec, sample_obs):
        """Sized for the env's proprioception and its cameras, which must include ``policy.cameras``."""
        cameras = list(config.get("cameras", ["front"]))
        missing = [camera for camera in cameras if camera not in observation_spec.cameras]
        if missing:
            raise ValueError(f"policy=pixel_tanh reads cameras {missing} that the env does not render: set "
                             f"env.cameras={sorted(set(observation_spec.cameras) | set(missing))}")
        refuse_other_action_box("pixel_tanh", action_spec)
        pixel_keys = ("hidden", "obs_keys", "cameras", "vision", "random_shift", "n_action_steps")
        return cls({k: config[k] for k in pixel_keys if k in config} | {
            "state_dim": observation_spec.state_dim, "action_dim": action_spec.dim})

    def features(self, obs: dict) -> torch.Tensor:
        """``[normalised state | keypoints of each camera]`` [N, feature_dim], differentiable in the encoder."""
        keypoints = [self._keypoints(camera, obs["rgb"][camera]) for camera in self.cameras]  # [N, 2K] each
        return torch.cat([self.normalizer(state_vector(obs, self.obs_keys)), *keypoints], dim=-1)

    def _keypoints(self, camera: str, images: torch.Tensor) -> torch.Tensor:
        """The encoder's keypoints [N, 2K] of ``images``, computed once per batch inside ``reuse_encodings``."""
        if self._encodings is None:
            return self.encoders[camera](images)[:, 0]
        key = (id(images), torch.is_grad_enabled())  # a batch first encoded without gradients is encoded again with
        if key not in self._encodings:  # the images are kept with their keypoints, so no other batch can take their id
            self._encodings[key] = (images, self.encoders[camera](images)[:, 0])
        return self._encodings[key][1]

    @contextlib.contextmanager
    def reuse_encodings(self):
        """Within this block each image batch is encoded once: one off-policy update reads the same batch for the
        critics, the actor and its terms, and the actor reads the keypoints the update started with (as DrQ-v2)."""
        self._encodings = {}
        try:
            yield
        finally:
            self._encodings = None

    def actor_features(self, obs: dict) -> torch.Tensor:
        """``features`` with the encoder's output detached: the actor's loss does not train the encoder."""
        return self.features(obs).detach()

    def encoder_parameters(self) -> list:
        """The image encoders': trained by the critics' loss."""
        return list(self.encoders.parameters())

    def augment(self, obs: dict) -> dict:
        """Each image shifted by up to ``random_shift`` pixels, a fresh shift per image (DrQ)."""
        if not self.shift:
            return obs
        return obs | {"rgb": {camera: random_shift(obs["rgb"][camera], self.shift) for camera in self.cameras}}

    def cache_features(self, obs: dict) -> dict:
        """The proprioception and the images of the cameras read, as the replay buffer stores them (uint8)."""
        return {"state": obs["state"], "rgb": {camera: obs["rgb"][camera] for camera in self.cameras}}

    def observation_inputs(self) -> list[str]:
        """``state`` and ``rgb/<camera>`` of each camera."""
        return ["state", *(CAMERA_INPUT + camera for camera in self.cameras)]

    def sft_loss(self, batch: dict) -> torch.Tensor:
        """Refused: SFT would leave the encoder untrained (only the critics' loss trains it)."""
        raise NotImplementedError("policy=pixel_tanh trains its image encoder through off-policy critics "
                                  "(algo=sac|rlpd|wsrl); for SFT from pixels use policy=vla")
