"""``inflate``: silhouette inflation, a closed, textured mesh from one whole-object view, no weights (the ``prior``
backend's fallback, and the CPU default before it).

The silhouette is inflated into a volume about the plane through the origin facing the camera: a pixel at distance
d from the silhouette's edge (largest distance R) gets half-thickness sqrt(d (2R - d)) in pixels, converted to scene
units at the origin's depth, so a disc becomes a sphere and a bar a cylinder. Voxels that project into the mask
within that thickness are occupied; marching cubes gives the surface; the input image is the texture, projected
from the input camera (the back takes the front's colours).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from amodal3d.core.io import to_uint8
from recon.base import ReconInput, ReconResult, register_reconstructor
from recon.volume import GRID_BOUND, grid_centres, project_to_pixels, surface_from_occupancy


def inflated_occupancy(mask: np.ndarray, camera, resolution: int, thickness: float = 1.0) -> np.ndarray:
    distance = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    R = max(float(distance.max()), 1.0)
    half_px = np.sqrt(np.clip(distance * (2 * R - distance), 0, None)) * thickness
    centre_depth = float(camera.w2c[2, 3])  # camera-space z of the world origin
    half_world = half_px * centre_depth / camera.K[0, 0]
    points = grid_centres(resolution)
    row, col, z, inside = project_to_pixels(camera, points)
    occupied = inside & mask[row, col] & (np.abs(z - centre_depth) <= half_world[row, col])
    return occupied.reshape((resolution,) * 3)


def extend_colours(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``rgb`` with every pixel outside ``mask`` taking the colour of the nearest object pixel, so surface points
    that project just past the silhouette never read the background."""
    _, (ri, ci) = ndimage.distance_transform_edt(~mask, return_indices=True)
    return rgb[ri, ci]


def project_texture(mesh, rgb: np.ndarray, mask: np.ndarray, camera):
    """Texture the mesh with the image itself: UVs are the vertices' projections. Colours are pushed outward past
    the silhouette so edge texels never show the background."""
    import trimesh
    from PIL import Image

    img8 = to_uint8(extend_colours(rgb, mask))
    uv, _ = camera.project(np.asarray(mesh.vertices))
    uv = np.stack([uv[:, 0] / camera.width, 1.0 - uv[:, 1] / camera.height], axis=1)
    material = trimesh.visual.material.PBRMaterial(baseColorTexture=Image.fromarray(img8), metallicFactor=0.0,
                                                   roughnessFactor=0.8)
    mesh.visual = trimesh.visual.TextureVisuals(uv=np.clip(uv, 0, 1), material=material)
    return mesh


@dataclass
class InflateConfig:
    """inflate: the silhouette inflated into a volume, textured from the view (CPU, single view)."""

    resolution: int = 128
    """Voxel grid resolution over the object's box."""
    thickness: float = 1.0
    """Depth of the inflated volume relative to the silhouette's width."""


@register_reconstructor("inflate")
class InflateReconstructor:
    """Silhouette inflation (see the module docstring). ``resolution``: voxels per side of the [-0.75, 0.75]^3 grid."""

    config_class = InflateConfig

    def __init__(self, config: InflateConfig | None = None):
        config = config or InflateConfig()
        self.resolution = int(config.resolution)
        self.thickness = float(config.thickness)

    def reconstruct(self, inputs: ReconInput, seed: int = 0) -> ReconResult:
        start = time.perf_counter()
        view = inputs.view
        occupancy = inflated_occupancy(view.mask, view.camera, self.resolution, self.thickness)
        mesh = surface_from_occupancy(occupancy, GRID_BOUND)
        mesh = project_texture(mesh, view.rgba[..., :3], view.mask, view.camera)
        return ReconResult(mesh, info={"method": "inflate", "resolution": self.resolution,
                                       "seconds": time.perf_counter() - start})
