"""A name -> class registry filled by a decorator; a name not yet registered is imported as the module of the
same name in the registry's package (so adding a driver or a device is one file)."""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil


class Registry:
    """Classes selectable by a config ``type:`` string; ``kind`` names the thing in error messages."""

    def __init__(self, kind: str, package: str, name_attribute: str, modules: dict | None = None,
                 helpers: tuple[str, ...] = ()):
        """``modules``: names whose class lives outside ``package`` (name -> module); ``helpers``: modules of
        ``package`` that hold no selectable class."""
        self.kind, self.package, self.name_attribute = kind, package, name_attribute
        self.modules, self.helpers = dict(modules or {}), tuple(helpers)
        self.classes: dict[str, type] = {}

    def register(self, name: str):
        """Class decorator: make the class selectable by ``type: <name>``."""
        def wrap(cls):
            self.classes[name] = cls
            setattr(cls, self.name_attribute, name)
            return cls
        return wrap

    def _import(self, name: str) -> None:
        module = self.modules.get(name, f"{self.package}.{name}")
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)

    def build(self, config: dict, default: str):
        """An instance of the class named by ``config['type']`` (default ``default``), the other keys as kwargs."""
        config = dict(config)
        name = config.pop("type", default)
        if name not in self.classes:
            self._import(name)
        if name not in self.classes:
            raise KeyError(f"unknown {self.kind} type {name!r}; available: {self.available()}")
        return self.classes[name](**config)

    def available(self) -> list[str]:
        """Every registered name, every module of the package that is not a helper, every extra module."""
        path = importlib.import_module(self.package).__path__
        found = {m.name for m in pkgutil.iter_modules(path) if not m.ispkg} - set(self.helpers)
        return sorted(set(self.classes) | found | set(self.modules))
