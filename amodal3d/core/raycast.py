"""Ray casting of meshes through a camera's pixel centres (trimesh, Embree when installed): exact silhouettes and
planar depth maps that agree with Blender's renders of the same camera pixel for pixel."""

from __future__ import annotations

import numpy as np

from amodal3d.core.cameras import Camera


def pixel_rays(camera: Camera, pixels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World ray origins (N, 3), directions (N, 3) with unit camera-z component, and the (N, 2) (row, col) pixels.

    ``pixels`` (H, W) bool selects pixels; all by default. Since each direction's camera-z is 1, a hit at ray
    parameter t lies at planar depth t.
    """
    if pixels is None:
        pixels = np.ones((camera.height, camera.width), bool)
    rows, cols = np.nonzero(pixels)
    pix = np.stack([cols + 0.5, rows + 0.5, np.ones(len(rows))], axis=1)
    dirs = (pix @ np.linalg.inv(camera.K).T) @ camera.c2w[:3, :3].T
    origins = np.broadcast_to(camera.center, dirs.shape)
    return np.ascontiguousarray(origins), dirs, np.stack([rows, cols], axis=1)


def silhouette(camera: Camera, mesh, pixels: np.ndarray | None = None, offset: np.ndarray | None = None) -> np.ndarray:
    """(H, W) bool: pixels (among ``pixels``) whose centre ray hits ``mesh`` translated by ``offset``."""
    origins, dirs, rc = pixel_rays(camera, pixels)
    if offset is not None:
        origins = origins - np.asarray(offset, float)  # move the rays instead of rebuilding the mesh's BVH
    out = np.zeros((camera.height, camera.width), bool)
    if len(dirs):
        hit = mesh.ray.intersects_any(origins, dirs)
        out[rc[hit, 0], rc[hit, 1]] = True
    return out


def depth_map(camera: Camera, mesh) -> np.ndarray:
    """(H, W) float32 planar depth of the nearest surface, 0 where no surface is hit."""
    origins, dirs, rc = pixel_rays(camera)
    depth = np.zeros((camera.height, camera.width), np.float32)
    locations, ray_index, _ = mesh.ray.intersects_location(origins, dirs, multiple_hits=False)
    if len(ray_index):
        t = np.einsum("ij,ij->i", locations - origins[ray_index], dirs[ray_index]) / np.einsum(
            "ij,ij->i", dirs[ray_index], dirs[ray_index]
        )
        depth[rc[ray_index, 0], rc[ray_index, 1]] = t
    return depth
