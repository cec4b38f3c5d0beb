"""Amodal completion: one Completer protocol, backends by name, one front end (``complete``)."""

from amodal3d.completion.base import (
    CanvasInput,
    Completer,
    WholeSample,
    available_completers,
    get_completer,
    register_completer,
)
from amodal3d.completion.config import DEFAULT_METHOD, CompletionBackends, CompletionConfig
from amodal3d.completion.frontend import CompletionResult, complete
from amodal3d.core.formats.completion import read_completion, write_completion
from amodal3d.segmenters import SegmenterConfig

__all__ = [
    "CanvasInput", "Completer", "WholeSample", "available_completers", "get_completer", "register_completer",
    "complete", "CompletionResult", "CompletionConfig", "CompletionBackends", "SegmenterConfig", "DEFAULT_METHOD",
    "write_completion", "read_completion",
]
