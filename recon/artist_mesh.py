"""Meshes an artist can use: decimated to a face budget (quadric simplification), UV-unwrapped (xatlas) and
textured with a baked atlas of a chosen size, whatever colours the surface should carry.

``colour_at(points, normals) -> (N, 3) float in [0, 1]`` says what colour the surface has at a point; the atlas
samples it once per texel, so the texture's detail does not depend on the mesh's resolution.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

from amodal3d.core.optional import require
from recon.volume import largest_part

ColourFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def decimate(mesh, faces: int):
    """``mesh`` simplified to about ``faces`` faces (quadric error, fast-simplification); unchanged when smaller."""
    import trimesh

    if faces <= 0 or len(mesh.faces) <= faces:
        return mesh
    fast_simplification = require("fast_simplification", "mesh decimation")
    vertices, triangles = fast_simplification.simplify(np.asarray(mesh.vertices, np.float32),
                                                       np.asarray(mesh.faces, np.int32),
                                                       target_reduction=1 - faces / len(mesh.faces))
    return largest_part(trimesh.Trimesh(vertices, triangles, process=True))


def texel_surface(uv: np.ndarray, faces: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rasterise the UV triangles into a ``size`` x ``size`` atlas: the covered texels' (row, col), the face each
    lies in and its barycentric coordinates (N, 3)."""
    import cv2

    corners = uv[faces] * size  # (F, 3, 2) in texel units, v up
    corners[..., 1] = size - corners[..., 1]
    face_id = np.zeros((size, size), np.int32)
    for index, triangle in enumerate(np.round(corners * 16).astype(np.int32)):
        cv2.fillConvexPoly(face_id, triangle, index + 1, lineType=cv2.LINE_8, shift=4)
    rows, cols = np.nonzero(face_id)
    which = face_id[rows, cols] - 1
    a, b, c = (corners[which, k] for k in range(3))
    p = np.stack([cols + 0.5, rows + 0.5], axis=1)
    v0, v1, v2 = b - a, c - a, p - a
    d00, d01, d11 = (v0 * v0).sum(1), (v0 * v1).sum(1), (v1 * v1).sum(1)
    d20, d21 = (v2 * v0).sum(1), (v2 * v1).sum(1)
    denominator = np.where(np.abs(d00 * d11 - d01 ** 2) < 1e-12, 1e-12, d00 * d11 - d01 ** 2)
    w1 = (d11 * d20 - d01 * d21) / denominator
    w2 = (d00 * d21 - d01 * d20) / denominator
    weights = np.clip(np.stack([1 - w1 - w2, w1, w2], axis=1), 0, 1)
    weights /= np.maximum(weights.sum(1, keepdims=True), 1e-12)
    return np.stack([rows, cols], axis=1), which, weights


def bake_atlas(mesh, colour_at: ColourFn, texture_size: int = 1024):
    """A copy of ``mesh`` with xatlas UVs and a ``texture_size`` square base-colour atlas sampled from ``colour_at``
    (texels outside every chart take the nearest chart's colour, so mip-mapping shows no seams)."""
    import trimesh
    from PIL import Image

    xatlas = require("xatlas", "UV unwrapping")
    vertices = np.asarray(mesh.vertices, np.float32)
    vmapping, indices, uv = xatlas.parametrize(vertices, np.asarray(mesh.faces, np.uint32))
    new_vertices = vertices[vmapping]
    normals = np.asarray(mesh.vertex_normals, np.float32)[vmapping]
    texels, face, weights = texel_surface(uv, indices.astype(np.int64), texture_size)
    corners = indices[face]
    points = np.einsum("nk,nkd->nd", weights, new_vertices[corners])
    texel_normals = np.einsum("nk,nkd->nd", weights, normals[corners])
    texel_normals /= np.maximum(np.linalg.norm(texel_normals, axis=1, keepdims=True), 1e-12)
    atlas = np.zeros((texture_size, texture_size, 3), np.float32)
    atlas[texels[:, 0], texels[:, 1]] = colour_at(points, texel_normals)
    empty = np.ones((texture_size, texture_size), bool)
    empty[texels[:, 0], texels[:, 1]] = False
    _, (ri, ci) = ndimage.distance_transform_edt(empty, return_indices=True)
    atlas = atlas[ri, ci]
    image = Image.fromarray((np.clip(atlas, 0, 1) * 255 + 0.5).astype(np.uint8))
    material = trimesh.visual.material.PBRMaterial(baseColorTexture=image, metallicFactor=0.0, roughnessFactor=0.8)
    visual = trimesh.visual.TextureVisuals(uv=uv, material=material)
    return trimesh.Trimesh(new_vertices, indices, visual=visual, process=False)


def artist_mesh(mesh, colour_at: ColourFn, faces: int = 20000, texture_size: int = 1024):
    """Decimate to ``faces``, unwrap and bake a ``texture_size`` atlas (see the module docstring)."""
    return bake_atlas(decimate(mesh, faces), colour_at, texture_size)
