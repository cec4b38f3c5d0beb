"""The reconstruction folder (DESIGN.md): ``mesh.glb`` (textured where possible), ``mesh.obj``, ``mesh.ply``,
``recon.json``, and ``views/`` with nerfstudio's ``transforms.json`` and SDFStudio's ``meta_data.json`` when the
backend generated views; and the reader of posed views that the nerfstudio plugin uses."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from amodal3d.core.cameras import Camera, opencv_to_opengl
from amodal3d.core.config import CONFIG_JSON
from amodal3d.core.io import composite_on_white, write_json, write_png
from amodal3d.core.outputs import atomic_dir

RECON_JSON = "recon.json"


def write_meshes(mesh, folder: Path, stem: str = "mesh") -> dict[str, Path]:
    """``mesh.glb`` (texture or vertex colours kept), ``mesh.obj`` (+ material and texture), ``mesh.ply``."""
    folder = Path(folder)
    paths = {"glb": folder / f"{stem}.glb", "obj": folder / f"{stem}.obj", "ply": folder / f"{stem}.ply"}
    mesh.export(paths["glb"])
    mesh.export(paths["obj"])
    plain = mesh.copy()
    if hasattr(plain.visual, "to_color"):
        plain.visual = plain.visual.to_color()  # PLY has no textures: bake to vertex colours
    plain.export(paths["ply"])
    return paths


def is_closed(mesh) -> bool:
    """Watertight as a surface: vertices split only along UV seams are merged first (a texture atlas's seams do
    not open the surface)."""
    import trimesh

    plain = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    plain.merge_vertices()
    return bool(plain.is_watertight)


def nerfstudio_transforms(cameras: list[Camera], image_paths: list[str], mask_paths: list[str] | None = None,
                          depth_paths: list[str] | None = None) -> dict:
    """nerfstudio's transforms.json (camera_model OPENCV, c2w in OpenGL axes), one frame per camera."""
    if not cameras:
        raise ValueError("no cameras")
    K0 = cameras[0].K
    shared = all(np.allclose(c.K, K0) and (c.width, c.height) == (cameras[0].width, cameras[0].height)
                 for c in cameras)
    out: dict = {"camera_model": "OPENCV"}
    if shared:
        out.update(_intrinsics(cameras[0]))
    frames = []
    for i, cam in enumerate(cameras):
        frame = {"file_path": image_paths[i], "transform_matrix": opencv_to_opengl(cam.c2w).tolist()}
        if not shared:
            frame.update(_intrinsics(cam))
        if mask_paths:
            frame["mask_path"] = mask_paths[i]
        if depth_paths:
            frame["depth_file_path"] = depth_paths[i]
        frames.append(frame)
    out["frames"] = frames
    return out


def _intrinsics(cam: Camera) -> dict:
    return {"fl_x": float(cam.K[0, 0]), "fl_y": float(cam.K[1, 1]), "cx": float(cam.K[0, 2]),
            "cy": float(cam.K[1, 2]), "w": int(cam.width), "h": int(cam.height),
            "k1": 0.0, "k2": 0.0, "p1": 0.0, "p2": 0.0}


def cameras_from_transforms(data: dict) -> list[Camera]:
    """Inverse of :func:`nerfstudio_transforms`."""
    cams = []
    for frame in data["frames"]:
        src = {**data, **frame}
        K = np.array([[src["fl_x"], 0, src["cx"]], [0, src["fl_y"], src["cy"]], [0, 0, 1]], float)
        c2w = opencv_to_opengl(np.asarray(frame["transform_matrix"], float))
        cams.append(Camera(K, c2w, int(src["w"]), int(src["h"])))
    return cams


def sdfstudio_meta(cameras: list[Camera], image_paths: list[str], mask_paths: list[str] | None = None,
                   bound: float = 1.0) -> dict:
    """SDFStudio's meta_data.json (also read by nerfstudio's sdfstudio-data parser): per-frame 4x4 intrinsics and
    camtoworld in OpenCV axes (both parsers flip y and z themselves), foreground masks (3-channel PNGs, 255 =
    object), a scene box around the unit object."""
    frames = []
    for i, cam in enumerate(cameras):
        K4 = np.eye(4)
        K4[:3, :3] = cam.K
        frame = {"rgb_path": image_paths[i], "camtoworld": np.asarray(cam.c2w, float).tolist(),
                 "intrinsics": K4.tolist()}
        if mask_paths:
            frame["foreground_mask"] = mask_paths[i]
        frames.append(frame)
    return {
        "camera_model": "OPENCV",
        "height": int(cameras[0].height),
        "width": int(cameras[0].width),
        "has_mono_prior": False,
        "has_foreground_mask": bool(mask_paths),
        "worldtogt": np.eye(4).tolist(),
        "scene_box": {"aabb": [[-bound] * 3, [bound] * 3], "near": 0.05, "far": 2.5 + bound, "radius": bound,
                      "collider_type": "box"},
        "frames": frames,
    }


@dataclass
class MultiView:
    """Posed views of an amodal3d folder: cameras, image files and (when the folder has them) mask files."""

    cameras: list[Camera]
    images: list[Path]
    masks: list[Path] | None
    source: str


def read_multiview(folder: Path) -> MultiView:
    """Views of a reconstruction folder (its ``transforms.json``) or of a scene folder (the 16 ground-truth ring
    views of ``scene.json``, RGBA, the object alone). What the nerfstudio data parser plugin reads."""
    import json

    from amodal3d.core.errors import UserError

    folder = Path(folder)
    if (folder / "transforms.json").is_file():
        data = json.loads((folder / "transforms.json").read_text())
        cameras = cameras_from_transforms(data)
        images = [folder / f["file_path"] for f in data["frames"]]
        has_masks = all("mask_path" in f for f in data["frames"])
        masks = [folder / f["mask_path"] for f in data["frames"]] if has_masks else None
        source = "transforms.json"
    elif (folder / "scene.json").is_file():
        from amodal3d.core.formats.scene import Scene, view_name

        scene = Scene.open(folder)
        cameras = scene.ring_cameras
        images = [folder / view_name(i) for i in range(len(cameras))]
        masks, source = None, "scene.json"
    else:
        raise UserError(f"{folder}: neither a reconstruction folder with views (transforms.json) nor a scene folder")
    missing = [p for p in images + (masks or []) if not p.is_file()]
    if missing:
        raise UserError(f"{folder}: {len(missing)} view file(s) missing, e.g. {missing[0]}")
    if not cameras:
        raise UserError(f"{folder}: no views")
    return MultiView(cameras, images, masks, source)


def ground_shift(mesh) -> np.ndarray:
    """The translation that sets the mesh's base on the ground plane z = 0 (+Z up), its centre above the origin."""
    lo, hi = np.asarray(mesh.bounds)
    return np.array([-(lo[0] + hi[0]) / 2, -(lo[1] + hi[1]) / 2, -lo[2]])


def write_reconstruction(result, out: Path, meta: dict | None = None, overwrite: bool = False,
                         config: dict | None = None, ground: bool = False) -> Path:
    """mesh.glb / mesh.obj / mesh.ply, recon.json, and views/ with transforms.json and meta_data.json if any
    (written whole, atomically; an earlier reconstruction folder is replaced only with ``overwrite``). ``config``:
    the command's config record, saved as config.json. ``ground``: the files (meshes and cameras) moved so the object
    stands on z = 0 instead of the benchmark frame's centring (recon.json says by how much)."""
    start = time.perf_counter()
    shift = ground_shift(result.mesh) if ground else np.zeros(3)
    mesh = result.mesh.copy() if ground else result.mesh
    if ground:
        mesh.apply_translation(shift)
    with atomic_dir(Path(out), "reconstruct", replace=overwrite) as tmp:
        write_meshes(mesh, tmp)
        info = {"version": 1, **(meta or {}), **result.info, "vertices": len(mesh.vertices),
                "faces": len(mesh.faces), "watertight": is_closed(mesh),
                "frame": "ground" if ground else "benchmark",
                "translation_from_benchmark_frame": [round(float(v), 6) for v in shift]}
        if result.views:
            (tmp / "views").mkdir()
            images, masks = [], []
            for i, view in enumerate(result.views):
                # RGB on white: nerfstudio drops alpha unless told a background colour
                write_png(tmp / "views" / f"{i:03d}.png", composite_on_white(view.rgba))
                # 3 channels: SDFStudio reads a foreground mask as [..., :1] of an H x W x C image
                write_png(tmp / "views" / f"{i:03d}_mask.png", np.repeat(view.mask[..., None], 3, axis=2))
                images.append(f"views/{i:03d}.png")
                masks.append(f"views/{i:03d}_mask.png")
            moved = np.eye(4)
            moved[:3, 3] = shift
            cams = [Camera(v.camera.K, moved @ v.camera.c2w, v.camera.width, v.camera.height) for v in result.views]
            # no mask_path: nerfstudio samples rays only where a mask is non-zero, so an object mask would leave
            # the background unsupervised (floaters); SDFStudio uses its foreground mask as a loss target
            write_json(tmp / "transforms.json", nerfstudio_transforms(cams, images))
            write_json(tmp / "meta_data.json", sdfstudio_meta(cams, images, masks))
            info["views"] = len(result.views)
        info["write_seconds"] = time.perf_counter() - start
        write_json(tmp / RECON_JSON, info)
        if config is not None:
            write_json(tmp / CONFIG_JSON, config)
    return Path(out)
