"""The vision-language-action policy: pretrained encoders, a transformers decoder over all tokens, an action head.

Token sequence fed to the decoder (causal, built from a transformers config such as Llama or Qwen2):
``[instruction tokens | image tokens of each camera | proprioception token | query tokens]``; the head reads
the outputs at the query positions, the value head their mean. Observations: ``rgb[cam]`` uint8 [N, H, W, 3],
``instruction`` list[str], ``state`` [N, S]. Actions leave ``act`` in env units; heads work in [-1, 1].
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from policies.base import CAMERA_INPUT, Policy, register_policy, valid_steps
from policies.task_state import TaskStateHead
from policies.vla.augment import random_shift
from policies.vla.critic import PrivilegedCritic
from policies.vla.encoders import LANGUAGE_ENCODERS, VISION_ENCODERS, _require_transformers, build_encoder
from policies.vla.heads import head_class
from policies.vla.stats import NormalizationStats

DEFAULT_FUSION = {"arch": "llama", "hidden_size": 128, "layers": 2, "heads": 4, "intermediate_size": 256}


def build_decoder(fusion: dict) -> nn.Module:
    """A transformers decoder-only model (no LM head) from a small config; inputs come as embeddings."""
    transformers = _require_transformers()
    config = transformers.AutoConfig.for_model(
        fusion.get("arch", "llama"), hidden_size=int(fusion["hidden_size"]),
        num_hidden_layers=int(fusion["layers"]), num_attention_heads=int(fusion["heads"]),
        num_key_value_heads=int(fusion["heads"]), intermediate_size=int(fusion["intermediate_size"]),
        vocab_size=1, max_position_embeddings=1024, bos_token_id=None, eos_token_id=None, pad_token_id=None,
    )
    return transformers.AutoModel.from_config(config)


@register_policy("vla")
class VLAPolicy(TaskStateHead, Policy):
    """Vision-language-action policy with a selectable action head and a value head on the shared backbone."""

    def __init__(self, config: dict):
        super().__init__(config)
        self.state_dim = int(config["state_dim"])
        self.action_dim = int(config["action_dim"])
        self.chunk_size = int(config.get("chunk_size", 1))
        self.cameras = list(config.get("cameras", ["front"]))
        vision_cfg = dict(config.get("vision", {"name": "tiny"}))
        language_cfg = dict(config.get("language", {"name": "tiny"}))
        fusion = {**DEFAULT_FUSION, **dict(config.get("fusion", {}))}
        head_cfg = dict(config.get("head", {"name": "gaussian"}))
        d = int(fusion["hidden_size"])

        self.vision = build_encoder(VISION_ENCODERS, vision_cfg)
        self.language = build_encoder(LANGUAGE_ENCODERS, language_cfg)
        self.freeze_vision = bool(vision_cfg.get("freeze", False))
        self.freeze_language = bool(language_cfg.get("freeze", False))
        pool = language_cfg.get("pool", "none")
        if pool not in ("none", "mean"):
            raise ValueError(f"policy.language.pool must be none or mean, got {pool!r}")
        self.pool_language = pool == "mean"
        for tower, frozen in ((self.vision, self.freeze_vision), (self.language, self.freeze_language)):
            tower.requires_grad_(not frozen)
        # vision.film: the instruction embedding modulates the vision tower (FiLM), so its features can single out
        # the objects the instruction names (LangPlaceCube: one of three cubes, one of three targets)
        self.film = bool(vision_cfg.get("film", False))
        if self.film:
            if not hasattr(self.vision, "condition_on"):
                raise ValueError(f"policy.vision.film=true needs a vision encoder that takes the instruction "
                                 f"(keypoints), not {vision_cfg.get('name')!r}; set policy.vision.film=false")
            self.vision.condition_on(self.language.dim)
        self.vision_proj = nn.Linear(self.vision.dim, d)
        self.language_proj = nn.Linear(self.language.dim, d)
        self.state_proj = nn.Linear(self.state_dim, d)
        self.camera_embedding = nn.Parameter(torch.zeros(len(self.cameras), d))
        head = head_class(head_cfg)
        self.num_queries = head.num_queries(self.chunk_size, self.action_dim)
        self.queries = nn.Parameter(torch.randn(self.num_queries, d) * 0.02)
        self.decoder = build_decoder(fusion)
        self.head = head(head_cfg, d, self.chunk_size, self.action_dim)
        self.detach_value = bool(config.get("detach_value", False))
        self.random_shift = int(config.get("random_shift", 0))  # SFT augmentation of trained vision towers, pixels
        self.critic_input = str(config.get("critic", "backbone"))
        if self.critic_input == "privileged":
            if int(config.get("privileged_dim", 0)) <= 0:
                raise ValueError("policy.critic=privileged needs the env's task state (privileged_dim > 0); use "
                                 "policy.critic=backbone for an env without one")
            self.value_head = PrivilegedCritic(self.state_dim, int(config["privileged_dim"]))
        elif self.critic_input == "backbone":
            self.value_head = nn.Sequential(nn.Linear(d, d), nn.Tanh(), nn.Linear(d, 1))
        else:
            raise ValueError(f"policy.critic must be backbone or privileged, got {self.critic_input!r}")
        self.stats = NormalizationStats(self.state_dim, self.action_dim)
        # the auxiliary SFT target (policies/task_state.py), predicted from the mean of the fused query outputs
        self.init_task_state_head(config, lambda size: nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, size)))
        self._instruction_cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def for_env(cls, config, observation_spec, action_spec, sample_obs):
        """Sized for the env; action bounds from its spec, state statistics from ``sample_obs['state']``."""
        missing = [cam for cam in config.get("cameras", ["front"]) if cam not in observation_spec.cameras]
        if missing:
            raise ValueError(f"the VLA reads cameras {missing} that the env does not render; add them to env.cameras "
                             f"(env renders {list(observation_spec.cameras)})")
        vla_keys = ("chunk_size", "cameras", "vision", "language", "fusion", "detach_value", "critic", "random_shift",
                    "aux_state_coef", "aux_state_dims", "n_action_steps")
        head = dict(config.get("head", {"name": "gaussian"}))
        head.setdefault("init_log_std", config.get("init_log_std", -1.0))
        sized = {k: config[k] for k in vla_keys if k in config}
        task_dims = observation_spec.goal_state_dims
        if sized.get("aux_state_coef") and sized.get("aux_state_dims") is None and task_dims is not None:
            sized["aux_state_dims"] = list(task_dims)  # the part of the task state the task says matters
        policy = cls(sized | {
            "state_dim": observation_spec.state_dim, "action_dim": action_spec.dim, "head": head,
            "privileged_dim": observation_spec.privileged_dim})
        if policy.aux_state_coef:
            task_states = sample_obs["privileged"].float()
            policy.set_task_state_stats(task_states.mean(0), task_states.std(0))
        if policy.critic_input == "privileged":
            policy.value_head.fit_task_state(sample_obs["privileged"])
        states = sample_obs["state"].float()
        policy.set_stats(states.mean(0), states.std(0, unbiased=False).clamp(min=0.05),
                         torch.full((action_spec.dim,), float(action_spec.low)),
                         torch.full((action_spec.dim,), float(action_spec.high)))
        return policy

    # ------------------------------------------------------------------------------------------ statistics
    def set_stats(self, state_mean, state_std, action_low, action_high) -> None:
        """Install the state mean/std and action bounds this policy normalises with."""
        self.stats.set(state_mean, state_std, action_low, action_high)

    def validate_loaded(self) -> None:
        """from_pretrained hook: a saved VLA without statistics is an error."""
        self.stats.check()

    def train(self, mode: bool = True):
        super().train(mode)
        for tower, frozen in ((self.vision, self.freeze_vision), (self.language, self.freeze_language)):
            if frozen:
                tower.eval()  # frozen towers keep batch-norm statistics and dropout off
        return self

    # ------------------------------------------------------------------------------------------- encoding
    def _encode_instructions(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """The language tower's tokens [N, L, D_l] and mask [N, L], or with ``language.pool=mean`` one token
        [N, 1, D_l]: the masked mean, as sentence encoders such as all-MiniLM-L6-v2 are trained to be read."""
        tokens, mask = self.language(texts)
        if not self.pool_language:
            return tokens, mask
        weights = mask.to(tokens.dtype)[..., None]  # [N, L, 1]
        pooled = (tokens * weights).sum(1, keepdim=True) / weights.sum(1, keepdim=True).clamp(min=1)
        return pooled, torch.ones(mask.shape[0], 1, dtype=torch.bool, device=mask.device)

    def _language_tokens(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Instruction features [N, L, D_l] and mask [N, L]; memoised per string when the tower is frozen."""
        if not self.freeze_language:
            return self._encode_instructions(texts)
        missing = sorted({t for t in texts if t not in self._instruction_cache})
        if missing:
            with torch.no_grad():
                tokens, mask = self._encode_instructions(missing)
            self._instruction_cache.update({t: (tokens[i], mask[i]) for i, t in enumerate(missing)})
        rows = [self._instruction_cache[t] for t in texts]
        return torch.stack([r[0] for r in rows]), torch.stack([r[1] for r in rows])

    def _vision_tokens(self, obs: dict, words: torch.Tensor, word_mask: torch.Tensor) -> torch.Tensor:
        """Image features of every camera [N, P, D_v] (cameras concatenated, camera embedding added later); with
        ``vision.film`` the tower also reads the instruction: the masked mean of ``words`` [N, L, D_l]."""
        if not self.film:
            return torch.cat([self.vision(obs["rgb"][cam]) for cam in self.cameras], dim=1)
        weights = word_mask.to(words.dtype)[..., None]  # [N, L, 1]
        condition = (words * weights).sum(1) / weights.sum(1).clamp(min=1)  # [N, D_l]
        return torch.cat([self.vision(obs["rgb"][cam], condition) for cam in self.cameras], dim=1)

    def _instruction(self, obs: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Instruction tokens [N, L, D_l] and mask [N, L]: cached in ``obs`` or encoded now."""
        if "language_tokens" in obs:
            return obs["language_tokens"], obs["language_mask"]
        return self._language_tokens(list(obs["instruction"]))

    @torch.no_grad()
    def cache_features(self, obs: dict) -> dict:
        """Replace raw inputs of frozen towers by their features, so RL epochs do not re-run them."""
        obs = dict(obs)
        if self.freeze_language and "language_tokens" not in obs:
            obs["language_tokens"], obs["language_mask"] = self._language_tokens(list(obs["instruction"]))
        if self.freeze_vision and "vision_tokens" not in obs:
            obs["vision_tokens"] = self._vision_tokens(obs, *self._instruction(obs))
            obs.pop("rgb", None)
        return obs

    def fused(self, obs: dict) -> torch.Tensor:
        """Decoder outputs at the query positions, [N, Q, d]."""
        state = self.stats.normalize_state(obs["state"])  # [N, S]
        n = state.shape[0]
        words, word_mask = self._instruction(obs)
        if "vision_tokens" in obs:
            vision = obs["vision_tokens"]
        elif self.freeze_vision:
            with torch.no_grad():
                vision = self._vision_tokens(obs, words, word_mask)
        else:
            vision = self._vision_tokens(obs, words, word_mask)
        per_camera = vision.shape[1] // len(self.cameras)
        image = self.vision_proj(vision) + self.camera_embedding.repeat_interleave(per_camera, dim=0)  # [N, P, d]
        tokens = torch.cat([self.language_proj(words), image, self.state_proj(state)[:, None],
                            self.queries.expand(n, -1, -1)], dim=1)  # [N, L + P + 1 + Q, d]
        mask = torch.cat([word_mask.long(), torch.ones(n, tokens.shape[1] - word_mask.shape[1],
                                                       dtype=torch.long, device=tokens.device)], dim=1)
        out = self.decoder(inputs_embeds=tokens, attention_mask=mask).last_hidden_state
        return out[:, -self.num_queries:]  # [N, Q, d]

    def _value(self, h: torch.Tensor, obs: dict) -> torch.Tensor:
        """Values [N]: from the mean of the query outputs ``h`` [N, Q, d], or from privileged inputs."""
        if self.critic_input == "privileged":
            return self.value_head(self.stats.normalize_state(obs["state"]), obs)
        pooled = h.mean(dim=1)
        return self.value_head(pooled.detach() if self.detach_value else pooled).squeeze(-1)  # [N]

    # ------------------------------------------------------------------------------------------ interface
    def act(self, obs):
        h = self.fused(obs)
        action, logprob = self.head.sample(h)  # normalised [N, T, A]
        return self.stats.unnormalize_action(action), logprob, self._value(h, obs)

    def evaluate(self, obs, action):
        h = self.fused(obs)
        logprob, entropy = self.head.log_prob(h, self.stats.normalize_action(action))
        return logprob, entropy, self._value(h, obs)

    def value(self, obs):
        if self.critic_input == "privileged":  # no backbone pass
            return self._value(None, obs)
        return self._value(self.fused(obs), obs)

    def critic_parameters(self):
        return list(self.value_head.parameters())  # the head on the shared trunk, or the privileged MLP

    def initial_state_from(self, saved: dict) -> dict:
        """``saved`` whole, except that a value head of another input (e.g. an SFT policy's backbone head under
        ``policy.critic=privileged``) is left out and this policy's fresh one kept."""
        own = {k: v for k, v in self.state_dict().items() if k.startswith("value_head.")}
        theirs = {k: v for k, v in saved.items() if k.startswith("value_head.")}
        if theirs.keys() == own.keys() and all(theirs[k].shape == own[k].shape for k in own):
            return saved
        return {k: v for k, v in saved.items() if k not in theirs} | own

    def deterministic_action(self, obs):
        return self.stats.unnormalize_action(self.head.mode(self.fused(obs)))

    def sft_loss(self, batch: dict) -> torch.Tensor:
        """The head's imitation loss (NLL for token/Gaussian heads, flow matching for the flow head).

        A trained vision tower sees each demonstration image shifted by up to ``random_shift`` pixels."""
        obs = batch["obs"]
        if self.random_shift and not self.freeze_vision and "rgb" in obs:
            obs = {**obs, "rgb": {cam: random_shift(images, self.random_shift) for cam, images in obs["rgb"].items()}}
        h = self.fused(obs).float()  # [N, Q, d]; under bf16 autocast the heads and losses still run in fp32
        with torch.autocast(h.device.type, enabled=False):
            loss = self.head.sft_loss(h, self.stats.normalize_action(batch["action"]), valid_steps(batch))
            if self.aux_state_coef and "privileged" in obs:
                loss = loss + self.task_state_loss(h.mean(1), obs["privileged"])  # from [N, d]
        return loss

    @property
    def learns_from_scenes(self) -> bool:
        """True with an auxiliary task-state head (``aux_state_coef`` > 0)."""
        return bool(self.aux_state_coef)

    def scene_loss(self, obs: dict) -> torch.Tensor:
        """The task-state loss alone on observations without actions (rendered scenes, no demonstration): the
        towers must find the objects and the goal from the images where proprioception says nothing of them."""
        assert self.learns_from_scenes, "scene_loss needs policy.aux_state_coef > 0"
        h = self.fused(obs).float()  # [N, Q, d]
        with torch.autocast(h.device.type, enabled=False):
            return self.task_state_loss(h.mean(1), obs["privileged"])

    def observation_inputs(self) -> list[str]:
        """Proprioception and every camera of ``cameras`` (the instruction comes with every dataset frame)."""
        return ["state", *[f"{CAMERA_INPUT}{camera}" for camera in self.cameras]]

    def set_dataset_stats(self, stats: dict) -> None:
        """State mean/std from the dataset; the action bounds stay those of the env (or of ``set_stats``)."""
        state = stats["observation.state"]
        self.task_state_stats_from(stats)
        self.stats.set(np.asarray(state["mean"]).ravel(), np.maximum(np.asarray(state["std"]).ravel(), 0.05),
                       self.stats.action_low.clone(), self.stats.action_high.clone())
