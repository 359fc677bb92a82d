"""The one registry kind of the project: a name -> object mapping filled by a decorator, looked up by config strings.

It lives in ``sims`` because that is the package every other one may import (``policies``, ``real_robot`` and
``embodied`` all build on it), not because it is about simulation. Tasks, simulator backends, policies, action
heads, encoders, advantages, losses, algorithms, robots, cameras and teleop devices each have one; ``REGISTRIES``
lists them all (``embodied-train --list`` prints it).

Adding a thing is one file: a registry with a ``package`` imports that package's modules before it answers a
lookup of a name it does not hold yet, so a new module there registers itself without being imported anywhere.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator, Mapping
from typing import Any, Callable

REGISTRIES: dict[str, "Registry"] = {}  # kind -> registry, in the order they were created


class Registry(Mapping):
    """Objects (classes, functions, specs) selectable by name; a read-only mapping name -> object.

    ``kind`` names the thing in errors ("unknown robot type 'ur6'; available: [...]"); ``package``: modules to
    import before a lookup misses; ``lazy``: names whose object lives in a module with optional dependencies,
    imported only when that name is asked for; ``key``: the setting that picks one (for ``--list``).
    """

    def __init__(self, kind: str, package: str | None = None, lazy: dict[str, str] | None = None, key: str = ""):
        if kind in REGISTRIES:
            raise ValueError(f"a registry of {kind!r} exists already")
        self.kind, self.package, self.lazy, self.key = kind, package, dict(lazy or {}), key
        self._entries: dict[str, Any] = {}
        self._package_state = "not imported"  # -> "importing" -> "imported"
        REGISTRIES[kind] = self

    def register(self, name: str, attribute: str | None = None) -> Callable:
        """Decorator: make the decorated object selectable as ``name`` (and set ``obj.<attribute> = name``)."""

        def wrap(obj):
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice ({self._entries[name]!r} and {obj!r})")
            self._entries[name] = obj
            if attribute is not None:
                setattr(obj, attribute, name)
            return obj

        return wrap

    def unregister(self, name: str) -> None:
        """Remove ``name`` (a test's temporary entry)."""
        del self._entries[name]

    def lookup(self, name: str) -> Any:
        """The object registered as ``name``; KeyError naming the available ones."""
        if name not in self._entries and name in self.lazy:
            importlib.import_module(self.lazy[name])  # its optional dependencies are needed now, not before
        if name not in self._entries:
            self._import_package()
        if name not in self._entries:
            raise KeyError(f"unknown {self.kind} {name!r}; available: {self.names()}")
        return self._entries[name]

    def names(self) -> list[str]:
        """Every name that can be looked up (lazy ones included, without importing them)."""
        self._import_package()
        return sorted(set(self._entries) | set(self.lazy))

    def describe(self, name: str) -> str:
        """``name``'s ``summary``, else the first line of its docstring ("" for a lazy one not imported yet)."""
        obj = self._entries.get(name)
        doc = (getattr(obj, "summary", "") or getattr(obj, "__doc__", None) or "").strip()
        return doc.splitlines()[0] if doc and obj is not None else ""

    def _import_package(self) -> None:
        """Import every module of ``package`` once (a module that fails to import raises here, by name, and the
        next lookup tries again); a lookup made while they import sees what is registered so far."""
        if self.package is None or self._package_state != "not imported":
            return
        self._package_state = "importing"
        try:
            package = importlib.import_module(self.package)
            for module in pkgutil.iter_modules(package.__path__):
                qualified = f"{self.package}.{module.name}"
                if qualified not in self.lazy.values():
                    importlib.import_module(qualified)
        except BaseException:
            self._package_state = "not imported"
            raise
        self._package_state = "imported"

    def build(self, config: dict, default: str) -> Any:
        """An instance of the class named by ``config['type']`` (``default`` without one), the other keys as
        keyword arguments (robots, cameras and teleop devices are configured so)."""
        config = dict(config)
        return self.lookup(config.pop("type", default))(**config)

    def __getitem__(self, name: str) -> Any:
        return self.lookup(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._entries or name in self.lazy or name in self.names())

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())
