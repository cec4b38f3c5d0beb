"""The Reconstructor protocol and its registry. A backend gets one whole-object view (and, when available, multi-view
renders) in the benchmark frame and returns a mesh in that frame."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Protocol

import numpy as np

from amodal3d.core.cameras import Camera
from amodal3d.core.registry import Registry

ENTRY_POINT_GROUP = "amodal3d.reconstructors"


@dataclass
class View:
    """``rgba`` (H, W, 4) float in [0, 1] (object on transparent), seen by ``camera``."""

    rgba: np.ndarray
    camera: Camera

    @property
    def mask(self) -> np.ndarray:
        return self.rgba[..., 3] >= 0.5


@dataclass
class ReconInput:
    """The completed object's view from the input camera (object centred at the origin, about a unit box), the
    input elevation, and optional extra views (e.g. the 16 SyncDreamer ring views)."""

    view: View
    elevation_deg: float
    ring: list[View] = field(default_factory=list)
    elevation_known: bool = True
    """False when nobody gave the elevation (a photo without --elevation): a backend may estimate it."""


@dataclass
class ReconResult:
    """``mesh``: trimesh.Trimesh in the benchmark frame (textured or vertex-coloured). ``views``: generated
    multi-view images, if the backend made any."""

    mesh: object
    views: list[View] = field(default_factory=list)
    info: dict = field(default_factory=dict)


class Reconstructor(Protocol):
    name: ClassVar[str]

    def reconstruct(self, inputs: ReconInput, seed: int = 0) -> ReconResult: ...


RECONSTRUCTORS = Registry("reconstruction method", ENTRY_POINT_GROUP,
                          ("recon.priors", "recon.inflate", "recon.visual_hull", "recon.neus", "recon.syncdreamer", "recon.sds"))
register_reconstructor = RECONSTRUCTORS.register
available_reconstructors = RECONSTRUCTORS.names


def get_reconstructor(name: str, config=None, **options) -> Reconstructor:
    """An instance of backend ``name`` from ``config`` (its config class; default: the defaults) with ``options``."""
    return RECONSTRUCTORS.create(name, config, **options)
