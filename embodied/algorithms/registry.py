"""Registries that map config strings to advantage estimators and losses (no if/else chains)."""

from __future__ import annotations

from typing import Callable

ADVANTAGES: dict[str, Callable] = {}
LOSSES: dict[str, Callable] = {}


def register_advantage(name: str) -> Callable:
    """Decorator: make an advantage function selectable as ``algo.advantage=<name>``."""

    def wrap(fn):
        ADVANTAGES[name] = fn
        return fn

    return wrap


def register_loss(name: str) -> Callable:
    """Decorator: make a loss function selectable as ``algo.loss=<name>``."""

    def wrap(fn):
        LOSSES[name] = fn
        return fn

    return wrap


def get_advantage(name: str) -> Callable:
    """Look up a registered advantage function."""
    if name not in ADVANTAGES:
        raise KeyError(f"unknown advantage {name!r}; registered: {sorted(ADVANTAGES)}")
    return ADVANTAGES[name]


def get_loss(name: str) -> Callable:
    """Look up a registered loss function."""
    if name not in LOSSES:
        raise KeyError(f"unknown loss {name!r}; registered: {sorted(LOSSES)}")
    return LOSSES[name]
