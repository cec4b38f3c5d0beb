"""Backends by name: a registry that rejects duplicates, lists known names on a miss, and loads third-party
backends from an entry-point group (as nerfstudio's method plugins)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from importlib import import_module
from importlib.metadata import entry_points

from amodal3d.core.errors import UserError


class Registry:
    """Backends of one kind by name. A backend is a class whose constructor takes one config, an instance of its
    ``config_class`` (a documented dataclass; the CLI shows its fields as ``--NAME.FIELD`` flags), or nothing when
    it has no options."""

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

    def backend(self, name: str):
        """The backend class ``name``; unknown names are a UserError listing the known ones."""
        known = self.names()
        if name not in self._items:
            raise UserError(f"unknown {self.kind} '{name}'; known: {', '.join(known)}")
        return self._items[name]

    def config_class(self, name: str) -> type:
        return getattr(self.backend(name), "config_class", _NoOptions)

    def make_config(self, name: str, config=None, **options):
        """``config`` (or the backend's defaults) with ``options`` set; an unknown option is a UserError listing
        the ones the backend takes."""
        cls = self.config_class(name)
        config = cls() if config is None else config
        accepted = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise UserError(f"{self.kind} '{name}' takes no option {', '.join(unknown)}; it takes: "
                            f"{', '.join(accepted) or 'none'}")
        return dataclasses.replace(config, **options) if options else config

    def create(self, name: str, config=None, **options):
        """An instance of backend ``name`` built from ``config`` (default: its defaults) with ``options`` set. A
        backend without a ``config_class`` is built with no arguments."""
        cls = self.backend(name)
        config = self.make_config(name, config, **options)
        return cls(config) if hasattr(cls, "config_class") else cls()


@dataclasses.dataclass
class _NoOptions:
    """This backend takes no options."""
