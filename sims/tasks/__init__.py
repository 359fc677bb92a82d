"""Tabletop tasks, looked up by name."""

from __future__ import annotations

from sims.tasks.base import Task
from sims.tasks.lang_place import LangPlaceCube
from sims.tasks.pick_cube import PickCube
from sims.tasks.push_cube import PushCube
from sims.tasks.reach import Reach
from sims.tasks.stack_cube import StackCube

TASKS: dict[str, type[Task]] = {cls.name: cls for cls in (Reach, PushCube, PickCube, StackCube, LangPlaceCube)}


def make_task(name: str) -> Task:
    """Instantiate a task by name (e.g. "PickCube")."""
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; available: {sorted(TASKS)}")
    return TASKS[name]()
