"""Checkpoints are untrusted input: read them without running their pickles.

A PyTorch Lightning ``.ckpt`` is a pickle. ``torch.load(weights_only=True)`` rebuilds only tensors and plain
containers; a Lightning checkpoint also names a few classes (the ModelCheckpoint callback's class is a dict key in
older Lightning versions), which are mapped here onto an inert stand-in instead of being imported. Any other global
(``os.system``, a model class, ...) makes the load fail before anything runs.
"""

from __future__ import annotations

import re
import warnings
import zipfile
from pathlib import Path

import numpy as np

from amodal3d.core.errors import UserError
from amodal3d.core.optional import require


class InertStandIn:
    """Takes the place of a class a checkpoint names, without importing or running it."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state):
        self.state = state


# Names a Lightning / latent-diffusion training checkpoint carries outside its state dict.
LIGHTNING_NAMES = (
    "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint",
    "lightning.pytorch.callbacks.model_checkpoint.ModelCheckpoint",
    "pytorch_lightning.callbacks.lr_monitor.LearningRateMonitor",
    "main.SetupCallback",
    "main.ImageLogger",
    "main.CUDACallback",
)


def _allowed_globals() -> list:
    allowed = [(InertStandIn, name) for name in LIGHTNING_NAMES]
    allowed += [np.dtype, (np.core.multiarray.scalar, "numpy.core.multiarray.scalar")]
    allowed += [type(np.dtype(t)) for t in ("float16", "float32", "float64", "int32", "int64", "bool")]
    return allowed


def load_checkpoint(path: str | Path) -> dict:
    """The top-level dict of a ``.ckpt``/``.pt``/``.pth`` (or a ``.safetensors`` file), never unpickling code.

    Raises UserError for a missing or unreadable file and for a pickle that names anything outside the allowlist.
    """
    torch = require("torch", "loading a checkpoint")
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        return require("safetensors.torch", "loading a .safetensors file").load_file(str(path))
    mmap = zipfile.is_zipfile(path)  # the zip format can be memory-mapped: a 15 GB file is not read twice
    try:
        with torch.serialization.safe_globals(_allowed_globals()), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's advice to load with weights_only=False is not ours to give
            data = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:  # noqa: BLE001 - any failure to unpickle safely is a refusal
        raise UserError(f"refusing to load {path}: it is not a plain weights checkpoint "
                        f"({_first_line(exc)})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a dict of tensors, got {type(data).__name__}")
    return data


def state_dict_of(checkpoint: dict) -> dict:
    """The tensor dict inside a Lightning checkpoint (``state_dict``), or the checkpoint itself."""
    state = checkpoint.get("state_dict", checkpoint)
    if not isinstance(state, dict) or not state:
        raise UserError("checkpoint holds no state_dict")
    return state


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def verify_weights_folder(folder: str | Path) -> None:
    """Refuse a local weights folder (diffusers / transformers layout) holding a pickle-based weights file that is
    not plain tensors: every ``.bin`` / ``.pt`` / ``.pth`` / ``.ckpt`` / ``.pkl`` in it is opened by our loader
    first (memory-mapped, tensors not read), so the library's own loader never meets one that runs code."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        return
    for path in sorted(p for p in folder.rglob("*") if p.suffix in PICKLE_SUFFIXES and p.is_file()):
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in _VERIFIED:
            load_checkpoint(path)
            _VERIFIED.add(key)


_VERIFIED: set[tuple[str, int, int]] = set()  # files already opened safely in this process


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    unsupported = [line.strip() for line in text if "Unsupported global" in line or "GLOBAL" in line]
    line = (unsupported or text or [type(exc).__name__])[0]
    named = re.search(r"GLOBAL ([\w.]+)", line)
    return f"it names {named[1]}, which could run code" if named else line
