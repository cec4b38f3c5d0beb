"""Heavy packages are optional: the core install (``pip install amodal3d``) runs the CPU path (classical completion,
inflate reconstruction, the metrics without LPIPS). Every optional import goes through :func:`require`, which says in
one line which extra to install."""

from __future__ import annotations

import importlib
import importlib.util

from amodal3d.core.errors import UserError

EXTRAS = {
    "torch": "diffusion", "torchvision": "diffusion", "diffusers": "diffusion", "transformers": "diffusion",
    "accelerate": "diffusion", "safetensors": "diffusion", "lpips": "diffusion", "huggingface_hub": "diffusion",
    "bpy": "render", "OpenEXR": "render",
    "segment_anything": "sam",
    "nerfstudio": "nerfstudio",
    "ray": "ray",
    "gradio": "app",
    "mesh2sdf": "eval",
}
"""Module -> the extra that installs it (pyproject.toml's optional-dependencies)."""


def require(module: str, purpose: str | None = None):
    """Import and return ``module``; a UserError naming the extra to install when it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise UserError(missing_message(module, purpose, exc)) from None


def missing_message(module: str, purpose: str | None = None, exc: ImportError | None = None) -> str:
    top = module.split(".")[0]
    extra = EXTRAS.get(top)
    install = f"pip install 'amodal3d[{extra}]'" if extra else f"pip install {top}"
    detail = f" ({exc})" if exc is not None and getattr(exc, "name", top) not in (None, top, module) else ""
    return f"{purpose or top} needs the optional package '{top}'{detail}: {install}"


def networks_available() -> bool:
    """True when our bundled networks (clicknet, amodalnet) can run: torch and safetensors are installed."""
    return available("torch") and available("safetensors")


def available(module: str) -> bool:
    """True when ``module`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
