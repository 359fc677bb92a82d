"""Tabletop tasks, looked up by name: each module of this package registers its task class in ``TASKS``."""

from __future__ import annotations

from sims.tasks.base import TASKS, Task


def make_task(name: str, **options) -> Task:
    """Instantiate a task by name (e.g. "PickCube"); ``options`` go to its constructor (TabletopSuite: suite, split)."""
    cls = TASKS.lookup(name)
    if options and cls.__init__ is Task.__init__:
        raise ValueError(f"task {name!r} takes no options ({sorted(options)}): env.suite and env.split need "
                         f"env.task=TabletopSuite (or env=tabletop_suite)")
    return cls(**options)
