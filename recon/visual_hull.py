"""``visual_hull``: silhouette carving from multi-view masks (the 16 ring views), the fast multi-view baseline.
A voxel is kept when it projects inside the object in every view; vertex colours come from the view that faces
each vertex best."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from amodal3d.core.errors import UserError
from amodal3d.core.io import to_uint8
from recon.base import ReconInput, ReconResult, View, register_reconstructor
from recon.volume import GRID_BOUND, grid_centres, project_to_pixels, surface_from_occupancy


def carve(views: list[View], resolution: int, tolerance: int = 0) -> np.ndarray:
    """Occupancy (R, R, R): voxels inside the mask in all but ``tolerance`` of the views that see them, and seen by at
    least half of the views (a voxel outside one image is not cut by it, so a partly framed object survives)."""
    points = grid_centres(resolution)
    misses = np.zeros(len(points), np.int32)
    seen = np.zeros(len(points), np.int32)
    for view in views:
        row, col, _, inside = project_to_pixels(view.camera, points)
        misses += (inside & ~view.mask[row, col]).astype(np.int32)
        seen += inside
    return ((misses <= tolerance) & (2 * seen >= len(views))).reshape((resolution,) * 3)


def colour_vertices(mesh, views: list[View]) -> None:
    normals = np.asarray(mesh.vertex_normals)
    verts = np.asarray(mesh.vertices)
    best = np.full(len(verts), -np.inf)
    colours = np.full((len(verts), 4), 255, np.uint8)
    for view in views:
        towards = view.camera.center[None] - verts
        towards /= np.linalg.norm(towards, axis=1, keepdims=True)
        facing = np.einsum("ij,ij->i", normals, towards)
        row, col, _, inside = project_to_pixels(view.camera, verts)
        better = inside & (facing > best)
        rgb = to_uint8(view.rgba[row, col, :3])
        colours[better, :3] = rgb[better]
        best[better] = facing[better]
    mesh.visual.vertex_colors = colours


@dataclass
class VisualHullConfig:
    """visual_hull: space carving from several views (the scene's 16 ring views with --ring, or generated ones)."""

    resolution: int = 128
    """Voxel grid resolution over the object's box."""
    tolerance: int = 0
    """Views that may disagree with a voxel before it is carved away."""


@register_reconstructor("visual_hull")
class VisualHullReconstructor:
    """Needs multi-view inputs (``ReconInput.ring``), e.g. the GT ring of a rendered scene or generated views."""

    config_class = VisualHullConfig

    def __init__(self, config: VisualHullConfig | None = None):
        config = config or VisualHullConfig()
        self.resolution = int(config.resolution)
        self.tolerance = int(config.tolerance)

    def reconstruct(self, inputs: ReconInput, seed: int = 0) -> ReconResult:
        if len(inputs.ring) < 2:
            raise UserError("visual_hull needs multi-view inputs (e.g. --ring with a scene's 16 views)")
        start = time.perf_counter()
        mesh = surface_from_occupancy(carve(inputs.ring, self.resolution, self.tolerance), GRID_BOUND)
        colour_vertices(mesh, inputs.ring)
        return ReconResult(mesh, info={"method": "visual_hull", "views": len(inputs.ring),
                                       "resolution": self.resolution, "seconds": time.perf_counter() - start})
