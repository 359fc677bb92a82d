"""Tabletop tasks, looked up by name: each module of this package registers its task class in ``TASKS``."""

from __future__ import annotations

from sims.tasks.base import TASKS, Task


def make_task(name: str) -> Task:
    """Instantiate a task by name (e.g. "PickCube")."""
    return TASKS.lookup(name)()
