"""Policies for embodied-vla: one interface (act / evaluate / select_action / save_pretrained) for all."""

from policies.base import Policy, from_pretrained, make_policy, register_policy
from policies import mlp  # noqa: F401  (registers "mlp")
from policies import residual  # noqa: F401  (registers "residual")
from policies import tanh_mlp  # noqa: F401  (registers "tanh_mlp")
from policies.vla import policy as _vla  # noqa: F401  (registers "vla"; transformers is imported lazily)

__all__ = ["Policy", "from_pretrained", "make_policy", "register_policy"]
