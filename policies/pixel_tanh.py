"""Tanh-Gaussian actor from camera images and proprioception: the pixel policy of off-policy RL (DrQ's recipe).

Each camera's uint8 image goes through a conv trunk with a spatial softmax (``policies/vla/keypoints.py``); its
keypoints and the normalised proprioception are the features both the actor and the critics read. As in SAC-AE and
DrQ, the critics' loss trains the image encoder (``encoder_parameters``) and the actor reads its output detached: the
actor's gradient through Q is a poor teacher for a conv net. Updates see each stored image shifted by up to
``random_shift`` pixels (DrQ's augmentation, ``augment``); acting and evaluation see the image as rendered. SFT
(``algo=sft``) has no critics: behaviour cloning trains the encoder and the actor together, a pixel start that
off-policy RL goes on from (``init_from``; ``vision.freeze`` keeps SFT's keypoints).
"""

from __future__ import annotations

import contextlib

import torch

from policies.base import CAMERA_INPUT, register_policy, valid_steps
from policies.mlp import state_vector
from policies.normalizer import RunningNormalizer
from policies.tanh_mlp import TanhGaussianMLPPolicy, refuse_other_action_box
from policies.vla.augment import random_shift
from policies.vla.keypoints import ConvKeypointEncoder
from policies.task_state import TaskStateHead


VISION_SETTINGS = {"name", "channels", "keypoints", "freeze"}  # freeze: true keeps the weights it starts with


@register_policy("pixel_tanh")
class PixelTanhPolicy(TaskStateHead, TanhGaussianMLPPolicy):
    """``policy=pixel_tanh``: keypoints of ``cameras`` plus ``obs_keys`` (proprioception) -> tanh-Gaussian actions;
    for off-policy algorithms (algo=sac|rlpd|wsrl), whose critics train its encoder (unless ``vision.freeze``), and
    for SFT (algo=sft), which trains it by behaviour cloning."""

    def __init__(self, config: dict):
        cameras = list(config.get("cameras", ["front"]))
        vision = dict(config.get("vision") or {"name": "keypoints"})
        channels, keypoints = int(vision.get("channels", 16)), int(vision.get("keypoints", 16))
        if vision.get("name") != "keypoints" or set(vision) - VISION_SETTINGS:
            raise ValueError(f"policy=pixel_tanh's image encoder is policy.vision={{name: keypoints, channels: C, "
                             f"keypoints: K, freeze: false|true}}, got policy.vision={vision}")
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
        self.freeze_vision = bool(vision.get("freeze", False))  # RL from an SFT start keeps SFT's keypoints
        self.encoders.requires_grad_(not self.freeze_vision)
        self._encodings: dict | None = None  # inside reuse_encodings: (id of an image batch, grad) -> its keypoints
        self.shift = int(config.get("random_shift", 2))
        if self.shift < 0:
            raise ValueError(f"policy.random_shift must be >= 0 pixels (0: no augmentation), got {self.shift}")
        # SFT only (policies/task_state.py): the keypoints must locate the task's objects and goal
        self.init_task_state_head(config, lambda size: torch.nn.Sequential(
            torch.nn.Linear(2 * keypoints * len(cameras), 128), torch.nn.ReLU(), torch.nn.Linear(128, size)))

    @classmethod
    def for_env(cls, config, observation_spec, action_spec, sample_obs):
        """Sized for the env's proprioception and its cameras, which must include ``policy.cameras``."""
        cameras = list(config.get("cameras", ["front"]))
        missing = [camera for camera in cameras if camera not in observation_spec.cameras]
        if missing:
            raise ValueError(f"policy=pixel_tanh reads cameras {missing} that the env does not render: set "
                             f"env.cameras={sorted(set(observation_spec.cameras) | set(missing))}")
        refuse_other_action_box("pixel_tanh", action_spec)
        pixel_keys = ("hidden", "obs_keys", "cameras", "vision", "random_shift", "n_action_steps", "aux_state_coef")
        sized = {k: config[k] for k in pixel_keys if k in config} | {
            "state_dim": observation_spec.state_dim, "action_dim": action_spec.dim}
        if config.get("aux_state_coef"):  # the part of the task state asked for, or that the task says matters
            dims = config.get("aux_state_dims") or observation_spec.goal_state_dims
            sized |= {"privileged_dim": observation_spec.privileged_dim, "aux_state_dims": list(dims) if dims else None}
        elif config.get("aux_state_dims") is not None:
            sized["aux_state_dims"] = config["aux_state_dims"]  # refused by the constructor
        return cls(sized)

    def features(self, obs: dict) -> torch.Tensor:
        """``[normalised state | keypoints of each camera]`` [N, feature_dim], differentiable in the encoder; a frozen
        encoder's keypoints may come stored (``cache_features``)."""
        if "keypoints" in obs:
            keypoints = [obs["keypoints"]]  # [N, 2K x cameras]
        else:
            keypoints = [self._keypoints(camera, obs["rgb"][camera]) for camera in self.cameras]  # [N, 2K] each
        return torch.cat([self.normalizer(state_vector(obs, self.obs_keys)), *keypoints], dim=-1)

    def _keypoints(self, camera: str, images: torch.Tensor) -> torch.Tensor:
        """The encoder's keypoints [N, 2K] of ``images``, computed once per batch inside ``reuse_encodings``."""
        if self._encodings is None:
            return self.encoders[camera](images)[:, 0]
        # a batch first encoded without gradients is encoded again with them (a frozen encoder's, never); the images
        # are kept with their keypoints, so no other batch can take their id
        key = (id(images), torch.is_grad_enabled() and not self.freeze_vision)
        if key not in self._encodings:
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
        """The image encoders': trained by the critics' loss; none with ``vision.freeze``."""
        return [] if self.freeze_vision else list(self.encoders.parameters())

    def augment(self, obs: dict) -> dict:
        """Each image shifted by up to ``random_shift`` pixels, a fresh shift per image (DrQ)."""
        if not self.shift or "rgb" not in obs:  # (stored keypoints: nothing to shift)
            return obs
        return obs | {"rgb": {camera: random_shift(obs["rgb"][camera], self.shift) for camera in self.cameras}}

    def cache_features(self, obs: dict) -> dict:
        """The proprioception and the images of the cameras read, as the replay buffer stores them (uint8); with a
        frozen encoder, its keypoints instead: updates then never run the conv nets (RL from an SFT start)."""
        if self.freeze_vision:
            with torch.no_grad():
                keypoints = torch.cat([self._keypoints(camera, obs["rgb"][camera]) for camera in self.cameras], -1)
            return {"state": obs["state"], "keypoints": keypoints}
        return {"state": obs["state"], "rgb": {camera: obs["rgb"][camera] for camera in self.cameras}}

    def observation_inputs(self) -> list[str]:
        """``state`` and ``rgb/<camera>`` of each camera."""
        return ["state", *(CAMERA_INPUT + camera for camera in self.cameras)]

    def sft_loss(self, batch: dict) -> torch.Tensor:
        """Behaviour cloning that trains the image encoder too (no critics train it in SFT): the squared error of
        ``tanh(mean)`` to each demonstrated action on shifted images (DrQ), summed over action dims, mean over real
        steps. The std is left to RL: a likelihood would shrink it on a constant dimension (the gripper's) until that
        dimension's gradients swamp the others under the norm clip. With ``aux_state_coef``, plus that times the mean
        squared error of the z-scored task state (``aux_state_dims`` of it) read from the keypoints alone, as the VLA's
        ``aux_state_coef``: the keypoints must find the goal, not only the proprioception's motion."""
        obs = self.augment(batch["obs"])
        x = self.features(obs)  # [N, S + 2K x cameras], the encoder in the graph
        action = torch.tanh(self._distribution(x).mean)  # [N, 1, A]
        error = (action - batch["action"]).pow(2).sum(dim=-1)  # [N, T=1]
        loss = (error * valid_steps(batch)).sum(dim=1).mean()
        if self.aux_state_coef and "privileged" in obs:  # from the keypoints alone
            loss = loss + self.task_state_loss(x[:, self.normalizer.mean.numel():], obs["privileged"])
        return loss

    def set_dataset_stats(self, stats: dict) -> None:
        """The proprioception's normaliser and, with an auxiliary head, the task state's z-score from the dataset."""
        super().set_dataset_stats(stats)
        self.task_state_stats_from(stats)

    def initial_state_from(self, saved: dict) -> dict:
        """``init_from``: every weight but those of SFT's task-state head, which an RL run's policy does not have."""
        own = self.state_dict()
        return {k: v for k, v in saved.items() if k in own or not k.startswith("task_state_")}
