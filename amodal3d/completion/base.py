"""The Completer protocol every completion backend implements, and the registry that finds backends by name.

A backend sees only the square canvas (``amodal3d.core.framing``): the occluded image, the visible mask and which canvas
pixels are real image (not padding). It returns K whole-object samples on white, with an alpha channel when it has
one. Framing, mask extraction, the vote and the way back to input coordinates are the front end's job.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

import numpy as np

from amodal3d.core.registry import Registry

ENTRY_POINT_GROUP = "amodal3d.completers"


@dataclass
class CanvasInput:
    """``image`` (S, S, 3) float in [0, 1]; ``modal`` (S, S) bool visible mask; ``valid`` (S, S) bool, False where the
    canvas is padding outside the input image (the image border hides the object there too); ``occluder`` (S, S)
    bool, the pixels of the objects in front, when the caller knows them (else None); ``occluder_estimated``: it
    was estimated from the photo, not given by the user; ``clicks``: how many object clicks ``modal`` is a
    segmenter's answer to (0: a given mask or a box's answer)."""

    image: np.ndarray
    modal: np.ndarray
    valid: np.ndarray
    occluder: np.ndarray | None = None
    occluder_estimated: bool = False
    clicks: int = 0

    @property
    def answers_clicks(self) -> bool:
        """``modal`` is a segmenter's answer to clicks alone: it can miss a piece of the object or take in a
        neighbour."""
        return self.clicks > 0


@dataclass
class WholeSample:
    """One completion on the canvas: ``rgb`` (S, S, 3) in [0, 1] with the whole object on white; ``alpha`` (S, S) in
    [0, 1] when the backend knows the object's extent itself, else None (the mask comes from the white threshold)."""

    rgb: np.ndarray
    alpha: np.ndarray | None = None
    info: dict = field(default_factory=dict)  # backend-specific facts about this sample (JSON-serialisable)


class Completer(Protocol):
    name: ClassVar[str]
    resolution: int
    # optional: ``estimated_context``, the canvas margin the backend wants around a segmenter's answer to clicks
    # (absent or None: the stage's ``context``); see ``frontend.framing_context``

    def complete(self, inputs: CanvasInput, samples: int, seed: int) -> list[WholeSample]:
        """K whole-object samples for one occluded object; the same seed gives the same samples."""
        ...


COMPLETERS = Registry("completion method", ENTRY_POINT_GROUP, (
    "amodal3d.completion.classical", "amodal3d.completion.pix2gestalt", "amodal3d.completion.inpaint",
    "amodal3d.completion.progressive", "amodal3d.completion.gestalt_tiny", "amodal3d.completion.amodalnet"))
register_completer = COMPLETERS.register
available_completers = COMPLETERS.names


def get_completer(name: str, config=None, **options) -> Completer:
    """An instance of the backend ``name`` built from ``config`` (its config class; default: the defaults) with
    ``options`` set; unknown names list the known ones."""
    return COMPLETERS.create(name, config, **options)


_LOADED: dict[tuple[str, str], Completer] = {}


def cached_completer(name: str, config=None) -> Completer:
    """One instance per (name, config) in this process, so that a learned backend loads its weights once for a
    whole benchmark run."""
    from amodal3d.core.config import to_dict

    config = COMPLETERS.make_config(name, config)
    key = (name, json.dumps(to_dict(config), sort_keys=True, default=str))
    if key not in _LOADED:
        _LOADED[key] = get_completer(name, config)
    return _LOADED[key]
