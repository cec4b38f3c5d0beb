"""Backends by name: a registry that rejects duplicates, lists known names on a miss, and loads third-party
backends from an entry-point group (as nerfstudio's method plugins)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from importlib import import_module
from importlib.metadata import entry_points

from amodal3d.core.errors import UserError


class Registry:
    def __init__(self, kind: str, entry_point_group: str, builtin_modules: tuple[str, ...]):
        self.kind = kind
        self.group = entry_point_group
        self.builtin_modules = builtin_modules
        self._items: dict[str, Callable] = {}
        self._loaded = False

    def register(self, name: str):
        """Class decorator adding a backend under ``name``; a second backend with the same name is an error."""

        def add(cls):
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' is already registered ({self._items[name]!r})")
            cls.name = name
            self._items[name] = cls
            return cls

        return add

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for module in self.builtin_modules:
            import_module(module)  # registers itself
        for ep in entry_points(group=self.group):
            if ep.name not in self._items:
                self.register(ep.name)(ep.load())

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def create(self, name: str, **options):
        """An instance of backend ``name``; unknown names are a UserError listing the known ones."""
        known = self.names()
        if name not in self._items:
            raise UserError(f"unknown {self.kind} '{name}'; known: {', '.join(known)}")
        cls = self._items[name]
        try:
            inspect.signature(cls).bind(**options)
        except TypeError:
            accepted = [p for p in inspect.signature(cls).parameters if p not in ("self", "args", "kwargs")]
            unknown = sorted(set(options) - set(accepted))
            raise UserError(f"{self.kind} '{name}' takes no option {', '.join(unknown) or '(given twice)'}; "
                            f"it takes: {', '.join(accepted) or 'none'}") from None
        return cls(**options)
