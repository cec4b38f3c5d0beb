"""Complete scene folders without Blender: coloured analytic meshes ray cast through the scene format's cameras.
Fast (a fraction of a second per scene) and exact, for tests of everything downstream of the renderer."""

from __future__ import annotations

import numpy as np
import trimesh

from amodal3d.core.cameras import orbit_camera, syncdreamer_intrinsics, syncdreamer_ring
from amodal3d.core.formats import scene as fmt
from amodal3d.core.io import write_json, write_png
from amodal3d.core.render import render_mesh


def coloured(mesh: trimesh.Trimesh, rgb) -> trimesh.Trimesh:
    mesh = mesh.copy()
    mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=np.tile([*rgb, 255], (len(mesh.vertices), 1)))
    return mesh


def make_occluded_scene(folder, target: trimesh.Trimesh, occluder: trimesh.Trimesh, res: int = 128,
                        name: str = "sphere", category: str = "ball"):
    """A scene folder of DESIGN.md: ``target`` at the origin seen from azimuth 0, elevation 15, ``occluder``
    wherever it was placed (in front of it to hide part of it)."""
    from pathlib import Path

    folder = Path(folder)
    (folder / fmt.VIEWS).mkdir(parents=True)
    camera = orbit_camera(0.0, 15.0, 1.5, syncdreamer_intrinsics(res), res, res)
    alone = render_mesh(target, camera)
    occ = render_mesh(occluder, camera)
    amodal = alone.depth > 0
    occluder_mask = (occ.depth > 0) & (~amodal | (occ.depth < alone.depth))
    modal = amodal & ~occluder_mask
    image = np.ones((res, res, 3), np.float32)
    image[modal] = alone.rgba[modal, :3]
    image[occluder_mask] = occ.rgba[occluder_mask, :3]
    depth = np.where(occluder_mask, occ.depth, alone.depth).astype(np.float32)
    ring = syncdreamer_ring(0.0, res)
    for i, cam in enumerate(ring):
        view = render_mesh(target, cam)
        write_png(folder / fmt.view_name(i), view.rgba)
        np.save(folder / fmt.view_depth_name(i), view.depth)
    write_png(folder / fmt.INPUT, image)
    write_png(folder / fmt.MODAL_MASK, modal)
    write_png(folder / fmt.AMODAL_MASK, amodal)
    write_png(folder / fmt.OCCLUDER_MASK, occluder_mask)
    write_png(folder / fmt.WHOLE, alone.rgba)
    np.save(folder / fmt.DEPTH, depth)
    target.export(folder / fmt.GT_MESH)
    occlusion = 1.0 - modal.sum() / max(amodal.sum(), 1)
    write_json(folder / fmt.SCENE_JSON, {
        "version": fmt.FORMAT_VERSION, "seed": 0, "occlusion_ratio": float(occlusion),
        "target": {"name": name, "category": category},
        "input_camera": {**camera.to_dict(), "elevation_deg": 15.0, "azimuth_deg": 0.0, "radius": 1.5},
        "ring_cameras": [c.to_dict() for c in ring]})
    return folder


def make_scene_set(root, count: int, res: int = 96) -> list:
    """``count`` scenes: a red sphere or box hidden by a blue slab slid sideways by a varying amount."""
    folders = []
    for i in range(count):
        target = trimesh.creation.icosphere(3, radius=0.4) if i % 2 == 0 else trimesh.creation.box((0.7, 0.5, 0.6))
        slab = trimesh.creation.box((0.15, 0.9, 0.9))
        slab.apply_translation((0.7, -0.45 - 0.07 * (i % 4), 0.0))
        folders.append(make_occluded_scene(root / f"scene_{i:04d}", coloured(target, (200, 40, 40)),
                                           coloured(slab, (40, 60, 200)), res,
                                           name="sphere" if i % 2 == 0 else "box",
                                           category="ball" if i % 2 == 0 else "box"))
    return folders
