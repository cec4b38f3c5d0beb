"""Amodal completion: one Completer protocol, backends by name, one front end (``complete``)."""

from amodal3d.completion.base import (
    CanvasInput,
    Completer,
    WholeSample,
    available_completers,
    get_completer,
    register_completer,
)
from amodal3d.completion.frontend import DEFAULT_METHOD, CompletionResult, complete
from amodal3d.core.formats.completion import read_completion, write_completion

__all__ = [
    "CanvasInput", "Completer", "WholeSample", "available_completers", "get_completer", "register_completer",
    "complete", "CompletionResult", "DEFAULT_METHOD", "write_completion", "read_completion",
]
