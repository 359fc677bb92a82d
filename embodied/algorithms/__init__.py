"""RL algorithms: each is an advantage function plus a loss, registered by name."""

from embodied.algorithms import advantages, losses  # noqa: F401  (fill the registries)
from embodied.algorithms.registry import get_advantage, get_loss, register_advantage, register_loss

__all__ = ["get_advantage", "get_loss", "register_advantage", "register_loss"]
