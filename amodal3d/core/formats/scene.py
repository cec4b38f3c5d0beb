"""The scene folder format (DESIGN.md), version 1: its file names, a writer and a reader.

Depth maps are float32 planar depth in scene units (the target spans a unit bounding box), **0 for background**.
Cameras are K (3, 3) pixels and camera-to-world (4, 4) in OpenCV axes (see ``amodal3d.core.cameras``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from amodal3d.core.cameras import Camera
from amodal3d.core.errors import UserError
from amodal3d.core.io import read_mask

FORMAT_VERSION = 1
SCENE_JSON = "scene.json"
INPUT = "input.png"
MODAL_MASK = "modal_mask.png"
AMODAL_MASK = "amodal_mask.png"
OCCLUDER_MASK = "occluder_mask.png"
DEPTH = "depth.npy"
WHOLE = "whole.png"
VIEWS = "views"
GT_MESH = "gt_mesh.ply"
DEPTH_BACKGROUND = 0.0


def view_name(i: int) -> str:
    return f"{VIEWS}/{i:03d}.png"


def view_depth_name(i: int) -> str:
    return f"{VIEWS}/{i:03d}_depth.npy"


def is_complete(folder: Path) -> bool:
    """A scene folder counts as done only when its scene.json (written last, atomically) is there."""
    return (Path(folder) / SCENE_JSON).is_file()


@dataclass
class Scene:
    """Read access to a scene folder."""

    folder: Path

    @classmethod
    def open(cls, folder: Path | str) -> "Scene":
        folder = Path(folder)
        if not is_complete(folder):
            raise UserError(f"{folder}: not a scene folder (no {SCENE_JSON})")
        return cls(folder)

    @cached_property
    def meta(self) -> dict:
        return json.loads((self.folder / SCENE_JSON).read_text())

    @property
    def input_camera(self) -> Camera:
        return Camera.from_dict(self.meta["input_camera"])

    @property
    def ring_cameras(self) -> list[Camera]:
        return [Camera.from_dict(c) for c in self.meta["ring_cameras"]]

    def image(self, name: str) -> np.ndarray:
        """An image of the folder as float (H, W, C) in [0, 1]."""
        from PIL import Image

        with Image.open(self.folder / name) as img:
            return np.asarray(img, np.float32) / 255.0

    def mask(self, name: str) -> np.ndarray:
        return read_mask(self.folder / name)

    def depth(self, name: str = DEPTH) -> np.ndarray:
        return np.load(self.folder / name)

    @cached_property
    def has_ring_views(self) -> bool:
        return all((self.folder / name(i)).is_file() for i in range(len(self.meta["ring_cameras"]))
                   for name in (view_name, view_depth_name))

    def _require_ring_views(self) -> None:
        if not self.has_ring_views:
            raise UserError(f"{self.folder}: no ring views (rendered with --no-ring-views); the 3D scores and view "
                            "metrics need them")

    def ring_depth(self, i: int) -> np.ndarray:
        self._require_ring_views()
        return self.depth(view_depth_name(i))

    def ring_view(self, i: int) -> np.ndarray:
        self._require_ring_views()
        return self.image(view_name(i))

    def gt_mesh(self):
        import trimesh

        return trimesh.load(self.folder / GT_MESH, force="mesh", process=False)
