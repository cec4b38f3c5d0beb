"""Typed configs to and from JSON. Every command's config (a dataclass whose field docstrings are its ``--help``) is
saved as ``config.json`` beside its output, and ``amodal3d COMMAND --config FILE`` reruns it (flags given on the
command line override the file)."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path

from amodal3d.core.errors import UserError

CONFIG_JSON = "config.json"
CONFIG_VERSION = 1


def _unprefixed():
    import tyro

    return tyro.conf.arg(prefix_name=False)


OWN_FLAGS = _unprefixed()
"""Annotate a nested config field with this so its flags go without the parents' names (--samples,
--pix2gestalt.steps, not --completion-config.backends.pix2gestalt.steps). tyro's OmitArgPrefixes would strip the
backend names too, and two backends' --steps would collide."""



def _append():
    import tyro

    return tyro.conf.UseAppendAction


REPEATABLE = _append()
"""Annotate a list field with this so its flag is given once per item (--point 1 2 --point 3 4)."""


class BackendOptions:
    """Base of a stage's dataclass holding one field per built-in backend (named as the backend, - as _), each
    that backend's config."""

    def of(self, name: str):
        """The options of backend ``name`` (None for a plugin's)."""
        return getattr(self, name.replace("-", "_"), None)


def to_dict(config) -> dict:
    """A config dataclass -> plain JSON data (paths as strings, tuples as lists, nested configs as objects)."""
    return _plain(config)


def _plain(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def from_dict(cls, data: dict, where: str = "config"):
    """Plain JSON data -> an instance of the config dataclass ``cls``; missing fields keep their defaults, unknown
    ones are a UserError naming them."""
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected an object for {cls.__name__}, got {type(data).__name__}")
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise UserError(f"{where}: unknown field(s) {', '.join(unknown)} for {cls.__name__}; known: "
                        f"{', '.join(fields)}")
    values = {name: _typed(hints[name], value, f"{where}.{name}") for name, value in data.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{where}: {exc}") from None


def _typed(hint, value, where: str):
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        return _typed(typing.get_args(hint)[0], value, where)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        for option in options:
            try:
                return _typed(option, value, where)
            except (UserError, TypeError, ValueError):
                continue
        raise UserError(f"{where}: {value!r} fits none of {hint}")
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    if hint is Path:
        return Path(value)
    if origin in (tuple, list):
        args = typing.get_args(hint)
        if origin is tuple and args and args[-1] is not Ellipsis:
            return tuple(_typed(a, v, where) for a, v in zip(args, value))
        item = args[0] if args else typing.Any
        converted = [_typed(item, v, where) for v in value]
        return tuple(converted) if origin is tuple else converted
    if hint is float and isinstance(value, int):
        return float(value)
    return value


def config_record(command: str, config) -> dict:
    """What config.json holds: the command and its full config."""
    return {"amodal3d": command, "version": CONFIG_VERSION, "config": to_dict(config)}


def save_config(folder: Path, command: str, config) -> Path:
    """``folder/config.json`` (written atomically)."""
    from amodal3d.core.io import write_json

    path = Path(folder) / CONFIG_JSON
    write_json(path, config_record(command, config))
    return path


def load_config(path: Path, command: str, cls):
    """The config a ``config.json`` holds, as ``cls``; UserError if it is another command's or unreadable."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / CONFIG_JSON
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"--config {path}: cannot read it ({exc})") from None
    if not isinstance(data, dict) or "config" not in data:
        raise UserError(f"--config {path}: not a config.json written by amodal3d")
    if data.get("amodal3d") != command:
        raise UserError(f"--config {path} is the config of `amodal3d {data.get('amodal3d')}`, not of `{command}`")
    return from_dict(cls, data["config"], f"--config {path.name}")
