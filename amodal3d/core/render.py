"""Colour renders of a reconstructed mesh by ray casting (no GPU, no Blender): the views that PSNR/SSIM/LPIPS score
for methods that output only a mesh, and the preview images of ``amodal3d run``. One cast per camera gives the
colour and the planar depth together, so a benchmark scores Chamfer distance and views from the same hits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from amodal3d.core.cameras import Camera
from amodal3d.core.raycast import pixel_rays


@dataclass
class MeshRender:
    """``rgba`` (H, W, 4) float32 in [0, 1] (transparent background); ``depth`` (H, W) planar, 0 = background."""

    rgba: np.ndarray
    depth: np.ndarray


def surface_colours(mesh, triangles: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, 3) colours in [0, 1] of ``points`` lying on ``mesh``'s faces ``triangles``: texture looked up through
    interpolated UVs, else interpolated vertex colours, else face colours, else mid grey."""
    import trimesh

    visual = mesh.visual
    if len(triangles) == 0:
        return np.zeros((0, 3), np.float32)
    faces = mesh.faces[triangles]
    bary = trimesh.triangles.points_to_barycentric(mesh.vertices[faces], points)
    if isinstance(visual, trimesh.visual.TextureVisuals) and visual.uv is not None:
        image = _texture_image(visual.material)
        if image is not None:
            uv = np.einsum("ni,nij->nj", bary, np.asarray(visual.uv)[faces])
            h, w = image.shape[:2]
            col = np.clip(np.rint(uv[:, 0] * (w - 1)), 0, w - 1).astype(int)
            row = np.clip(np.rint((1.0 - uv[:, 1]) * (h - 1)), 0, h - 1).astype(int)
            return image[row, col, :3]
        visual = visual.to_color()
    if visual.kind == "vertex":
        colours = np.asarray(visual.vertex_colors, np.float32)[:, :3] / 255.0
        return np.einsum("ni,nij->nj", bary, colours[faces]).astype(np.float32)
    if visual.kind == "face":
        return np.asarray(visual.face_colors, np.float32)[triangles, :3] / 255.0
    return np.full((len(triangles), 3), 0.5, np.float32)


def _texture_image(material) -> np.ndarray | None:
    image = getattr(material, "baseColorTexture", None) or getattr(material, "image", None)
    if image is None:
        return None
    return np.asarray(image.convert("RGBA"), np.float32) / 255.0


def _footprint(mesh, camera: Camera) -> np.ndarray | None:
    """(H, W) bool: the pixels inside the projection of the mesh's bounding box (all of them when the box reaches
    behind the camera), None when it is off the image. Only these rays can hit."""
    corners = np.array([[x, y, z] for x in mesh.bounds[:, 0] for y in mesh.bounds[:, 1] for z in mesh.bounds[:, 2]])
    uv, z = camera.project(corners)
    out = np.zeros((camera.height, camera.width), bool)
    if (z <= 1e-6).any():
        out[:] = True
        return out
    c0, r0 = np.floor(uv.min(axis=0)).astype(int) - 1
    c1, r1 = np.ceil(uv.max(axis=0)).astype(int) + 1
    c0, r0, c1, r1 = max(c0, 0), max(r0, 0), min(c1, camera.width), min(r1, camera.height)
    if c0 >= c1 or r0 >= r1:
        return None
    out[r0:r1, c0:c1] = True
    return out


def render_mesh(mesh, camera: Camera, shading: float = 0.0) -> MeshRender:
    """Render ``mesh`` from ``camera`` at pixel centres. ``shading`` in [0, 1] mixes in a headlight Lambert term
    (0 = unlit albedo, the colours as the mesh stores them; previews use about 0.5)."""
    h, w = camera.height, camera.width
    rgba = np.zeros((h, w, 4), np.float32)
    depth = np.zeros((h, w), np.float32)
    window = _footprint(mesh, camera)
    if window is None:
        return MeshRender(rgba, depth)
    origins, dirs, rc = pixel_rays(camera, window)
    locations, ray_index, triangles = mesh.ray.intersects_location(origins, dirs, multiple_hits=False)
    if len(ray_index) == 0:
        return MeshRender(rgba, depth)
    d = dirs[ray_index]
    t = np.einsum("ij,ij->i", locations - origins[ray_index], d) / np.einsum("ij,ij->i", d, d)
    colours = surface_colours(mesh, triangles, locations)
    if shading > 0:
        normals = mesh.face_normals[triangles]
        cosine = np.abs(np.einsum("ij,ij->i", normals, d / np.linalg.norm(d, axis=1, keepdims=True)))
        colours = colours * ((1.0 - shading) + shading * cosine)[:, None]
    rows, cols = rc[ray_index, 0], rc[ray_index, 1]
    depth[rows, cols] = t
    rgba[rows, cols, :3] = np.clip(colours, 0.0, 1.0)
    rgba[rows, cols, 3] = 1.0
    return MeshRender(rgba, depth)
