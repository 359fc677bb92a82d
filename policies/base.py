"""The policy interface shared by small policies and VLAs, a registry, and safetensors persistence.

Shapes: obs is the batched env's dict (leading dim N). Actions are chunks [N, T, A] (T = chunk size, 1 for
single-step policies). Log-probabilities and entropies are per action dimension, [N, T, A]; algorithms sum
them to the granularity they need (token, action or chunk).
"""

from __future__ import annotations

import abc
import contextlib
import json
import os
from collections import deque
from typing import Callable

import torch
from safetensors.torch import load_file, save
from torch import nn

from sims.registry import Registry

# policy.name <name>: a module of policies/ registers its policy class here
POLICIES = Registry("policy", package="policies", key="policy.name (or policy=<config>)")
CAMERA_INPUT = "rgb/"  # observation_inputs() name of a camera image: rgb/<camera>


def register_policy(name: str) -> Callable:
    """Class decorator: make a policy buildable by ``make_policy(name, ...)`` and loadable by name."""
    return POLICIES.register(name, attribute="policy_type")


class Policy(nn.Module, abc.ABC):
    """Base class: stochastic action chunks with log-probabilities and a value estimate."""

    policy_type = ""
    chunk_size = 1

    def __init__(self, config: dict):
        super().__init__()
        self.config = dict(config)
        self.n_action_steps = int(config.get("n_action_steps", 0))  # actions executed per chunk; 0: all of it
        if self.n_action_steps < 0:
            raise ValueError(f"policy.n_action_steps must be >= 0 (0: execute the whole chunk), "
                             f"got {self.n_action_steps}")
        self._queue: deque = deque()

    @property
    def actions_per_inference(self) -> int:
        """How many actions of each predicted chunk are executed before the policy is asked again."""
        return min(self.n_action_steps or self.chunk_size, self.chunk_size)

    @classmethod
    def for_env(cls, config: dict, observation_spec, action_spec, sample_obs: dict) -> "Policy":
        """Build this policy sized for an env (specs and one batch of observations supply dims and statistics)."""
        raise NotImplementedError(f"{cls.__name__} cannot be built from env specs")

    @abc.abstractmethod
    def act(self, obs: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample an action chunk [N, T, A]; return it with its log-prob [N, T, A] and value [N]."""

    @abc.abstractmethod
    def evaluate(self, obs: dict, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Log-prob [N, T, A] and entropy [N, T, A] of ``action`` under the current policy, and value [N]."""

    @abc.abstractmethod
    def deterministic_action(self, obs: dict) -> torch.Tensor:
        """The mode of the action distribution, [N, T, A] (used for evaluation and deployment)."""

    @property
    def device(self) -> torch.device:
        """Where the policy's parameters live; observations and demonstration batches must be there too."""
        return next(self.parameters()).device

    def value(self, obs: dict) -> torch.Tensor:
        """State value [N]."""
        return self.act(obs)[2]

    reparameterized = False  # True: ``rsample`` gives differentiable bounded samples (off-policy actor-critics)

    def rsample(self, obs: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised action chunk [N, T, A] inside the action bounds and its log-probability [N]."""
        raise NotImplementedError(f"{type(self).__name__} has no reparameterised samples; off-policy algorithms "
                                  "(algo=sac) train policy=tanh_mlp, pixel_tanh or residual_tanh (over any base)")

    def initial_state_from(self, saved: dict) -> dict:
        """The weights ``init_from`` copies from a saved policy's state dict (all of them, by default)."""
        return saved

    def critic_parameters(self) -> list:
        """Parameters of the value function alone (trained by themselves during a critic warm-up)."""
        raise NotImplementedError(f"{type(self).__name__} has no separate critic; set algo.critic_warmup_iterations=0")

    def sft_loss(self, batch: dict) -> torch.Tensor:
        """Behaviour-cloning loss on ``obs`` and ``action`` [N, T, A]: mean negative log-likelihood per chunk;
        chunk steps marked in ``action_is_pad`` [N, T] (past an episode's end) do not count."""
        logprob, _, _ = self.evaluate(batch["obs"], batch["action"])
        return -(logprob * valid_steps(batch)[..., None]).sum(dim=(1, 2)).mean()

    acts_before_training = False  # True: a frozen base makes the first actions useful (no uniform random phase)

    def acting_state(self) -> dict:
        """Tensors that acting carries from one step to the next (a base's chunk), for evaluation to set aside and
        checkpoints to keep; none here."""
        return {}

    def load_acting_state(self, state: dict) -> None:
        """Continue acting from an ``acting_state``."""

    def encoder_parameters(self) -> list:
        """Parameters that off-policy critics train with their own loss (an image encoder, as in DrQ); none here."""
        return []

    def augment(self, obs: dict) -> dict:
        """A batch of stored observations as off-policy updates see them (DrQ's image shifts); unchanged here."""
        return obs

    @contextlib.contextmanager
    def reuse_encodings(self):
        """A block in which the policy may encode each observation batch once (one off-policy update reads a batch
        several times); nothing to reuse here."""
        yield

    learns_from_scenes = False  # True: ``scene_loss`` trains on observations without actions (data.scene_frames)

    def scene_loss(self, obs: dict) -> torch.Tensor:
        """A loss on observations that have no actions (rendered scenes with their task state), added to SFT."""
        raise NotImplementedError(f"{type(self).__name__} cannot learn from scenes without actions")

    def set_dataset_stats(self, stats: dict) -> None:
        """Adopt observation normalisation from a LeRobot meta/stats.json (arrays keyed by feature and stat)."""
        raise NotImplementedError(f"{type(self).__name__} cannot take dataset statistics")

    def cache_features(self, obs: dict) -> dict:
        """Observation to store in rollouts; policies with frozen encoders put their features here."""
        return obs

    def observation_inputs(self) -> list[str]:
        """Observation entries the policy reads: ``state``, ``privileged``, ``rgb/<camera>`` (checked against
        datasets before training)."""
        return ["state"]

    def cameras_read(self) -> list[str]:
        """The cameras among ``observation_inputs()`` (the ``<camera>`` of each ``rgb/<camera>``)."""
        return [name[len(CAMERA_INPUT):] for name in self.observation_inputs() if name.startswith(CAMERA_INPUT)]

    def validate_loaded(self) -> None:
        """Called by ``from_pretrained`` after the weights are in; raise if the loaded policy is unusable."""

    def reset(self) -> None:
        """Forget queued actions (call at episode start)."""
        self._queue.clear()

    @torch.no_grad()
    def select_action(self, obs: dict) -> torch.Tensor:
        """Next action [N, A] for execution one step at a time; when the queue is empty the policy predicts a
        chunk [N, T, A] and queues its first ``actions_per_inference`` actions (1: replan every step)."""
        if not self._queue:
            chunk = self.deterministic_action(obs)  # [N, T, A]
            self._queue.extend(chunk[:, :self.actions_per_inference].unbind(dim=1))
        return self._queue.popleft()

    def save_pretrained(self, directory: str) -> None:
        """Write config.json and model.safetensors (weights and normalisation statistics)."""
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "config.json"), "w") as f:
            json.dump({"policy_type": self.policy_type, **self.config}, f, indent=2)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        with open(os.path.join(directory, "model.safetensors"), "wb") as f:  # save_file would make it 0600;
            f.write(save(tensors))  # open() follows the user's umask, so colleagues can read shared checkpoints


def valid_steps(batch: dict) -> torch.Tensor:
    """1.0 for real chunk steps, 0.0 for padded ones, [N, T]."""
    action = batch["action"]
    if "action_is_pad" not in batch:
        return torch.ones(action.shape[:2], device=action.device)
    return (~batch["action_is_pad"]).float()


def make_policy(name: str, **config) -> Policy:
    """Build a registered policy from its config."""
    return POLICIES.lookup(name)(config)


def from_pretrained(directory: str) -> Policy:
    """Load a policy saved by ``save_pretrained``; no training config needed."""
    config_path = os.path.join(directory, "config.json")
    weights_path = os.path.join(directory, "model.safetensors")
    for path in (config_path, weights_path):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path} is missing: a pretrained policy directory needs config.json and "
                                    "model.safetensors (written by save_pretrained)")
    with open(config_path) as f:
        config = json.load(f)
    name = config.pop("policy_type", None)
    policy = make_policy(name, **config)
    state = load_file(weights_path)
    missing, unexpected = policy.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{weights_path} does not match a {name!r} policy: missing {missing}, unexpected {unexpected}")
    policy.validate_loaded()
    return policy
